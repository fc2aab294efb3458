"""What the tamper guard keeps of a session (``guard.TamperGuard``): its ``Watch``, taken before its
CLI started, the looks it is made of, and the ``Tampering`` found after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.worktrees.tamper.blame import Finding, Window
from orchestrator.worktrees.tamper.checkout import Listed
from orchestrator.worktrees.tamper.files import FileState
from orchestrator.worktrees.tamper.refs import RefSnapshot

__all__ = ["FinishLook", "Looked", "Snapshot", "Tampering", "Watch"]

# A watch's looks before a session: git's setup files, ``.council/worktrees/``'s entries, the
# shared refs, the reflogs of the session's task (``TamperGuard._snapshot``).
Snapshot = tuple[dict[Path, FileState], frozenset[str], RefSnapshot | None, dict[str, bytes]]
# A confined session's check after its CLI: the refs' findings, the new entries.
Looked = tuple[list["Finding"], list[str]]


@dataclass(frozen=True)
class Tampering:
    """What changed outside a session's worktree, one line per thing, for a human.

    ``retryable``: nothing of it is traced to this session (``tamper.blame``): it changed
    while other sessions ran beside it, one of which did it; the session is checked again
    (its phase runs again) rather than failed for good."""

    changes: tuple[str, ...]
    retryable: bool = False

    @property
    def message(self) -> str:
        shown = "; ".join(self.changes[:12]) + (" ..." if len(self.changes) > 12 else "")
        if self.retryable:
            return f"something changed outside the worktrees while it ran: {shown}"
        return f"changed outside its worktree: {shown}"


@dataclass(frozen=True)
class Watch:
    """One session's snapshot, taken before its CLI started."""

    serial: int
    worktree: Path
    started: float  # time.monotonic()
    files: dict[Path, FileState]
    listed: Listed
    entries: frozenset[str]
    refs: RefSnapshot | None  # None: the guard watches no refs (no base ref given)
    own: str | None  # the session's own branch (a ref), its CLI's to move
    window: Window  # the session as the blame ledger knows it
    confined: bool = False  # its CLI cannot write the main checkout (the sandbox): not looked at
    logs: dict[str, bytes] = field(default_factory=dict)  # its task's reflogs (``reflogs``)


# What ``Finishing.look`` gives: what it put back of git's setup, the checkouts cut off, and
# for a confined session with none cut, its refs' findings and new entries.
FinishLook = tuple[list[Finding], list[Path], Looked | None]
