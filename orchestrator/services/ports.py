"""A session's own range of ports, for a tool that insists on being given one.

A session's network namespace makes every port its own; where the machine cannot make one (a
user without user namespaces) sessions share the machine's ports, and a dev server that takes
``PORT`` or a test runner that takes a range needs a range no other session uses. Each session
claims one block of ``BLOCK`` ports (``claim``): ``COUNCIL_PORT`` (its first) and
``COUNCIL_PORTS`` (``first-last``), in the environment of its CLI and of its commands.

A block is claimed by an exclusive lock (``filelock``) on its own file in the user's own
directory for them (``ports_dir``: made 0700, never through a link), held while the session
lives: the kernel lets it go when the session ends or its orchestrator dies, however it dies,
so a block is never leaked and never given twice at once, across every run of the user on the
machine. A block whose ports are not all free on the loopback now (another program's) is
passed over. The search starts at a block chosen from the session's id, so a resumed session
tends to get its block back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import LockUnusable
from orchestrator.filelock import FileLock, try_acquire

__all__ = ["BLOCK", "BLOCKS", "FIRST", "PortBlock", "claim", "ports_dir"]

BLOCK = 10  # ports a session gets
FIRST = 20_000  # the first port of the first block
BLOCKS = 2_000  # blocks in all: ports 20000 to 39999, below Linux's ephemeral range
_TRIES = 64  # blocks looked at before the session goes without one


class PortBlock:
    """A claimed block: ``first`` to ``last``, held until ``close``."""

    def __init__(self, first: int, lock: FileLock) -> None:
        self.first, self.last = first, first + BLOCK - 1
        self._lock = lock

    def env(self) -> dict[str, str]:
        return {"COUNCIL_PORT": str(self.first), "COUNCIL_PORTS": f"{self.first}-{self.last}"}

    @property
    def held(self) -> bool:
        return self._lock.held

    def close(self) -> None:
        self._lock.release()


def ports_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the blocks' lock files are: the user's runtime directory when it is theirs (it is
    there for such locks), else ``cli-council-<uid>`` in the temporary directory. Locks are
    the machine's, so every run of the user meets the same ones whatever its HOME."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR") or ""
    if os.path.isabs(runtime) and _ours(Path(runtime)):
        return Path(runtime) / "cli-council" / "ports"
    return Path(tempfile.gettempdir()) / f"cli-council-{os.getuid()}" / "ports"


def _ours(directory: Path) -> bool:
    """Is ``directory`` a directory (not a link) of this user that no one else may write?"""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _made(directory: Path) -> bool:
    """``directory`` and its parent made as this user's own (0700); False when either is there
    already as someone else's, or a link."""
    for path in (directory.parent, directory):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        if not _ours(path):
            return False
    return True


def claim(key: str, directory: Path | None = None) -> PortBlock | None:
    """A free block for the session ``key``; None when none of the blocks looked at is free
    (the session then goes without: said by the caller). ``OSError`` when ``directory``
    cannot be made this user's own. Blocking: a few files and binds."""
    directory = ports_dir() if directory is None else directory
    if not _made(directory):
        raise PermissionError(f"{directory} is not a directory of this user's own")
    start = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % BLOCKS
    for step in range(_TRIES):
        index = (start + step) % BLOCKS
        lock = _locked(directory / f"block-{index}.lock")
        if lock is None:
            continue
        first = FIRST + index * BLOCK
        if all(_free(port) for port in range(first, first + BLOCK)):
            return PortBlock(first, lock)
        lock.release()
    return None


def _locked(path: Path) -> FileLock | None:
    """``path``'s lock, held; None when another session holds it, or it is no lock file of
    ours (a link planted there is never followed: ``filelock``)."""
    try:
        return try_acquire(path)
    except LockUnusable:
        return None


def _free(port: int) -> bool:
    """Can a server bind ``port`` on the loopback now (as servers do, with SO_REUSEADDR)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return True
    return False
