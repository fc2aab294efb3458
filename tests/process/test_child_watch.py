"""Children of the command's loop watched by descriptor (``process.child_watch``): their exit
codes as before, no thread made for any of them; another thread's loop keeps asyncio's own
watcher; a child still running when the watch ends is handed back and still told."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from orchestrator.process.child_watch import _pidfd_works, watching_children

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12) or not _pidfd_works(),
    reason="asyncio watches by descriptor itself on 3.12+; needs pidfd_open (Linux 5.3+)",
)


async def _exit_code(code: int) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"raise SystemExit({code})"
    )
    return await process.wait()


def test_children_of_the_loop_are_told_without_a_thread_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    async def main() -> list[int]:
        with watching_children(asyncio.get_running_loop()):
            monkeypatch.setattr(threading.Thread, "start", counted)
            return list(await asyncio.gather(*(_exit_code(n) for n in range(5))))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    assert started == []  # asyncio's own watcher starts one a child


def test_another_thread_s_loop_keeps_asyncio_s_own_watcher() -> None:
    told: list[int] = []

    async def other() -> None:
        told.append(await _exit_code(7))

    async def main() -> None:
        with watching_children(asyncio.get_running_loop()):
            elsewhere = threading.Thread(target=lambda: asyncio.run(other()))
            elsewhere.start()
            while elsewhere.is_alive():
                await asyncio.sleep(0.01)
            assert await _exit_code(3) == 3

    asyncio.run(main())
    assert told == [7]


def test_a_child_still_running_when_the_watch_ends_is_still_told() -> None:
    async def main() -> int:
        with watching_children(asyncio.get_running_loop()):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(5)"
            )
        return await process.wait()

    assert asyncio.run(main()) == 5
