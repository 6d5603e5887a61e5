"""The gevent engine's poller (``green.HubPoller``), on a hub of its own.

Each test runs in a fresh OS thread: gevent gives a thread other than the
main one a hub with a loop of its own, which the thread destroys when done,
so nothing here touches the process's default loop (whose SIGCHLD handling
other tests' subprocesses would feel) and nothing is monkey-patched.  The
descriptors are plain pipes, which libev watches like sockets.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

gevent = pytest.importorskip("gevent")

from ionet.core.engines.green import HubPoller  # noqa: E402  (after the skip)


def on_own_hub(test: Callable[[Any], None]) -> None:
    """Run ``test(hub)`` in a new thread with its own hub; re-raise what it raised."""
    failure: list[BaseException] = []

    def body() -> None:
        hub = gevent.get_hub()
        try:
            test(hub)
        except BaseException as exc:  # handed to the test's own thread, below
            failure.append(exc)
        finally:
            hub.destroy(destroy_loop=True)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the test hung"
    if failure:
        raise failure[0]


@contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    try:
        yield read_fd, write_fd
    finally:
        os.close(read_fd)
        os.close(write_fd)


class TestGeventPoller:
    """Named for ``-k gevent``: these run with the gevent engine's tests."""

    def test_wait_returns_the_readable_descriptor(self) -> None:
        def test(hub: Any) -> None:
            with pipe() as (quiet, _), pipe() as (busy, poke):
                poller = HubPoller(hub, [quiet, busy])
                os.write(poke, b"x")
                assert poller.wait([quiet, busy], 5.0) == {busy}
                poller.close()

        on_own_hub(test)

    def test_wait_times_out_with_nothing_ready(self) -> None:
        def test(hub: Any) -> None:
            with pipe() as (quiet, _):
                poller = HubPoller(hub, [quiet])
                started = time.monotonic()
                assert poller.wait([quiet], 0.05) == set()
                assert 0.04 <= time.monotonic() - started < 2.0
                poller.close()

        on_own_hub(test)

    def test_steady_watchers_are_reused_across_waits(self) -> None:
        def test(hub: Any) -> None:
            with pipe() as (fd, poke):
                poller = HubPoller(hub, [fd])
                watcher = poller._steady[fd]
                for _ in range(3):
                    os.write(poke, b"x")
                    assert poller.wait([fd], 5.0) == {fd}
                    os.read(fd, 10)
                    assert poller._steady[fd] is watcher
                    assert not watcher.active  # stopped between waits
                poller.close()

        on_own_hub(test)

    def test_a_far_timer_is_kept_and_a_nearer_one_replaces_it(self) -> None:
        def test(hub: Any) -> None:
            with pipe() as (fd, poke):
                poller = HubPoller(hub, [fd])
                os.write(poke, b"x")
                assert poller.wait([fd], 300.0) == {fd}
                far = poller._timer
                assert far is not None and far.active  # kept running after the wait
                assert poller.wait([fd], 600.0) == {fd}  # later deadline: same timer
                assert poller._timer is far
                os.read(fd, 10)
                assert poller.wait([fd], 0.01) == set()  # nearer deadline: a new timer
                assert poller._timer is not far
                poller.close()
                assert poller._timer is None

        on_own_hub(test)

    def test_an_early_timer_wakes_early_never_late(self) -> None:
        """A kept timer that fires before the deadline wakes the wait with
        nothing ready; the next wait arms a timer for the new deadline."""
        def test(hub: Any) -> None:
            with pipe() as (fd, _):
                poller = HubPoller(hub, [fd])
                assert poller.wait([fd], 0.01) == set()
                poller._arm(0.02)  # as a wait for a near deadline would
                started = time.monotonic()
                assert poller.wait([fd], 300.0) == set()  # woken early, by the kept timer
                assert time.monotonic() - started < 2.0
                assert poller.wait([fd], 0.05) == set()  # nothing kept: a fresh timer
                poller.close()

        on_own_hub(test)

    def test_a_timer_firing_between_waits_does_not_switch_in(self) -> None:
        def test(hub: Any) -> None:
            with pipe() as (fd, poke):
                poller = HubPoller(hub, [fd])
                os.write(poke, b"x")
                assert poller.wait([fd], 0.01) == {fd}
                gevent.sleep(0.05)  # the timer fires meanwhile, on the hub, with no wait under way
                os.write(poke, b"x")
                assert poller.wait([fd], 5.0) == {fd}
                poller.close()

        on_own_hub(test)

    def test_a_descriptor_number_reused_by_a_new_file_is_still_watched(self) -> None:
        """An FTP data listener closed and opened again may get the same number:
        as a non-steady descriptor it gets a fresh watcher, so epoll hears of it."""
        def test(hub: Any) -> None:
            with pipe() as (steady, _):
                poller = HubPoller(hub, [steady])
                first_read, first_write = os.pipe()
                os.write(first_write, b"x")
                assert poller.wait([steady, first_read], 5.0) == {first_read}
                os.close(first_read)
                os.close(first_write)
                second_read, second_write = os.pipe()  # mostly first_read's number, again
                try:
                    os.write(second_write, b"y")
                    assert poller.wait([steady, second_read], 5.0) == {second_read}
                finally:
                    os.close(second_read)
                    os.close(second_write)
                poller.close()

        on_own_hub(test)
