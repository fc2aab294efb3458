"""The sandbox's network waits for its pipes on the event loop (issue 51): the sandbox's
namespace report and the helper's ready byte are read once the pipe has bytes or its end,
without a worker thread blocked on each (two hops a confined task fewer), and a cancellation
ends the wait."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest

from orchestrator.sandbox import network
from tests.support.hops import count_hops


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    try:
        yield read, write
    finally:
        for fd in (read, write):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    hopped = count_hops(monkeypatch)
    return hopped


async def test_a_report_in_pieces_is_read_whole_on_the_loop(
    pipe: tuple[int, int], hops: list[object]
) -> None:
    read, write = pipe
    text = json.dumps({"child-pid": 42, "net-namespace": 4026531840}).encode()

    async def writer() -> None:
        os.write(write, text[:10])
        await anyio.sleep(0.02)
        os.write(write, text[10:])

    async with anyio.create_task_group() as group:
        group.start_soon(writer)
        assert await network._read_json(read) == {"child-pid": 42, "net-namespace": 4026531840}
    assert hops == []


async def test_a_pipe_closed_before_a_report_is_none(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, b'{"child-pid": ')
    os.close(write)
    assert await network._read_json(read) is None


async def test_the_ready_byte_and_its_absence(hops: list[object]) -> None:
    read, write = os.pipe()
    os.write(write, b"1")
    assert await network._read_one(read) is True
    os.close(write)
    assert await network._read_one(read) is False  # its end: the helper gave up
    os.close(read)
    assert hops == []


async def test_a_wait_that_never_ends_is_cancelled(pipe: tuple[int, int]) -> None:
    read, _ = pipe
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.05):
            await network._read_json(read)
