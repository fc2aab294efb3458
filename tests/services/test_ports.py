"""A session's own port range: a block claimed by a lock the kernel lets go, never given twice
at once, passed over when another program uses one of its ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.services.ports import BLOCK, BLOCKS, FIRST, claim, ports_dir
from tests.support.cli_process_helpers import wait_for


def test_two_sessions_get_two_blocks_and_a_closed_one_comes_back(tmp_path: Path) -> None:
    one = claim("s-1", tmp_path)
    again = claim("s-1", tmp_path)  # the same session's id while its block is held
    assert one is not None and again is not None
    assert one.last - one.first == BLOCK - 1 and FIRST <= one.first < FIRST + BLOCKS * BLOCK
    assert {p for p in range(one.first, one.last + 1)}.isdisjoint(
        range(again.first, again.last + 1)
    )
    assert one.env() == {
        "COUNCIL_PORT": str(one.first),
        "COUNCIL_PORTS": f"{one.first}-{one.last}",
    }
    first = one.first
    one.close()
    assert not one.held
    back = claim("s-1", tmp_path)
    assert back is not None and back.first == first  # a resumed session tends to get it back
    for block in (again, back):
        block.close()


def test_a_block_in_use_by_another_program_is_passed_over(tmp_path: Path) -> None:
    probe = claim("s-busy", tmp_path)
    assert probe is not None
    first = probe.first
    probe.close()
    with socket.socket() as server:  # another program listens on the block's fifth port
        server.bind(("127.0.0.1", first + 4))
        server.listen()
        block = claim("s-busy", tmp_path)
        assert block is not None and not block.first <= first + 4 <= block.last
        block.close()


def test_a_block_held_by_a_killed_orchestrator_is_free_again(tmp_path: Path) -> None:
    """The lock is the kernel's: a kill -9 of the process holding it lets the block go."""
    probe = claim("s-held", tmp_path)
    assert probe is not None
    first = probe.first
    probe.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from orchestrator.services.ports import claim;"
            f"b = claim('s-held', Path({str(tmp_path)!r})); print(b.first, flush=True);"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout is not None
        assert int(holder.stdout.readline()) == first
        elsewhere = claim("s-held", tmp_path)
        assert elsewhere is not None and elsewhere.first != first
        elsewhere.close()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        wait_for(lambda: _claims(tmp_path, "s-held", first), "the killed holder's block")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def _claims(directory: Path, key: str, first: int) -> bool:
    """Does ``key`` get the block at ``first`` now? (let go at once)"""
    block = claim(key, directory)
    if block is None:
        return False
    block.close()
    return block.first == first


def test_a_link_planted_for_a_block_is_never_followed(tmp_path: Path) -> None:
    probe = claim("s-link", tmp_path)
    assert probe is not None
    index = (probe.first - FIRST) // BLOCK
    probe.close()
    target = tmp_path / "target"
    target.write_text("kept\n")
    link = tmp_path / f"block-{index}.lock"
    link.unlink()
    link.symlink_to(target)
    block = claim("s-link", tmp_path)
    assert block is not None and block.first != FIRST + index * BLOCK
    block.close()
    assert target.read_text() == "kept\n" and link.is_symlink()


def test_the_locks_live_in_a_directory_of_the_user_s_own(tmp_path: Path) -> None:
    """The user's runtime directory when it is theirs, else one in the temporary directory;
    a directory someone else could write is never used."""
    mine = tmp_path / "runtime"
    mine.mkdir(mode=0o700)
    assert ports_dir({"XDG_RUNTIME_DIR": str(mine)}) == mine / "cli-council" / "ports"
    open_to_all = tmp_path / "shared"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    fallback = ports_dir({"XDG_RUNTIME_DIR": str(open_to_all)})
    assert fallback.parent.name == f"cli-council-{os.getuid()}"
    assert ports_dir({}) == fallback
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "cli-council").symlink_to(open_to_all)
    with pytest.raises(PermissionError, match="not a directory of this user's own"):
        claim("s-1", planted / "cli-council" / "ports")
    assert not (open_to_all / "ports").exists()
