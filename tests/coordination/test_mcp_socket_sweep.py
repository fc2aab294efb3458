"""The council servers' socket directories an orchestrator killed by SIGKILL leaves behind
are removed by the next run's sweep: only this user's, only once old enough that a new one's
socket would be bound, and never one whose socket a live run still serves."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from orchestrator.coordination.service import SOCKET_NAME, sweep_stale


def made(root: Path, name: str, *, listening: bool, age: float) -> tuple[Path, socket.socket]:
    directory = root / f"council-mcp-{name}"
    directory.mkdir(mode=0o700)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(directory / SOCKET_NAME))
    if listening:
        server.listen(1)
    else:
        server.close()  # its orchestrator died: the file stays, nobody answers
    then = os.stat(directory).st_mtime - age
    os.utime(directory, (then, then))
    return directory, server


def test_only_old_unserved_socket_directories_go(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    dead, _ = made(root, "dead", listening=False, age=600)
    young, _ = made(root, "young", listening=False, age=0)
    live, server = made(root, "live", listening=True, age=600)
    empty = root / "council-mcp-empty"  # killed before it bound its socket
    empty.mkdir()
    os.utime(empty, (1, 1))
    other = root / "unrelated"
    other.mkdir()
    os.utime(other, (1, 1))
    try:
        assert sweep_stale(str(root)) == 2
    finally:
        server.close()
    assert not dead.exists() and not empty.exists()
    assert young.exists() and live.exists() and other.exists()


async def test_what_the_phase_raises_leaves_the_socket_as_it_came(tmp_path: Path) -> None:
    """The phase's CLI call runs inside the session's socket: its error (an adapter's, say)
    comes out as itself, never wrapped in the server's task group, and the socket's directory
    goes."""
    import pytest

    from orchestrator.coordination.desk import Caller, Desk
    from orchestrator.coordination.service import serve_session
    from orchestrator.errors import AdapterError
    from orchestrator.state import FileStateStore

    async with FileStateStore(tmp_path / "state") as store:
        desk = Desk(store, tmp_path, caller=Caller("s1", "t1"))
        with pytest.raises(AdapterError, match="too long") as raised:
            async with serve_session(desk) as socket:
                raise AdapterError("a prompt too long for the command line")
        assert type(raised.value) is AdapterError
    assert not socket.parent.exists()
