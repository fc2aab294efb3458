"""``safety.untrusted_read``: a file a CLI can write, read so that nothing it put there can
make the orchestrator wait, follow a link or read without end; and the admin-dir readers that
use it (``commits.head_branch``, the radar's ``HEAD``) answering at once over a FIFO."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path

from orchestrator.radar import snapshot
from orchestrator.safety.untrusted_read import read_regular
from orchestrator.worktrees.commits import head_branch


def at_once(call: Callable[[], object]) -> list[object]:
    """``call``'s answer, or nothing when it is still waiting after 10 s."""
    answers: list[object] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    thread.join(10)
    return answers


def test_a_regular_file_is_read_up_to_one_byte_past_what_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "HEAD"
    path.write_bytes(b"ref: refs/heads/main\n")
    assert read_regular(path, 4096) == b"ref: refs/heads/main\n"
    path.write_bytes(b"x" * 10_000)
    assert read_regular(path, 100) == b"x" * 101
    assert read_regular(tmp_path / "none", 100) is None


def test_a_fifo_a_link_or_a_device_reads_as_none_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to("/dev/zero")
    to_fifo = tmp_path / "to-fifo"
    to_fifo.symlink_to(fifo)
    for path in (fifo, link, to_fifo, Path("/dev/zero"), tmp_path):
        assert at_once(functools.partial(read_regular, path, 4096)) == [None], path


def test_a_fifo_for_head_in_a_clis_admin_dir_is_no_branch_and_no_wait(tmp_path: Path) -> None:
    """What a CLI can do in its own admin dir (writable in the sandbox): its ``HEAD`` made a
    FIFO. The readers of ``HEAD`` answer "cannot tell" at once (git is asked then)."""
    worktree, admin = tmp_path / "worktree", tmp_path / "admin"
    worktree.mkdir()
    admin.mkdir()
    (worktree / ".git").write_text(f"gitdir: {admin}\n")
    (admin / "HEAD").write_text("ref: refs/heads/council/t1/1\n")
    assert head_branch(worktree) == "refs/heads/council/t1/1"
    (admin / "HEAD").unlink()
    os.mkfifo(admin / "HEAD")
    assert at_once(lambda: head_branch(worktree)) == [None]
    assert at_once(lambda: snapshot._head(admin)) == [None]
