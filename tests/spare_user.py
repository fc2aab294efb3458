"""Running the orchestrator as an unprivileged user, from a test that runs as root (as CI and
containers do): a spare uid with no account, and a directory of its own to work in.

``as_users()`` is the parameter list of a test that must hold for both: ``None`` (the test's
own user) and, where the test runs as root, ``SPARE_UID``. ``user_dir(uid)`` is a new
directory owned by ``uid`` under ``/var/tmp`` (pytest's own temporary directories are
reachable by their owner alone); ``hand_over(path, uid)`` gives it everything made in it since.
``git_as_root`` reads a repository another user owns (git refuses one it does not own unless
told it is safe).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["SPARE_UID", "as_users", "git_as_root", "hand_over", "user_dir"]

SPARE_UID = 64123  # no account has it: nothing of anyone's is reachable as it


def as_users() -> list[object]:
    """``None`` (this process's user) and, as root, the spare uid (``id=user``)."""
    users: list[object] = [pytest.param(None, id="self")]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        users.append(pytest.param(SPARE_UID, id="user"))
    return users


@contextmanager
def user_dir(uid: int | None, tmp_path: Path) -> Iterator[Path]:
    """``tmp_path`` for this process's user; for ``uid``, a new directory it owns."""
    if uid is None:
        yield tmp_path
        return
    made = Path(tempfile.mkdtemp(prefix="council-user-", dir="/var/tmp"))
    try:
        os.chown(made, uid, uid)
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def hand_over(path: Path, uid: int | None) -> None:
    """Everything under ``path`` owned by ``uid`` (nothing to do for this process's user)."""
    if uid is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, uid)
    os.lchown(path, uid, uid)


def git_as_root(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(repo), *args], capture_output=True, text=True
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout.strip()
