"""The CLIs running now are read from worker threads (a stray sweep asks whether a CLI ran
alone) while the event loop's thread starts and ends others: a read never fails for a change
made meanwhile."""

from __future__ import annotations

import sys
import threading

from orchestrator.process import started


def test_a_read_from_another_thread_never_fails_for_a_change_meanwhile() -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        pid = 4_000_000  # no real process has such a pid: nothing here touches one
        while not stop.is_set():
            for n in range(64):
                started.cli_started(pid + n, 1.0)
            for n in range(64):
                started.cli_ended(pid + n)

    def read() -> None:
        try:
            for _ in range(20_000):
                started.alone_since(1)
                started.own_processes()
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=churn)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as the interpreter lets them
    writer.start()
    try:
        read()
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
    assert errors == []
