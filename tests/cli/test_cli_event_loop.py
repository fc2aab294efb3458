"""``cli.event_loop.run``: a command's async work, its result handed out without the event
loop's main task holding it (asyncio's runner formats that task's ``repr`` when it puts the
SIGINT handler back, and with it the result's: 50 ms for ``council status`` of 1,024 tasks),
and a Ctrl-C that always stops it, even one arriving while it waits in a shielded scope."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import anyio
import pytest

from orchestrator.cli import event_loop

CLI = Path(__file__).resolve().parents[2] / "orchestrator" / "cli"


class Counted:
    """A result that counts how often something formats it."""

    def __init__(self) -> None:
        self.reprs = 0

    def __repr__(self) -> str:
        self.reprs += 1
        return "Counted()"


async def _make() -> Counted:
    return Counted()


def test_the_result_comes_out_unformatted() -> None:
    through_anyio = anyio.run(_make)
    assert through_anyio.reprs > 0  # what the helper is for: asyncio's runner formats it

    result = event_loop.run(_make)
    assert isinstance(result, Counted) and result.reprs == 0


def test_arguments_are_passed_and_errors_raised() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    async def fail() -> None:
        raise LookupError("nothing there")

    assert event_loop.run(add, 2, 3) == 5
    with pytest.raises(LookupError, match="nothing there"):
        event_loop.run(fail)


def test_every_command_goes_through_it() -> None:
    direct = [
        f"{path.name}:{number}"
        for path in sorted(CLI.rglob("*.py"))
        if path.name != "event_loop.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\banyio\.run\(", line)
    ]
    assert direct == []


async def _ctrl_c_taken_by_one_wait() -> str:
    """A Ctrl-C arriving while the command waits on a worker thread (a run's first git
    command), and a wait that takes one cancellation for its own and goes on: a timed wait
    whose deadline fell together with it, or a library's ``except CancelledError``."""

    def git_step() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the signal is handled while the loop waits on this thread

    try:
        await anyio.to_thread.run_sync(git_step)
        await anyio.sleep(0)
    except anyio.get_cancelled_exc_class():
        pass  # taken for the wait's own
    for _ in range(3):
        await anyio.sleep(0)
    return "went on to the end"


def test_a_ctrl_c_stops_the_command_even_if_one_wait_swallows_it() -> None:
    # asyncio's own handling cancels the task once: swallowed once, the command runs to the
    # end as if no key had been pressed (a stopped run ended 0 with every task done).
    assert anyio.run(_ctrl_c_taken_by_one_wait) == "went on to the end"

    with pytest.raises(KeyboardInterrupt):
        event_loop.run(_ctrl_c_taken_by_one_wait)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_command_listening_for_signals_itself_gets_the_ctrl_c() -> None:
    async def listen() -> str:
        with anyio.open_signal_receiver(signal.SIGINT) as received:
            os.kill(os.getpid(), signal.SIGINT)
            async for number in received:
                return f"handled {signal.Signals(number).name}"
        return "never"

    assert event_loop.run(listen) == "handled SIGINT"


def test_a_process_started_deaf_to_ctrl_c_listens_for_sigterm_only() -> None:
    assert event_loop.stop_signals() == (signal.SIGINT, signal.SIGTERM)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's `council run &`
    try:
        assert event_loop.stop_signals() == (signal.SIGTERM,)
    finally:
        signal.signal(signal.SIGINT, before)
