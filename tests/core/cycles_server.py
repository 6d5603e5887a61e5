"""``python -m tests.core.cycles_server ARGS...``: ``ionet ARGS...`` with the
cyclic garbage collector off, reporting what it would have had to free.

On SIGUSR1 the server collects once, keeping what it found
(``gc.DEBUG_SAVEALL``), and writes one line to stderr::

    CYCLES <count> <frozen> <{type name: count}>

counting the objects of ionet's own classes among them, then frees them;
``frozen`` is how many objects ``core.server.settle_heap`` took out of the
collector's way at start-up.
A connection that ends should leave no such object: everything it made is
freed by reference counting the moment it is over.  An object caught in a
reference cycle waits for the collector instead, which costs CPU on every
collection and stalls every other connection while a full one runs.
"""

from __future__ import annotations

import collections
import gc
import signal
import sys
from types import FrameType

from ionet.cli import main


def report(signum: int, frame: FrameType | None) -> None:
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    ours = collections.Counter(type(obj).__qualname__ for obj in gc.garbage
                               if type(obj).__module__.startswith("ionet"))
    gc.set_debug(0)
    gc.garbage.clear()
    gc.collect()  # now free them, so that the next report starts from nothing
    sys.stderr.write(f"CYCLES {sum(ours.values())} {gc.get_freeze_count()} {dict(ours)}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    gc.disable()  # only the reports collect: what each connection left stays to be seen
    signal.signal(signal.SIGUSR1, report)
    sys.exit(main(sys.argv[1:]))
