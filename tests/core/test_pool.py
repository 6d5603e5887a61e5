"""The worker pool: results come back through the pipe; a slow call holds up no other."""

from __future__ import annotations

import select
import threading
import time

from ionet.core.pool import STALL, WorkerPool


def drain(pool: WorkerPool, until: int, timeout: float = 5.0) -> None:
    """Run results as the loop would, until ``pool.pending`` drops to ``until``."""
    deadline = time.monotonic() + timeout
    while pool.pending > until:
        assert time.monotonic() < deadline, f"{pool.pending} calls still pending"
        ready, _, _ = select.select([pool.fileno()], [], [], 0.05)
        if ready:
            pool.run_ready()


def test_results_and_errors_reach_the_loop_thread() -> None:
    pool = WorkerPool(4)
    got: list[object] = []
    loop_thread = threading.get_ident()

    def record(outcome: object) -> None:
        assert threading.get_ident() == loop_thread
        got.append(outcome)

    pool.submit(lambda: 42, record)
    pool.submit(lambda: 1 / 0, record)
    drain(pool, 0)
    pool.close()
    assert got[0].unwrap() == 42  # type: ignore[attr-defined]
    assert isinstance(got[1].error, ZeroDivisionError)  # type: ignore[attr-defined]


def test_a_slow_call_does_not_hold_up_the_calls_behind_it() -> None:
    soon: list = []
    pool = WorkerPool(4, soon.append)  # flushed by hand, as the loop's turn would
    done: list[str] = []
    release = threading.Event()
    pool.submit(lambda: release.wait(10), lambda o: done.append("slow"))
    for n in range(5):
        pool.submit(lambda n=n: n, lambda o: done.append(f"fast {o.value}"))
    while soon:
        soon.pop()()
    drain(pool, 1, timeout=50 * STALL + 2)  # every fast call, well before the slow one
    assert done == [f"fast {n}" for n in range(5)]
    release.set()
    drain(pool, 0)
    pool.close()
    assert done[-1] == "slow"


def test_one_wake_up_serves_a_burst() -> None:
    soon: list = []
    pool = WorkerPool(16, soon.append)
    for _ in range(100):
        pool.submit(lambda: None, lambda o: None)
    assert len(soon) == 1  # one flush for the whole turn
    soon.pop()()
    drain(pool, 0)
    assert len(pool._workers) <= 2  # a runner (and perhaps a watcher), not 16 threads
    pool.close()


def test_results_before_a_slow_call_are_not_held_back() -> None:
    soon: list = []
    pool = WorkerPool(4, soon.append)
    done: list[object] = []
    release = threading.Event()
    for n in range(3):
        pool.submit(lambda n=n: n, lambda o: done.append(o.value))
    pool.submit(lambda: release.wait(10), lambda o: done.append("slow"))
    while soon:
        soon.pop()()
    drain(pool, 1, timeout=50 * STALL + 2)  # the watcher sends them on
    assert done == [0, 1, 2]
    release.set()
    drain(pool, 0)
    pool.close()
    assert done[-1] == "slow"


def test_close_waits_for_running_calls_and_drops_queued_ones() -> None:
    pool = WorkerPool(1)
    started = threading.Event()
    finished: list[int] = []

    def slow() -> None:
        started.set()
        time.sleep(0.2)
        finished.append(1)

    pool.submit(slow, lambda o: None)
    pool.submit(lambda: finished.append(2), lambda o: None)
    started.wait(5)
    pool.close()
    assert finished == [1]
