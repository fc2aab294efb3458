"""``cli.event_loop.run``: a command's async work, its result handed out without the event
loop's main task holding it (asyncio's runner formats that task's ``repr`` when it puts the
SIGINT handler back, and with it the result's: 50 ms for ``council status`` of 1,024 tasks)."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from orchestrator.cli import event_loop

CLI = Path(__file__).resolve().parent.parent / "orchestrator" / "cli"


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
        for path in sorted(CLI.glob("*.py"))
        if path.name != "event_loop.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\banyio\.run\(", line)
    ]
    assert direct == []
