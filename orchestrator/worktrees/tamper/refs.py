"""The shared refs and the base checkout a CLI must leave alone: read before, checked after.

``tamper`` runs this around every CLI session (blocking: call it in a worker thread):

- **Refs, compared by value, never by file.** ``snapshot`` reads the base ref and every ref
  under ``refs/heads/council/`` and ``refs/council/`` (sessions' branches, rescue refs) from
  git's ref files (``git.ref_files``; one ``git for-each-ref`` where those cannot be read
  exactly, as in a reftable repository); ``check`` reads them again. Git's own bookkeeping
  (``git gc`` packing loose refs into ``packed-refs``, reflogs, ``FETCH_HEAD``, ``ORIG_HEAD``,
  packs) changes no value, so it is never a change here. Between the two reads the orchestrator
  itself moves these refs (merges, commits, new and dropped branches, rescue refs); each
  such write is noted in ``ref_book``, so a ref's expected value is its value at the
  snapshot followed through the orchestrator's own notes. Anything else is someone else's
  doing and is **undone**: a moved ref is put back (compare-and-swap: never over a value
  that changed again) with the value it was moved to kept under
  ``refs/council/tampered/<stamp>/...``, so nothing a CLI committed becomes unreachable; a
  deleted ref is created again at the value the orchestrator last knew. A ref created by
  someone else in a task's namespace (``refs/heads/council/<task>/``, a CLI's ``git branch
  council/<task>/99``: under a sandbox its CLI can write there, beside its own branch) is moved
  aside the same way, kept under ``refs/council/tampered/<stamp>/...``: every name there is read
  as one of the task's attempts (the next attempt's number, a human's ``git branch``), so only
  the orchestrator's stay; one created under ``refs/council/`` is named and left in place. Whose
  doing each is: ``tamper.blame`` (a task's namespace is in the reach of that task's sessions
  alone when the CLIs run in a sandbox). The branches of the sessions
  running (``own``: the checked session's and its neighbours', ``tamper.blame``) are their
  CLIs' to move (aider commits on its own branch): a move there is its session's work, never
  a change; only such a branch deleted is one, put back at the last value the orchestrator
  knew (commits its CLI made since are still in its worktree's HEAD reflog).
- **Base checkouts.** A linked worktree that holds the base branch checked out (a CLI's
  ``git worktree add --ignore-other-worktrees <dir> <base>``, or its own worktree switched
  to the base) would make the merge queue wait for that checkout forever, and a later
  cleanup commit onto the base. ``base_holders`` lists the linked worktrees' git dirs whose
  HEAD is the base (a few small file reads, no process); ``release_base`` detaches every one
  that did not hold the base at the snapshot (HEAD stays at its commit, files and index
  untouched), then commits any uncommitted work there on that detached HEAD and keeps it
  under ``refs/council/tampered/<stamp>/worktree-<name>``; each is named with its admin
  directory, which tells whose worktree it was (``tamper.blame``). It runs before ``check``, so a
  base moved by a commit in such a checkout is then put back without the checkout's files
  turning into reversed changes. The user's main checkout is never touched.

Limits: a ref moved by someone else and then moved again by the orchestrator (a merge landed
on top of a base a CLI had moved) cannot be put back without undoing the merge: it is named,
not undone. Refs written by another orchestrator process on the same repository are not in
this process's book and would be taken for a CLI's.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import CouncilError
from orchestrator.git import ref_book
from orchestrator.git.ref_files import read_refs
from orchestrator.git.repo import ZERO_SHA, Git
from orchestrator.merge.checkout import checkout_lock
from orchestrator.worktrees.commits import save_uncommitted_sync

__all__ = ["KEPT_PREFIX", "PROTECTED", "RefSnapshot", "SharedRefs"]

TASK_BRANCHES = "refs/heads/council"  # refs/heads/council/<task>/<n>: the tasks' attempts
PROTECTED = (TASK_BRANCHES, "refs/council")
KEPT_PREFIX = "refs/council/tampered"
_REASON = "council: undo a change made outside the orchestrator"


@dataclass(frozen=True)
class RefSnapshot:
    values: dict[str, str]  # ref -> object id
    at: int  # ref_book.now() at the read: the orchestrator's notes after it follow it
    holders: frozenset[Path]  # linked worktrees' git dirs holding the base at the snapshot


@dataclass(frozen=True)
class SharedRefs:
    git: Git  # runs in the main checkout
    common_dir: Path
    base_ref: str

    def snapshot(self) -> RefSnapshot:
        holders = self.base_holders()
        with ref_book.writing():
            return RefSnapshot(self._read(), ref_book.now(), holders)

    def base_holders(self) -> frozenset[Path]:
        """Linked worktrees' git dirs whose HEAD is the base branch."""
        try:
            with os.scandir(self.common_dir / "worktrees") as entries:
                admins = [entry.path for entry in entries if entry.is_dir()]
        except OSError:
            return frozenset()
        wanted = f"ref: {self.base_ref}"
        # Plain strings: read at every session's look, a path object only for a holder.
        return frozenset(Path(admin) for admin in admins if _read(f"{admin}/HEAD") == wanted)

    def release_base(self, before: RefSnapshot, stamp: str) -> list[tuple[Path, str]]:
        """Detach every linked worktree that took the base since ``before`` (module doc);
        each one's admin directory (whose worktree it is), and what was done."""
        changes = []
        for admin in sorted(self.base_holders() - before.holders):
            gitdir = _read(admin / "gitdir")
            path = (admin / gitdir).parent if gitdir else None
            shown = str(path) if path is not None else str(admin)
            name = self.base_ref.removeprefix("refs/heads/")
            what = f"worktree {shown}: has the base branch {name} checked out"
            try:
                changes.append((admin, f"{what} ({self._release(admin, path, stamp)})"))
            except CouncilError as exc:
                changes.append((admin, f"{what} (could not be detached: {exc})"))
        return changes

    def _release(self, admin: Path, path: Path | None, stamp: str) -> str:
        here = self.git.run_sync("--git-dir", str(admin), "rev-parse", "--verify", "-q", "HEAD")
        head = here.out
        lock = checkout_lock(path) if path is not None else checkout_lock(admin)
        with lock:  # never while the merge queue fast-forwards that checkout
            self.git.run_sync(
                *("--git-dir", str(admin), "update-ref", "--no-deref", "-m", _REASON),
                *("HEAD", head),
            )
            if path is None or not (path / ".git").is_file():
                return f"detached at {head[:10]}; its directory is gone"
            saved = save_uncommitted_sync(
                self.git.at(path), admin, task_id="tamper-check", session_id="tamper-check"
            )
        if saved.rescue_commit is None:
            return f"detached at {head[:10]}"
        kept = f"{KEPT_PREFIX}/{stamp}/worktree-{admin.name}"
        with ref_book.writing():
            self._write(kept, saved.rescue_commit, None)
        return f"detached at {head[:10]}; its uncommitted work committed and kept at {kept}"

    def check(self, before: RefSnapshot, own: Collection[str], stamp: str) -> list[tuple[str, str]]:
        """What changed in the watched refs since ``before`` that the orchestrator did not
        write, each undone where it can be (module doc); each ref and one line, for a human.
        The running sessions' own branches (``own``) are their CLIs' to move: only their
        deletion is a change (put back)."""
        changes: list[tuple[str, str]] = []
        with ref_book.writing():
            if not ref_book.complete_since(before.at):
                return []  # too many of the orchestrator's own writes since to tell them apart
            now = self._read()
            noted = ref_book.refs_since(before.at)
            watched = before.values.keys() | now.keys() | {r for r in noted if self._watched(r)}
            for ref in sorted(watched):
                expected = before.values.get(ref)
                current = now.get(ref)
                if ref in own:
                    last = ref_book.since(ref, before.at)
                    if current is None and (last[-1].new if last else expected) is not None:
                        # Its CLI's to move, not to delete: the last value known comes back.
                        expected = last[-1].new if last else expected
                        changes.append((ref, self._undo(ref, expected, current, stamp)))
                    continue
                for step in ref_book.since(ref, before.at):
                    if step.old is not None and step.old != expected:
                        changes.append(
                            (
                                ref,
                                f"{ref}: moved from {_short(expected)} to {_short(step.old)} "
                                "before the orchestrator moved it on (not undone)",
                            )
                        )
                    expected = step.new
                if current != expected:
                    changes.append((ref, self._undo(ref, expected, current, stamp)))
        return changes

    def _undo(self, ref: str, expected: str | None, current: str | None, stamp: str) -> str:
        if expected is None:
            return f"{ref}: created at {_short(current)} ({self._move_aside(ref, current, stamp)})"
        kept = ""
        if current is not None:
            aside = f"{KEPT_PREFIX}/{stamp}/{ref.removeprefix('refs/')}"
            if self._write(aside, current, None):
                kept = f"; the value it was moved to kept at {aside}"
            what = f"moved from {_short(expected)} to {_short(current)}"
        else:
            what = f"deleted (it was at {_short(expected)})"
        if self._write(ref, expected, current):
            return f"{ref}: {what} (restored to {_short(expected)}{kept})"
        return f"{ref}: {what} (not restored: it changed again meanwhile{kept})"

    def _move_aside(self, ref: str, current: str | None, stamp: str) -> str:
        """A ref someone else created: under a task's namespace (``refs/heads/council/<task>/``,
        where every name is read as one of the task's attempts) it is moved aside, kept under
        ``KEPT_PREFIX`` so no commit of it is lost; elsewhere left in place."""
        if current is None or not ref.startswith(f"{TASK_BRANCHES}/"):
            return "left in place"
        aside = f"{KEPT_PREFIX}/{stamp}/{ref.removeprefix('refs/')}"
        if not self._write(aside, current, None):
            return "left in place: it could not be kept aside"
        if not self.git.run_sync("update-ref", "-m", _REASON, "-d", ref, current, check=False).ok:
            return f"left in place: it changed again meanwhile; a copy kept at {aside}"
        ref_book.note(ref, None, None)  # judged here: see ``_write``
        return f"moved aside to {aside}"

    def _write(self, ref: str, new: str, old: str | None) -> bool:
        """Compare-and-swap ``ref`` from ``old`` (None: absent) to ``new``, noted (the caller
        holds ``ref_book.writing``)."""
        args = ("update-ref", "-m", _REASON, ref, new, old or ZERO_SHA)
        if not self.git.run_sync(*args, check=False).ok:
            return False
        # Noted as replacing a value not known: the change it undoes is judged by this check
        # (``tamper.blame`` owes it to whoever could have made it), not found again by the
        # check of every other session whose window saw it, as a move "before the
        # orchestrator moved it on".
        ref_book.note(ref, None, new)
        return True

    def _watched(self, ref: str) -> bool:
        return ref == self.base_ref or any(ref.startswith(p + "/") for p in PROTECTED)

    def _read(self) -> dict[str, str]:
        # From git's ref files when they can be read exactly (no process); else from git.
        found = read_refs(self.common_dir, (self.base_ref, *PROTECTED))
        if found is not None:
            return {ref: sha for ref, sha in found.items() if self._watched(ref)}
        listed = self.git.run_sync(
            "for-each-ref", "--format=%(objectname) %(refname)", self.base_ref, *PROTECTED
        )
        values = {}
        for line in listed.out.splitlines():
            sha, _, ref = line.partition(" ")
            if self._watched(ref):
                values[ref] = sha
        return values


def _short(sha: str | None) -> str:
    return sha[:10] if sha else "nothing"


def _read(path: Path | str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return ""
