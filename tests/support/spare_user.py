"""Running the orchestrator as an unprivileged user, from a test that runs as root (as CI and
containers do): a spare uid with no account, and a directory of its own to work in.

``as_users()`` is the parameter list of a test that must hold for both: ``None`` (the test's
own user) and, where the test runs as root, ``SPARE_UID``. ``user_dir(uid)`` is a new
directory owned by ``uid`` under ``/var/tmp`` (pytest's own temporary directories are
reachable by their owner alone); ``hand_over(path, uid)`` gives it everything made in it since.
``git_as_root`` reads a repository another user owns (git refuses one it does not own unless
told it is safe). ``spare_uid()`` is the uid once it is known the machine lets a test use it
(failing, not skipping, where it does not); ``place(kind)`` a directory either user can reach;
``council_run`` runs ``council run`` as ``uid`` (None: as this user), the files of the run that
user's for the run and root's again afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.timing import patience

__all__ = [
    "SPARE_UID",
    "as_users",
    "council_run",
    "git_as_root",
    "hand_over",
    "place",
    "spare_uid",
    "user_dir",
]

SPARE_UID = 64123  # no account has it: nothing of anyone's is reachable as it
COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]


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


def spare_uid() -> int:
    """The uid to run as, once it is known the machine lets a test use it."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("the unprivileged runs need root and setpriv (util-linux) to switch users")
    with open("/etc/passwd") as passwd:
        taken = {line.split(":")[2] for line in passwd if line.count(":") >= 6}
    if str(SPARE_UID) in taken:
        pytest.fail(f"uid {SPARE_UID} belongs to an account on this machine")
    switch = ["setpriv", f"--reuid={SPARE_UID}", f"--regid={SPARE_UID}", "--clear-groups"]
    # Through env: setpriv itself may still start an interpreter under a directory closed to
    # the uid (seen under a 0700 /root) that any process of that uid is then refused.
    runs = [*switch, "env", sys.executable, "-c", "pass"]
    if subprocess.run(runs, capture_output=True).returncode:
        pytest.fail(
            f"{sys.executable} cannot be run by an unprivileged user (a directory on its way, "
            "such as /root, is closed to others): these runs need an interpreter every user "
            "can run"
        )
    return SPARE_UID


@contextmanager
def place(kind: str) -> Iterator[Path]:
    """A fresh directory under the system's temporary directory, open to every user."""
    path = Path(tempfile.mkdtemp(prefix=f"council-{kind}-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def council_run(
    config: Path,
    root: Path,
    uid: int | None,
    env: dict[str, str] | None = None,
    extra: Sequence[str] = ("--json",),
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """``council run <config>`` from ``root``, as ``uid`` when given (``root`` chowned to it
    for the run, with a HOME of its own there unless ``env`` names one)."""
    argv = [*COUNCIL, "run", str(config), *extra]
    merged = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}
    if uid is not None:
        home = root / "spare-home"
        home.mkdir(exist_ok=True)
        subprocess.run(["chown", "-R", f"{uid}:{uid}", str(root)], check=True)
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
        merged |= {"HOME": str(home), "USER": "spare", "LOGNAME": "spare"}
    merged |= env or {}
    try:
        return subprocess.run(
            argv,
            cwd=root,
            capture_output=True,
            text=True,
            env=merged,
            timeout=patience(timeout),
            start_new_session=True,
        )
    finally:
        if uid is not None:
            subprocess.run(["chown", "-R", "0:0", str(root)], check=True)
