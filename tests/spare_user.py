"""Running ``council run`` as an unprivileged user from a test that runs as root (as CI does):
``setpriv`` to a uid no account on the machine has, every file of the run its own for the run,
root's again afterwards (so the test reads them as before).

``place(kind)`` is a directory either can reach (pytest's own are root's alone); ``council_run``
runs the command as ``uid`` (None: as root) and returns its exit code, stdout and stderr.
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
from timing import patience

__all__ = ["SPARE_UID", "council_run", "place", "spare_uid"]

SPARE_UID = 47391
COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]


def spare_uid() -> int:
    """The uid to run as, once it is known the machine lets a test use it."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.fail("the unprivileged runs need root and setpriv (util-linux) to switch users")
    with open("/etc/passwd") as passwd:
        taken = {line.split(":")[2] for line in passwd if line.count(":") >= 6}
    if str(SPARE_UID) in taken:
        pytest.fail(f"uid {SPARE_UID} belongs to an account on this machine")
    switch = ["setpriv", f"--reuid={SPARE_UID}", f"--regid={SPARE_UID}", "--clear-groups"]
    if subprocess.run([*switch, sys.executable, "-c", "pass"], capture_output=True).returncode:
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
