"""The state store could not do what was asked: a version or claim that no longer holds, a
record missing, refused or damaged, a write the disk refused, a database out of reach."""

from __future__ import annotations

import errno as errno_codes
from pathlib import Path

from orchestrator.errors.base import CouncilError

__all__ = [
    "RecordNotFound",
    "RecordRejected",
    "StaleClaim",
    "StateCorrupted",
    "StateError",
    "StateWriteError",
    "StoreUnavailable",
    "TaskInActiveSession",
    "VersionConflict",
]


class StateError(CouncilError):
    """The state store could not do what was asked."""


class RecordRejected(StateError):
    """A write broke a record rule (``RecordRule``: a plugin's, a caller's, or the workflow's
    own); nothing was written."""

    def __init__(self, rule: str, kind: str, key: str, problem: str) -> None:
        self.rule, self.kind, self.key, self.problem = rule, kind, key, problem
        super().__init__(
            f"{kind} record {key!r} was not written: rule {rule!r} refused it: {problem}"
        )


class VersionConflict(StateError):
    """An optimistic write expected one version of a record and found another."""

    def __init__(self, record: str, expected: int, actual: int | None) -> None:
        self.record = record
        self.expected = expected
        self.actual = actual
        super().__init__(f"{record}: expected version {expected}, found {actual}")


class StaleClaim(StateError):
    """A write carried a fencing token that is no longer the record's current claim."""

    def __init__(self, record: str, token: int, current: int | None) -> None:
        self.record = record
        self.token = token
        self.current = current
        super().__init__(
            f"{record}: fencing token {token} is stale (current claim token: {current})"
        )


class TaskInActiveSession(StateError, ValueError):
    """A new session names a task an unfinished session still owns (exit code 2: refused
    before the new session changed anything). The message says how to go on: with the run
    config's path once a caller that knows it names it (``for_config``)."""

    def __init__(self, task_id: str, session_id: str, status: str, config: str = "<config>"):
        self.task_id, self.session_id, self.status, self.config = (
            task_id,
            session_id,
            status,
            config,
        )
        super().__init__(
            f"task {task_id!r} belongs to session {session_id!r}, which is still {status}: "
            f"continue that run with `council resume {config}`, or drop the task from it "
            f"with `council cancel {config} {task_id}`"
        )

    def for_config(self, config: str) -> TaskInActiveSession:
        """The same refusal naming the run config (already shell-quoted) in its commands."""
        return TaskInActiveSession(self.task_id, self.session_id, self.status, config)


class RecordNotFound(StateError, KeyError):
    """The record asked for does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "record not found"


class StateCorrupted(StateError):
    """A record failed its integrity check and no valid history version could replace it."""

    def __init__(self, path: Path, detail: str, way_out: str) -> None:
        self.path = path
        self.detail = detail
        self.way_out = way_out
        super().__init__(f"{path}: {detail}; {way_out}")


_RESUME = "(`council resume` continues a run)"
_WAYS_OUT = {
    errno_codes.ENOSPC: f"free space on its file system, then retry {_RESUME}",
    errno_codes.EDQUOT: f"free space within your disk quota, then retry {_RESUME}",
    errno_codes.EROFS: "the file system is read-only: remount it writable, then retry",
    errno_codes.EACCES: "make its directory writable for this user, then retry",
    errno_codes.EPERM: "make its directory writable for this user, then retry",
    errno_codes.EIO: "the disk reported an I/O error: check it (the kernel log names the device) "
    "before you retry",
    errno_codes.ELOOP: "a symbolic link CLI Council did not make is in its way (it is never "
    f"followed): remove the link (its target is untouched), then retry {_RESUME}",
}


class StoreUnavailable(StateError):
    """The state database could not be reached within the store's retry deadline.

    Whatever was asked may or may not have happened (a connection lost during a commit);
    callers treat it as "not known yet": a session keeps its work and fences itself when it
    cannot renew its claim in time, and the run goes on once the database is back.
    """


class StateWriteError(StateError):
    """The disk refused a write of the state store: ``path`` is the file, ``errno`` the code.

    ``applied`` is False when nothing changed (the previous version is intact) and True when
    the new version is in place but could not be made durable (its directory fsync failed).
    The message says which, and what to do.
    """

    def __init__(
        self, path: Path, reason: str, outcome: str, errno: int | None, *, applied: bool = False
    ) -> None:
        self.path = path
        self.errno = errno
        self.applied = applied
        way_out = _WAYS_OUT.get(errno or 0, "fix the cause, then retry")
        super().__init__(f"cannot write {path}: {reason}; {outcome}; {way_out}")
