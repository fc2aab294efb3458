"""No secret lands: the check every landing makes before it writes anything.

``SecretGate.check(calls, branch_ref, tip, base)`` runs inside each merge attempt, on the tips
that attempt read (the local queue's and the remote landing's alike, ``merge.attempt``), so
what is checked is exactly what would land. It reads every object ``tip`` brings that
``base`` lacks (the CLI's own commits as well as the orchestrator's: messages, authors and
committers, path names, file contents; ``merge.secret_scan``) and looks for every secret the
run knows (``safety.secret_mask.names``: the orchestrator's sensitive-named variables, and
everything handed to a child, each known by the name it was given under), as is and encoded
(``safety.secret_forms``).

A hit raises ``SecretInHistory`` naming each place (commit short id and field, file, path
name) and the secret's name, never its value; the task is not landed and not retried. Before
it raises, the work is kept masked in every ref that held it and the old objects deleted
(``merge.secret_rewrite``).

Every file is read whatever its size (streamed, ``secret_scan``); what is bounded is the
time: ``budget`` seconds a check (``safety.secret_stream.budget_seconds``:
``COUNCIL_SECRET_SCAN_SECONDS``, 120 by default). A check
that runs past it fails as a hit does (``SecretScanLate``, a ``SecretInHistory``: not
landed, not retried), naming the file it was reading as too large to check in time and the
files it never reached; it never passes.

Without a known secret nothing runs. A tip found clean is remembered with the secrets it was
checked for, so a merge retried on a moved base reads nothing again.

Then credentials nobody declared: the lines ``tip`` adds since it left ``base``
(``merge.secret_added``, ``safety.secret_detect``: detect-secrets' plugins and council's own
shapes, the run's ``secrets.allow`` honoured). A hit raises ``CredentialInWork`` naming each
file, line and kind (the branch kept as it is: what to mask is not known); past the same
budget it fails the same way. A tip, fork point and allow-list found clean is remembered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import CredentialInWork, SecretInHistory, SecretScanLate
from orchestrator.git.merge_tree import GitCalls
from orchestrator.merge.secret_rewrite import mask_history
from orchestrator.merge.secret_scan import needles_for, scan
from orchestrator.safety import secret_mask
from orchestrator.safety.secret_allow import allowed
from orchestrator.safety.secret_stream import budget_seconds

if TYPE_CHECKING:
    from orchestrator.safety.secret_detect import Detector

__all__ = ["SecretGate"]

_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # ``merge.secret_added``'s

log = logging.getLogger(__name__)

_CLEAN_KEPT = 256


class SecretGate:
    def __init__(
        self,
        known: Callable[[], Mapping[str, str]] = secret_mask.names,
        private_stores: Path | None = None,
        budget: float | None = None,
        detector: Detector | None = None,  # None: one made at the first check
    ) -> None:
        self._known = known
        self._detector = detector
        # None: ``budget_seconds()`` read at each check (the environment may set it).
        self._budget = None if budget is None else budget_seconds(budget, "SecretGate budget")
        # Where sandboxed CLIs keep the objects they write until taken in (``git.objects``):
        # a branch a running CLI committed on points into one of them.
        self._private_stores = private_stores
        self._clean: dict[str, frozenset[str]] = {}  # tip -> the secrets it was clean of
        self._undeclared_clean: set[tuple[str, str, object]] = set()  # tip, base, allow-list
        self._lock = threading.Lock()

    def check(
        self, calls: GitCalls, branch: str, tip: str, base: str | Sequence[str], common: Path
    ) -> None:
        """Raise ``SecretInHistory`` when what ``tip`` would bring onto ``base`` holds a
        known secret (module doc), or ``CredentialInWork`` when the lines it adds hold a
        credential nobody declared; blocking, in the merge attempt's worker thread. ``base``:
        one commit, or several (what a push's remote has already, ``merge.push_gate``: the
        lines added are read since ``tip`` left the first)."""
        bases = [base] if isinstance(base, str) else list(base)
        self._known_secrets(calls, branch, tip, bases, common)
        # No base the remote has: every line of ``tip`` is added (``added`` diffs from the
        # empty tree when ``base`` shares no history with it).
        self._undeclared(calls, branch, tip, bases[0] if bases else _EMPTY_TREE)

    def _undeclared(self, calls: GitCalls, branch: str, tip: str, base: str) -> None:
        """Raise ``CredentialInWork`` when the lines ``tip`` adds over ``base`` hold a
        credential nobody declared (module doc)."""
        key = (tip, base, allowed())
        with self._lock:
            if key in self._undeclared_clean:
                return
        # Imported here, in the check's worker thread: detect-secrets costs a run's start
        # a few hundred milliseconds otherwise (``safety.secret_allow``).
        from orchestrator.merge.secret_added import added
        from orchestrator.safety.secret_detect import Detector

        with self._lock:
            if self._detector is None:
                self._detector = Detector()
            detector = self._detector
        budget = self._budget if self._budget is not None else budget_seconds()
        found = added(calls, tip, base, detector, deadline=time.monotonic() + budget)
        if found.hits or found.late is not None:
            findings = [hit.describe() for hit in found.hits]
            raise CredentialInWork(branch, findings, found.late, budget)
        with self._lock:
            if len(self._undeclared_clean) >= _CLEAN_KEPT:
                self._undeclared_clean.clear()
            self._undeclared_clean.add(key)

    def _known_secrets(
        self, calls: GitCalls, branch: str, tip: str, bases: list[str], common: Path
    ) -> None:
        known = dict(self._known())
        if not known:
            return
        secrets = frozenset(known)
        with self._lock:
            if self._clean.get(tip) == secrets:
                return
        needles = needles_for(known)
        budget = self._budget if self._budget is not None else budget_seconds()
        deadline = time.monotonic() + budget
        # The objects stored loose (a session's commits, trees and files are) read from their
        # files, ``cat-file`` only for the rest (``secret_scan``).
        found = scan(calls, [tip], bases, needles, deadline=deadline, common=common)
        if not found.findings and not found.late:
            with self._lock:
                if len(self._clean) >= _CLEAN_KEPT:
                    self._clean.clear()
                self._clean[tip] = secrets
            return
        findings = [finding.describe() for finding in found.findings]
        moved = False
        if found.findings:
            masked = mask_history(
                calls, tip, bases, found, needles, common, private_stores=self._private_stores
            )
            moved = bool(masked.moved)
            if masked.moved:
                log.warning(
                    "branch %s held a secret's value; masked in %s",
                    branch,
                    ", ".join(sorted(masked.moved)),
                )
        if found.late:
            raise SecretScanLate(branch, found.late, found.unread, budget, findings, moved)
        raise SecretInHistory(branch, findings, moved)

    def clean(self, tip: str) -> bool:
        """Whether ``tip`` was found clean, of every secret the run knows now, over the base
        it was checked against (a tip whose commits a later check may leave out)."""
        known = frozenset(self._known())
        with self._lock:
            return bool(known) and self._clean.get(tip) == known
