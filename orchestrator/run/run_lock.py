"""The repository's run lock: one orchestrator runs on a repository at a time.

``acquire_run_lock(repo)`` takes an OS lock (``filelock``, flock-style) on
``.council/locks/run.lock`` without waiting, and writes into the lock file who holds it: pid,
host, the process's start time (``procid``, so a reused pid is not mistaken for it) and the
wall-clock time it started. A second ``council run`` or ``council resume`` on the same
repository (any session) then fails at once with ``RunLocked``, one line naming the holder,
before it has changed anything.

A lock left by a dead process never blocks: the kernel drops the lock with its holder's last
descriptor (the descriptor is close-on-exec, so the CLIs the holder started do not keep it).
What the dead holder wrote stays in the file, so a holder's note is believed only while the lock
is held and the process it names is alive; a process that has just taken the lock may not have
written its note yet, so an unreadable or dead note is retried for a moment (``_SETTLE``)
before the lock is reported as held by someone unknown.

Only runs take the lock. Read-only commands (``status``, ``worktrees list``) and those that
work beside a live run through the store (``cancel``, ``checkpoint create``) never do. flock
is not reliable on every network file system; the store's claims (holder and lease) remain
the guard across hosts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator import filelock
from orchestrator.errors import RunLocked
from orchestrator.filelock import FileLock
from orchestrator.models import utcnow
from orchestrator.process import procid
from orchestrator.safety.untrusted_read import read_regular
from orchestrator.worktrees.layout import COUNCIL_DIR

__all__ = [
    "RECORD_LOCKS",
    "RUN_LOCK",
    "RunHolder",
    "RunLock",
    "acquire_run_lock",
    "check_record_locks",
    "read_holder",
]

RUN_LOCK = Path(COUNCIL_DIR) / "locks" / "run.lock"
_SETTLE = 2.0  # seconds a new holder has to write its note before it is reported as unknown
_POLL = 0.02
_NOTE_MOST = 4096  # bytes: a holder's note is a line of JSON
# How this version locks the file store's records: each by its directory's own descriptor. An
# earlier version locked a `.lock` file in it instead, and the two keep nothing out of each
# other's way, so a holder's note says which it uses (``check_record_locks``).
RECORD_LOCKS = "directory"


@dataclass(frozen=True)
class RunHolder:
    """The orchestrator holding a repository's run lock."""

    process: procid.ProcessId
    since: datetime
    record_locks: str | None = RECORD_LOCKS  # None: an earlier version's note says nothing

    def describe(self) -> str:
        since = self.since.astimezone().isoformat(timespec="seconds")
        return f"pid {self.process.pid} on {self.process.host}, started {since}"

    def encode(self) -> bytes:
        data: dict[str, Any] = {**self.process.as_dict(), "since": self.since.isoformat()}
        if self.record_locks is not None:
            data["record_locks"] = self.record_locks
        return (json.dumps(data, sort_keys=True) + "\n").encode()

    @classmethod
    def decode(cls, raw: bytes) -> RunHolder | None:
        """The holder in a lock file's bytes; None for an empty, partial or damaged note."""
        try:
            data = json.loads(raw)
            since = datetime.fromisoformat(data["since"])
        except (ValueError, TypeError, KeyError):
            return None
        process = procid.ProcessId.from_dict(data) if isinstance(data, dict) else None
        locks = data.get("record_locks") if isinstance(data, dict) else None
        if process is None:
            return None
        return cls(process, since, locks if isinstance(locks, str) else None)


class RunLock:
    """A held run lock; ``release`` it (or leave the ``with`` block) when the run is over."""

    def __init__(self, lock: FileLock, holder: RunHolder) -> None:
        self._lock = lock
        self.holder = holder

    @property
    def path(self) -> Path:
        return self._lock.path

    def release(self) -> None:
        if self._lock.held:
            self._lock.write_note(b"")  # the next reader finds no stale holder to report
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def read_holder(repo: Path) -> RunHolder | None:
    """What the run lock file of ``repo`` says about its holder (whether or not it is held).
    Read as an untrusted file (no link followed, no wait on a FIFO, at most ``_NOTE_MOST``
    bytes): every command that writes beside a run reads it (``check_record_locks``)."""
    try:
        raw = read_regular(repo / RUN_LOCK, _NOTE_MOST)
    except OSError:
        return None
    return None if raw is None or len(raw) > _NOTE_MOST else RunHolder.decode(raw)


def acquire_run_lock(repo: Path) -> RunLock:
    """Take ``repo``'s run lock now, or raise ``RunLocked`` naming the live holder.

    Blocking (it reads files and may poll for ``_SETTLE`` seconds): call it in a worker thread.
    """
    path = repo / RUN_LOCK
    deadline = time.monotonic() + _SETTLE
    while True:
        lock = filelock.try_acquire(path, root=repo)
        if lock is not None:
            holder = RunHolder(procid.current(), utcnow())
            try:
                lock.write_note(holder.encode())
            except BaseException:
                lock.release()
                raise
            return RunLock(lock, holder)
        other = read_holder(repo)
        if other is not None and procid.is_alive(other.process) is not False:
            raise RunLocked(
                f"another orchestrator is running on {repo}: {other.describe()}; stop it "
                "(Ctrl-C) or wait for it to finish"
            )
        if time.monotonic() >= deadline:
            raise RunLocked(
                f"another process holds {path} and has not said who it is; another "
                f"orchestrator is probably running on {repo}"
            )
        time.sleep(_POLL)


def check_record_locks(repo: Path) -> None:
    """Raise ``RunLocked`` when a live orchestrator on ``repo`` locks the state's records
    otherwise than this one (an earlier version, whose note names no ``record_locks``): the
    two would not keep each other out of a record, and a write of one could be lost under the
    other's. Said before this process opens the store, so nothing has changed yet.

    Blocking (it reads a file): call it in a worker thread."""
    holder = read_holder(repo)
    if holder is None or holder.record_locks == RECORD_LOCKS:
        return
    if procid.is_alive(holder.process) is False:
        return  # a note a dead holder left: nothing runs beside this process
    raise RunLocked(
        f"an orchestrator of another version runs on {repo} ({holder.describe()}): it locks "
        "the state's records in another way, so the two would not keep out of each other's "
        "writes; run this command with that version, or once that run has ended"
    )
