"""The one exception tree of CLI Council.

Callers catch the level they can act on; outside libraries' and git's errors (git, portalocker,
PyYAML, pydantic) are translated into this tree at the wrapper that calls them, so no caller
ever needs to import an outside library to handle a failure::

    CouncilError                      anything CLI Council raises on purpose
    ├── ConfigError                   a run config (YAML) is unreadable or invalid; carries issues
    ├── PluginError                   a plugin failed to load or registered something bad
    │   └── AdapterError              an adapter is unknown, misconfigured or its binary is missing
    │       └── AdapterUnavailable    ...found by the check before a run writes anything (usage)
    ├── UsageError                    a value given on the command line names nothing there is
    ├── RunError                      a run cannot start or continue
    │   ├── CancelError               the task cannot be cancelled: it already ended
    │   ├── RequeueError              the task cannot be queued again as asked (retry, rebase)
    │   ├── WorkflowError             the workflow cannot go on as asked (no candidate to pick)
    │   ├── InvalidIdError            an id (task, session, adapter) fails the safe-id rule
    │   ├── OutOfSpace                a file system the run writes to is full: it stops, resumable
    │   └── RunLocked                 another orchestrator is running on the same repository
    ├── WorkspaceError                a worktree or path problem in the user's repository
    │   ├── PathEscapeError           a path resolves outside the root it must stay under
    │   ├── SecretInWork              a known key was in a CLI's files: masked, not landed
    │   ├── WorktreeBusy              processes still run inside a worktree that was to go
    │   ├── UnusableRepository        the repository or its .council cannot be used as it is
    │   ├── GitError                  a git command failed; carries argv and stderr
    │   │   └── RemotePushRefused     the shared remote refused a push (hook, protection,
    │   │                             access, unreachable); carries the server's message
    │   └── MergeContention           the base branch kept moving under the merge queue
    │       └── BaseLocked            a lock file of git's (a crash's leftover) blocks the base
    ├── LockError                     a lock could not be taken or released
    │   ├── LockTimeout               a lock stayed held by someone else until the timeout
    │   ├── LockUnusable              a lock file nobody holds cannot be used (a link, a full
    │   │                             directory in its place): a person must fix it first
    │   └── DeadlockError             waiting would close a cycle in the wait-for graph
    ├── ForgeError                    the forge (GitHub) refused or failed a request; carries the
    │   │                             status and the forge's own message, never the token
    │   ├── ForgeAuthError            no token, a wrong token (401) or one without the scope (403)
    │   ├── ForgeNotFound             the issue, pull request or repository is not there (404)
    │   ├── ForgeRefused              the forge refused the request as asked (422 validation)
    │   └── ForgeUnavailable          5xx or no connection after the retries, or a rate limit
    │                                 longer than the forge client may wait
    └── StateError                    the state store could not do what was asked
        ├── VersionConflict           `expected_version` did not match the stored version
        ├── StaleClaim                a write carried a fencing token that no longer holds
        ├── RecordNotFound            the record asked for does not exist
        ├── StateCorrupted            a record is damaged and no valid history could replace it
        ├── StateWriteError           the disk refused a state write (full, read-only, failing)
        └── StoreUnavailable          the state database cannot be reached (for now)
"""

from __future__ import annotations

import errno as errno_codes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AdapterError",
    "AdapterUnavailable",
    "BaseLocked",
    "CancelError",
    "ConfigError",
    "ConfigIssue",
    "CouncilError",
    "CredentialInWork",
    "DeadlockError",
    "ForgeAuthError",
    "ForgeError",
    "ForgeNotFound",
    "ForgeRefused",
    "ForgeUnavailable",
    "GitError",
    "InvalidIdError",
    "LockError",
    "LockTimeout",
    "LockUnusable",
    "MergeContention",
    "NothingToResume",
    "OutOfSpace",
    "PathEscapeError",
    "PlanRefused",
    "PluginError",
    "RecordNotFound",
    "RecordRejected",
    "RemotePushRefused",
    "RequeueError",
    "RunError",
    "RunLocked",
    "SecretInHistory",
    "SecretInWork",
    "SecretScanLate",
    "StaleClaim",
    "StateCorrupted",
    "StateError",
    "StateWriteError",
    "TaskInActiveSession",
    "UnusableRepository",
    "UsageError",
    "VersionConflict",
    "WorkflowError",
    "WorkspaceError",
    "WorktreeBusy",
    "needs_repair",
    "out_of_space",
    "stops_the_run",
]


class CouncilError(Exception):
    """Base of every error CLI Council raises on purpose."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file, located as precisely as the file allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(CouncilError):
    """A run config could not be loaded; ``issues`` lists every problem found, one per line."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class PlanRefused(ConfigError):
    """Goal mode: no valid task list came of the goal (``orchestrator.run.goal``); ``issues``
    are the last plan's problems, each at its line of that plan; nothing was changed."""

    def __init__(self, headline: str, issues: Sequence[ConfigIssue]) -> None:
        super().__init__(issues)
        self.headline = headline
        self.args = ("\n".join([headline, *(str(issue) for issue in self.issues)]),)

    def __str__(self) -> str:
        return str(self.args[0])


class PluginError(CouncilError):
    """A plugin could not be loaded, or registered something invalid."""


class AdapterError(PluginError):
    """An adapter is unknown, misconfigured, or its CLI binary cannot be found."""


class AdapterUnavailable(AdapterError, ValueError):
    """An adapter a run would use cannot run here (unknown type, bad options, binary not
    found); found before the run writes anything, and the user's to fix (exit code 2)."""


class UsageError(CouncilError, ValueError):
    """A value the user gave names nothing there is (exit code 2, like any bad input)."""


class RunError(CouncilError):
    """A run cannot start or continue."""


class RunLocked(RunError):
    """Another live orchestrator holds the repository's run lock (exit code 2: the command
    was refused before it changed anything)."""


class NothingToResume(RunError, ValueError):
    """``resume`` found no interrupted session (exit code 2: the user asked for something
    that is not there; nothing was created)."""


class CancelError(RunError):
    """The task cannot be cancelled (it already ended)."""


class RequeueError(RunError):
    """The task cannot be queued again as asked: a retry of one that has not ended, a rebase
    of one without an open pull request (``scheduler.retry``)."""


class WorkflowError(RunError):
    """The workflow cannot go on as asked (for example: no candidate to pick from)."""


class InvalidIdError(RunError, ValueError):
    """An id does not match ``^[a-z0-9][a-z0-9._-]{0,63}$``."""


class OutOfSpace(RunError):
    """A file system the run writes to (the repository, its worktrees, the state) is full.

    Not the task's fault, and no retry can help until someone frees space: the run stops
    where it stands, as a killed run would, and ``council resume`` continues it. ``detail``
    is the refused operation (naming the file), ``kept`` where the interrupted work is.
    """

    def __init__(self, detail: str, kept: str) -> None:
        self.detail = detail
        self.kept = kept
        super().__init__(
            f"no space left: {detail}; nothing is lost: {kept}; free space on that file "
            "system, then `council resume` continues the run"
        )


class WorkspaceError(CouncilError):
    """A problem with the user's repository, a worktree, or a path inside them."""


class SecretInWork(WorkspaceError):
    """A secret of this environment was in files a CLI wrote: masked, then committed."""

    def __init__(self, branch: str, paths: list[str]) -> None:
        self.branch = branch
        self.paths = paths
        shown = ", ".join(paths[:10]) + (" ..." if len(paths) > 10 else "")
        super().__init__(
            f"the work held the value of a secret this run knows in {shown}: "
            f"replaced by *** before it was committed (branch {branch}); not landed, so a "
            "person can look (a CLI should read keys from the environment, never write them)"
        )


class SecretInHistory(WorkspaceError):
    """A commit a task would land holds the value of a secret the run knows (in its message,
    its author or committer, a path name or a file's content, as is or encoded): not landed,
    and not retried. ``findings`` name where and which secret (by its name, never its
    value); ``masked`` says whether the refs that held it now hold a masked rewrite."""

    outcome = "secret_in_work"  # the task's ``metadata.outcome``

    def __init__(self, branch: str, findings: list[str], masked: bool) -> None:
        self.branch = branch
        self.findings = findings
        self.masked = masked
        shown = "; ".join(findings[:10]) + (" ..." if len(findings) > 10 else "")
        kept = (
            f"the branch {branch} and every ref that held it now hold the work with each such "
            "value replaced by ***"
            if masked
            else f"the branch {branch} is kept as it is"
        )
        super().__init__(
            f"not landed: the work holds the value of a secret the run knows: {shown}; {kept} "
            "(a CLI should read keys from the environment, never write them)"
        )


class CredentialInWork(SecretInHistory):
    """The lines a task would land add what looks like a credential nobody declared
    (``safety.secret_detect``: detect-secrets' plugins and council's own shapes): not landed,
    not retried, the branch kept as it is (what to mask is not known). ``findings`` name each
    file, line and kind (and the value's SHA-256 fingerprint, never the value); ``late``, the
    file being read when the check's time ran out (it fails as a hit does)."""

    outcome = "credential_in_work"

    def __init__(
        self, branch: str, findings: list[str], late: str | None = None, budget: float = 0.0
    ) -> None:
        super().__init__(branch, findings, False)
        self.late = late
        shown = "; ".join(findings[:10]) + (" ..." if len(findings) > 10 else "")
        if late is not None:
            what = (
                f"{late} too large to check in time for credentials (the {budget:g} s a check "
                "may take, COUNCIL_SECRET_SCAN_SECONDS, ran out)"
                + (f"; found before it: {shown}" if findings else "")
            )
        else:
            what = f"the work adds what looks like a credential nobody declared: {shown}"
        self.args = (
            f"not landed: {what}; the branch {branch} is kept as it is. A value that is no "
            "credential may be allowed by a `pragma: allowlist secret` comment on its line, "
            "or in the run config's `secrets: allow:` by path and kind "
            '(`{path: "tests/fixtures/*", kind: "AWS Access Key"}`) or by its fingerprint '
            "(`{fingerprint: <sha256>}`)",
        )


class SecretScanLate(SecretInHistory):
    """What a task would land could not be read for secrets within the check's time budget
    (``merge.secret_gate``): it fails as a hit does, never passes. ``late`` names the file
    being read when the time ran out, then those never reached; ``findings`` what was found
    before."""

    def __init__(
        self,
        branch: str,
        late: list[str],
        unread: int,
        budget: float,
        findings: list[str],
        masked: bool,
    ) -> None:
        super().__init__(branch, findings, masked)
        self.late = late
        self.unread = unread
        shown = ", ".join(late[:10]) + (" ..." if len(late) > 10 else "")
        found = f"; found before it: {'; '.join(findings[:10])}" if findings else ""
        more = f" ({unread} more objects never read)" if unread else ""
        self.args = (
            f"not landed: {shown} too large to check in time for secrets the run knows (the "
            f"{budget:g} s a check may take, COUNCIL_SECRET_SCAN_SECONDS, ran out){more}"
            f"{found}; the branch {branch} is kept"
            + (" with each value found replaced by ***" if masked else " as it is"),
        )


class WorktreeBusy(WorkspaceError):
    """Processes still run inside a worktree that was to be removed."""


class PathEscapeError(WorkspaceError, ValueError):
    """A path resolves outside the directory it must stay under."""


class UnusableRepository(WorkspaceError, ValueError):
    """The configured repository cannot be used as it is (not a git checkout, a symlinked
    ``.council``); refused before anything is written, and the user's to fix (exit code 2)."""


class GitError(WorkspaceError):
    """A git command failed."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or "no output"
        super().__init__(f"git {' '.join(self.argv)} failed ({returncode}): {detail}")


class RemotePushRefused(GitError):
    """The shared remote refused a push for a reason other than "the ref moved": a server
    hook declined, the branch is protected, no permission, the remote is unreachable.
    ``reason`` is git's short reason, ``server`` what the server said (a hook's lines).
    Never retried, never forced: nothing was changed on the remote."""

    def __init__(
        self,
        remote: str,
        ref: str,
        reason: str,
        server: Sequence[str],
        argv: Sequence[str],
        returncode: int | None,
    ) -> None:
        self.remote = remote
        self.ref = ref
        self.reason = reason
        self.server = list(server)
        said = "; ".join(self.server)
        detail = f"{reason}: {said}" if said and said != reason else reason
        GitError.__init__(self, argv, returncode, "\n".join(self.server) or reason)
        WorkspaceError.__init__(
            self, f"remote {remote!r} refused the push to {ref} ({detail}); nothing was forced"
        )


class MergeContention(WorkspaceError):
    """Another writer moved the base branch during every one of the merge queue's attempts."""

    def __init__(self, base_branch: str, attempts: int, last_error: str = "") -> None:
        self.base_branch = base_branch
        self.attempts = attempts
        self.last_error = last_error
        hint = (
            f" (last refusal: {last_error})"
            if last_error
            else "; another process keeps writing it (run its merges through the same merge "
            "lock, then retry)"
        )
        super().__init__(
            f"base branch {base_branch!r} moved or was locked during each of {attempts} merge "
            f"attempts{hint}"
        )


class BaseLocked(MergeContention):
    """A lock file of git's own (``<ref>.lock``, ``HEAD.lock``, ``packed-refs.lock``, the
    checkout's ``index.lock``) kept the merge queue from moving the base branch; ``locks``
    describes each (path, age, who holds it). Nothing was changed."""

    def __init__(self, base_branch: str, locks: Sequence[str], waited: float = 0.0) -> None:
        self.locks = list(locks)
        self.waited = waited
        how = f"waited {waited:.1f} s for it; " if waited > 0 else ""
        detail = "; ".join(self.locks)
        WorkspaceError.__init__(
            self,
            f"cannot move base branch {base_branch!r}: {detail}; {how}nothing was changed "
            "and the task's branch keeps its work. Once no git command runs in that "
            "repository any more, remove the lock file (git's own advice after a crash) and "
            "run the task again",
        )
        self.base_branch = base_branch
        self.attempts = 1
        self.last_error = detail


class LockError(CouncilError):
    """A lock could not be taken or released."""


class LockTimeout(LockError, TimeoutError):
    """A lock stayed held by someone else until the timeout ran out; ``owner`` names the
    holder when it is known (a session id for repository file locks)."""

    def __init__(self, path: Path | str, timeout: float, owner: str | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.owner = owner
        holder = f"session {owner}" if owner else "another holder"
        super().__init__(f"lock {self.path} still held by {holder} after {timeout:g}s")


class LockUnusable(LockError):
    """A lock file cannot be taken for a reason other than a holder: a symbolic link or a
    directory with files in its place, or the OS refusing it. Nobody holds it, so waiting
    cannot help: the message names the file and what to do, then `council resume`."""


class DeadlockError(LockError):
    """Waiting for a lock would close a cycle: each session in ``cycle`` waits for a path held
    by the next one, and the last waits for a path held by the first.

    ``cycle`` lists ``(session, path it waits for, session holding that path)``, starting with
    the session whose wait was refused.
    """

    def __init__(self, cycle: Sequence[tuple[str, str, str]]) -> None:
        self.cycle: list[tuple[str, str, str]] = list(cycle)
        self.sessions = [waiter for waiter, _, _ in cycle]
        self.paths = [path for _, path, _ in cycle]
        steps = "; ".join(
            f"session {waiter} waits for {path!r} held by session {holder}"
            for waiter, path, holder in cycle
        )
        super().__init__(f"deadlock refused: {steps}")


class ForgeError(CouncilError):
    """The forge answered ``status`` (None: it was not reached) with ``message`` to ``request``
    (``METHOD /path``, no query, no credentials)."""

    def __init__(self, request: str, status: int | None, message: str) -> None:
        where = f"answered {status}" if status is not None else "could not be reached"
        super().__init__(f"GitHub {where} to {request}: {message}")
        self.request = request
        self.status = status
        self.message = message


class ForgeAuthError(ForgeError):
    """No token, a token the forge does not accept (401), or one without the scope (403)."""


class ForgeNotFound(ForgeError):
    """The issue, pull request, commit or repository asked for is not there (404)."""


class ForgeRefused(ForgeError):
    """The forge refused the request as it was asked (422: validation failed)."""


class ForgeUnavailable(ForgeError):
    """Server errors or no connection after the bounded retries, or a rate limit that lifts
    later than the forge client may wait."""


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


_FULL_ERRNOS = frozenset({errno_codes.ENOSPC, errno_codes.EDQUOT})
# What git prints when a write runs out of space (its own wording, or strerror's).
_FULL_MESSAGES = ("No space left on device", "Out of diskspace", "Disk quota exceeded")


def needs_repair(error: BaseException) -> bool:
    """Did ``error``, or an error it was raised from, come of the orchestrator's own files
    being unusable: a damaged record, a state write the disk or a planted link refused, a
    lock file nobody holds that cannot be taken? Not the task's fault, and no retry helps
    until someone repairs it (the message says how), so the run stops, resumable, instead of
    failing or requeueing tasks forever. Only what the error was raised *from* counts (not
    an error that was merely being handled when it came)."""
    return _in_chain(error, _unusable, context=False)


def stops_the_run(error: BaseException) -> bool:
    """Is ``error`` one that stops a run (resumable) instead of failing the task it hit?"""
    return out_of_space(error) or needs_repair(error)


def out_of_space(error: BaseException) -> bool:
    """Did ``error``, or an error it was raised from, come of a full file system?"""
    return _in_chain(error, _full, context=True)


def _full(error: BaseException) -> bool:
    if isinstance(error, OutOfSpace):
        return True
    if isinstance(error, OSError | StateWriteError) and error.errno in _FULL_ERRNOS:
        return True
    return isinstance(error, GitError) and any(m in error.stderr for m in _FULL_MESSAGES)


def _unusable(error: BaseException) -> bool:
    return isinstance(error, StateCorrupted | StateWriteError | LockUnusable)


def _in_chain(
    error: BaseException, test: Callable[[BaseException], bool], *, context: bool
) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if test(current):
            return True
        current = current.__cause__ or (current.__context__ if context else None)
    return False
