"""No secret leaves: the secret gate's check before a session's work is pushed to a remote.

In a team every phase end pushes the session's branch to the remote for takeover
(``git.publish``: ``refs/council/branches/...``, ``refs/council/rescue/...``). A commit a CLI
made by itself may hold a secret the run knows, and the remote keeps whatever it was given
(a masked push later does not take the objects back), so the push is checked first, by the
same gate every landing passes (``merge.secret_gate``, the same scan, the same budget, the
same cache of clean tips).

``PushGate.check(calls, ref, tip, published)`` reads what the push would bring that the
remote has already: ``tip`` less the remote's base as last fetched
(``refs/remotes/<remote>/<base>``, else the local base) and less what this clone last
published there, when the gate found that clean (then ``tip`` found clean is clean over the
base too, and remembered so: a later publication or landing of it reads nothing again).
Anything else published there is read again, so a clean answer always holds over the base.

A hit raises ``SecretInHistory`` after the work is masked in every local ref, as a landing's
hit does; a check past its budget raises ``SecretScanLate``. Either way the caller pushes
nothing. Blocking: ``git.publish`` calls it in its worker thread, before the push.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.git.merge_tree import GitCalls
from orchestrator.merge.secret_gate import SecretGate

__all__ = ["PushGate"]


class PushGate:
    def __init__(self, gate: SecretGate, bases: Sequence[str], common: Path) -> None:
        """``bases``: the refs whose commits the remote has, the first that names a commit
        counting; ``common``: the repository's common git directory (where a hit's masking
        finds the worktrees)."""
        if not bases:
            raise ValueError("PushGate needs the ref of the base the remote has")
        self._gate = gate
        self._bases = tuple(bases)
        self._common = common

    def check(self, calls: GitCalls, ref: str, tip: str, published: str | None) -> None:
        """Raise ``SecretInHistory`` (or ``SecretScanLate``) when pushing ``tip`` where
        ``published`` was last pushed would bring a known secret (module doc)."""
        exclude: list[str] = []
        for base in self._bases:
            commit = calls.rev_parse(base)
            if commit is not None:
                exclude.append(commit)
                break
        if published is not None and self._gate.clean(published):
            exclude.append(published)
        self._gate.check(calls, ref.removeprefix("refs/heads/"), tip, exclude, self._common)
