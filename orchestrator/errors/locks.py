"""A lock could not be taken or released: held too long, unusable, or a deadlock refused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors.base import CouncilError

__all__ = ["DeadlockError", "LockError", "LockTimeout", "LockUnusable"]


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
