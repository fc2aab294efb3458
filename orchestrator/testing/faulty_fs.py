"""File layers for tests: one that fails on purpose, one that skips fsync.

``FaultyFileOps`` wraps a real ``FileOps`` (``orchestrator.state.file.fsops``) and makes the nth
call of a chosen operation fail the way a disk does, so a test can hand it to a
``FileStateStore`` and check what survives::

    ops = FaultyFileOps()
    store = FileStateStore(root, file_ops=ops)
    ops.fail("fsync", code=errno.EIO)                  # the next fsync raises EIO
    ops.fail("write", nth=2, persistent=True)          # ENOSPC from the 2nd write on...
    ops.heal()                                         # ...until the space is freed
    ops.crash("replace")                               # the process dies at the next replace

Operations (``OPERATIONS``): ``mkdir``, ``open`` (a new temp file or the event log),
``write``, ``fsync``, ``replace``, ``link``, ``fsync_dir``, ``unlink``, ``sync_all`` (the one
barrier after a batch of records). ``nth`` counts calls of that operation from the moment the
fault is armed. ``calls`` counts every call, faulted or
not, so running a write once on a fault-free instance shows which operations it makes and how
often; ``fired`` lists the faults that went off, with the file each one hit.

Faults behave like the real thing: the first ``write`` a fault refuses first writes half of
its bytes (a full disk takes what fits, then nothing more), and ``OSError.filename`` names
the file. A crash
raises ``SimulatedCrash``, a ``BaseException`` so no ``except Exception`` can swallow it, after
the same half write; from then on the instance is dead: every later call raises it again, so
cleanup that goes through the file layer never happens and the disk holds what a killed
process would leave. Look at it with a new store on plain ``FileOps``, as the next process
would. Descriptors are still closed for real (the kernel closes a dead process's files).

``UnsyncedFileOps`` skips both fsyncs: for tests whose subject is not durability (detecting
damaged records), where thousands of fsyncs would only make them slow.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from orchestrator.state.file.fsops import FileOps

__all__ = ["OPERATIONS", "FaultyFileOps", "Fired", "SimulatedCrash", "UnsyncedFileOps"]

OPERATIONS = (
    "mkdir",
    "open",
    "write",
    "fsync",
    "replace",
    "link",
    "fsync_dir",
    "unlink",
    "sync_all",
)


class SimulatedCrash(BaseException):
    """The process died at this file operation (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Fired:
    """A fault that went off: the operation, which call of it, the file, the errno (None for
    a crash)."""

    op: str
    call: int
    path: Path | None
    code: int | None


@dataclass(frozen=True, slots=True)
class _Fault:
    op: str
    at: int  # the value of calls[op] at which it fires
    code: int | None  # None: crash
    persistent: bool  # fire at every call from ``at`` on, until healed


class FaultyFileOps:
    """``FileOperations`` that fail on purpose (module doc), over real ones."""

    def __init__(self, *, sync: bool = True) -> None:
        self._real = FileOps()
        self.sync = sync
        self.calls: Counter[str] = Counter()
        self.fired: list[Fired] = []
        self.crashed = False
        self._faults: list[_Fault] = []
        self._fd_paths: dict[int, Path] = {}

    # -- arming -----------------------------------------------------------------------------

    def fail(
        self, op: str, *, nth: int = 1, code: int = errno.ENOSPC, persistent: bool = False
    ) -> None:
        """Make the ``nth`` call of ``op`` from now raise ``OSError(code)`` (and every later
        one too when ``persistent``, until ``heal``)."""
        self._arm(op, nth, code, persistent)

    def crash(self, op: str, *, nth: int = 1) -> None:
        """Make the process die at the ``nth`` call of ``op`` from now."""
        self._arm(op, nth, None, False)

    def heal(self) -> None:
        """Remove every fault not yet fired, and end persistent ones (space was freed)."""
        self._faults.clear()

    def _arm(self, op: str, nth: int, code: int | None, persistent: bool) -> None:
        if op not in OPERATIONS:
            raise ValueError(f"unknown file operation {op!r}; known: {', '.join(OPERATIONS)}")
        if nth < 1:
            raise ValueError("nth counts from 1")
        self._faults.append(_Fault(op, self.calls[op] + nth, code, persistent))

    def _fault(self, op: str, path: Path | None) -> _Fault | None:
        """Count the call; the fault it triggers, if any (raising at once for a dead process)."""
        if self.crashed:
            raise SimulatedCrash(f"{op}: the process has already crashed")
        self.calls[op] += 1
        call = self.calls[op]
        for fault in self._faults:
            if fault.op == op and (call == fault.at or (fault.persistent and call > fault.at)):
                self.fired.append(Fired(op, call, path, fault.code))
                return fault
        return None

    def _raise(self, fault: _Fault, path: Path | None) -> None:
        if fault.code is None:
            self.crashed = True
            raise SimulatedCrash(f"crashed at {fault.op} of {path}")
        raise OSError(fault.code, os.strerror(fault.code), None if path is None else str(path))

    def _check(self, op: str, path: Path | None) -> None:
        fault = self._fault(op, path)
        if fault is not None:
            self._raise(fault, path)

    # -- the operations ---------------------------------------------------------------------

    def confine(self, root: Path) -> None:
        self._real.confine(root)

    def root_of(self, path: Path) -> Path:
        return self._real.root_of(path)

    def rmdir(self, directory: Path) -> None:
        self._real.rmdir(directory)

    def close_dirs(self) -> None:
        self._real.close_dirs()

    def open_lock(self, path: Path, flags: int) -> int:
        return self._real.open_lock(path, flags)

    def makedirs(self, directory: Path) -> None:
        self._check("mkdir", directory)
        self._real.makedirs(directory)

    def open_new(self, path: Path) -> int:
        self._check("open", path)
        fd = self._real.open_new(path)
        self._fd_paths[fd] = path
        return fd

    def open_new_in(self, directory_fd: int, name: str, path: Path) -> int:
        self._check("open", path)
        fd = self._real.open_new_in(directory_fd, name, path)
        self._fd_paths[fd] = path
        return fd

    def open_append(self, path: Path) -> int:
        self._check("open", path)
        fd = self._real.open_append(path)
        self._fd_paths[fd] = path
        return fd

    def write(self, fd: int, data: bytes) -> None:
        path = self._fd_paths.get(fd)
        fault = self._fault("write", path)
        if fault is not None:
            if not (fault.persistent and self.calls["write"] > fault.at):
                self._real.write(fd, data[: len(data) // 2])  # after that, the disk is full
            self._raise(fault, path)
        self._real.write(fd, data)

    def fsync(self, fd: int) -> None:
        self._check("fsync", self._fd_paths.get(fd))
        if self.sync:
            self._real.fsync(fd)

    def close(self, fd: int) -> None:
        self._fd_paths.pop(fd, None)
        self._real.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self._check("replace", dst)
        self._real.replace(src, dst)

    def link(self, src: Path, dst: Path) -> None:
        self._check("link", dst)
        self._real.link(src, dst)

    def unlink(self, path: Path) -> None:
        self._check("unlink", path)
        self._real.unlink(path)

    def fsync_dir(self, directory: Path) -> None:
        self._check("fsync_dir", directory)
        if self.sync:
            self._real.fsync_dir(directory)

    def sync_all(self, directory: Path) -> None:
        self._check("sync_all", directory)
        if self.sync:
            self._real.sync_all(directory)


class UnsyncedFileOps(FaultyFileOps):
    """Plain file operations without fsync (see the module docstring): no fault armed."""

    def __init__(self) -> None:
        super().__init__(sync=False)
