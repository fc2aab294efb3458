"""A session's council server opens in one worker-thread call (issue 51): its private
directory is made and its socket bound and listening in the same call, not a second one for
the bind."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from orchestrator.coordination.desk import Caller, Desk
from orchestrator.coordination.relay import ask
from orchestrator.coordination.service import serve_session
from orchestrator.state import FileStateStore
from tests.support.scheduler_helpers import new_repo


async def test_a_session_server_opens_in_one_hop_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    hops: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args, **kwargs)

    async with FileStateStore(repo / ".council" / "state") as store:
        desk = Desk(store, repo, caller=Caller("sess-1", "t1"))
        monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
        async with serve_session(desk) as socket:
            opened = len(hops)
            monkeypatch.setattr(anyio.to_thread, "run_sync", real)
            assert stat.S_ISSOCK(socket.stat().st_mode)
            assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700  # private, as before
            assert await ask(socket, "sess-1", "read_notes", {}) == (
                "ok",
                "no unread notes for you",
            )
        assert opened == 1
        assert not socket.parent.exists()  # the directory goes with the context


async def test_a_socket_that_cannot_bind_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.coordination import service

    made: list[Path] = []
    real_dir = service._private_dir

    def private_dir() -> Path:
        made.append(real_dir())
        (made[-1] / service.SOCKET_NAME).mkdir()  # the socket's name taken: bind fails
        return made[-1]

    monkeypatch.setattr(service, "_private_dir", private_dir)
    repo = new_repo(tmp_path)
    async with FileStateStore(repo / ".council" / "state") as store:
        desk = Desk(store, repo, caller=Caller("sess-1", "t1"))
        with pytest.raises(OSError):
            async with serve_session(desk):
                pass
    assert made and not made[0].exists()
