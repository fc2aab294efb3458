"""Which tasks the base branch already landed, read from its ``Council-Task`` trailers.

A task's branch may be rebased or recreated (a new attempt after a crash), so "the base
contains the branch tip" does not catch every earlier landing; the trailer on the base's
first-parent history does. Scanning that history on every merge would cost a git process per
merge, so the index remembers the tip it was built for and only reads what is new:

- base unchanged since the last look: no git call;
- base moved forward along its first-parent chain (by us: recorded without a call; by another
  writer: one ``git log <base> ^<known>``);
- base rewritten (reset, force-push): rebuilt from the whole first-parent history;
- base an older commit of the chain it knows (a look at the tip an earlier landing read, made
  after later landings moved the known tip on): answered from the positions of the commits it
  knows along that chain, without a call and without forgetting the newer tip.

Only a merge commit (two parents) counts as a landing: the queue lands every task as one, so a
commit pushed onto the base by hand or by a CLI (``git push origin HEAD:main``) that carries a
``Council-Task`` trailer in its message does not make its task landed. Such commits, and every
other first-parent commit that is no landing, are kept as ``outside`` while the index extends
its known tip, for the queue to say the base moved outside it (``take_outside``), and to tell
a branch whose own commits reached the base that way (``outside_work``).

Only a move the index *extends* over is seen: the first look reads the whole history, whose
commits are no news. So the remote mode reads the base from the start of the run, each time it
fetches it (``follow``): a CLI's push before the first landing is then a move like any other.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from orchestrator.git.merge_tree import TASK_TRAILER, GitCalls

__all__ = ["TaskIndex"]

_TRAILERS = f"%(trailers:key={TASK_TRAILER},valueonly,separator=%x1f)"
_OUTSIDE_KEPT = 100


class TaskIndex:
    """task id -> the first-parent commit of the base whose message names it."""

    def __init__(self) -> None:
        self._tip: str | None = None
        self._tasks: dict[str, str] = {}
        self._lock = threading.Lock()  # merges of one queue may run in different threads
        self._outside: deque[tuple[str, str]] = deque(maxlen=_OUTSIDE_KEPT)  # (sha, subject)
        # every one seen by this index (not only those not yet said): for ``outside_work``
        self._seen_outside: deque[tuple[str, str]] = deque(maxlen=_OUTSIDE_KEPT)
        # first-parent commits of the known chain -> their place along it (every landing, and
        # every commit read by ``_extend`` or recorded): answers a look at an older tip
        self._place: dict[str, int] = {}

    def take_outside(self) -> list[tuple[str, str]]:
        """The first-parent commits of the base that are no landing, seen since the last call:
        ``(sha, subject)``, oldest first."""
        with self._lock:
            found = list(self._outside)
            self._outside.clear()
            return found

    def follow(self, calls: GitCalls, base: str) -> None:
        """Read ``base`` now (a tip just fetched), so that a commit that lands on it later
        outside the queue is seen as one (module doc). No call when it is known already."""
        with self._lock:
            if self._tip != base and base not in self._place:
                self._sync(calls, base)

    def outside_work(self, calls: GitCalls, tip: str, forked: str) -> list[tuple[str, str]]:
        """Of the commits this index saw land on the base outside the queue, those that are a
        branch's own work: in ``tip``, not in ``forked`` (where the branch started). A CLI
        that pushed its commits onto the base. No git call while none was seen."""
        with self._lock:
            seen = list(self._seen_outside)
        return [
            (sha, subject)
            for sha, subject in seen
            if calls.is_ancestor(sha, tip) and not calls.is_ancestor(sha, forked)
        ]

    def lookup(self, calls: GitCalls, base: str, task_id: str) -> str | None:
        """The commit that landed ``task_id`` on ``base``'s first-parent history, or None."""
        with self._lock:
            if self._tip != base:
                at = self._place.get(base)
                if at is not None:  # an older tip of the chain known: no call
                    landed = self._tasks.get(task_id)
                    if landed is not None and self._place.get(landed, at + 1) <= at:
                        return landed
                    return None
                self._sync(calls, base)
            return self._tasks.get(task_id)

    def all_known(self, base: str, task_ids: Iterable[str]) -> bool:
        """Whether ``lookup`` would find every one of ``task_ids`` on ``base`` without a git
        call: True only when the index already knows it; False when it cannot tell so in
        memory, or another thread holds the index (it is never waited for: callable on the
        event loop)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            at = None if self._tip == base else self._place.get(base)
            if self._tip != base and at is None:
                return False
            for task_id in task_ids:
                landed = self._tasks.get(task_id)
                if landed is None or (at is not None and self._place.get(landed, at + 1) > at):
                    return False
            return True
        finally:
            self._lock.release()

    def extends(self, older: str, newer: str) -> bool:
        """Whether ``newer``'s first-parent chain holds ``older``, as the index knows it without
        a git call: both on its known chain, ``older`` no later than ``newer``. False when it
        cannot tell so in memory, or another thread holds the index (never waited for:
        callable on the event loop). What was on the base at ``older`` is then on it at
        ``newer``: its first-parent history, and every commit it contains."""
        if older == newer:
            return True
        if not self._lock.acquire(blocking=False):
            return False
        try:
            at = self._place.get(older)
            if at is None and older != self._tip:
                return False
            if newer == self._tip:
                return True  # every commit the index places is on its tip's chain
            if older == self._tip:
                return False  # the tip is the newest the index knows of
            later = self._place.get(newer)
            return later is not None and at is not None and at <= later
        finally:
            self._lock.release()

    def record(self, old_base: str, new_base: str, task_id: str) -> None:
        """Our own merge moved the base from ``old_base`` to ``new_base``: no need to re-read."""
        with self._lock:
            if self._tip == old_base:
                self._tip = new_base
                self._tasks.setdefault(task_id, new_base)
                self._place.setdefault(new_base, len(self._place))

    def _sync(self, calls: GitCalls, base: str) -> None:
        if self._tip is not None and self._extend(calls, base, self._tip):
            return
        out = calls.run(
            "log",
            "--first-parent",
            f"--grep=^{TASK_TRAILER}:",
            f"--format=%H%x1f%P%x1f{_TRAILERS}%x1e",
            base,
        ).stdout
        tasks: dict[str, str] = {}
        order: list[str] = []  # the landings, newest first
        for record in out.split("\x1e"):
            fields = record.strip().split("\x1f")
            if len(fields) < 2:
                continue
            sha, parents, *names = fields
            if len(parents.split()) != 2:
                continue  # not a landing: the queue lands every task as a merge
            order.append(sha)
            for name in names:
                tasks[name.strip()] = sha  # newest first: the oldest landing wins
        tasks.pop("", None)
        self._tip, self._tasks = base, tasks
        self._place = {sha: n for n, sha in enumerate(reversed(order))}

    def _extend(self, calls: GitCalls, base: str, known: str) -> bool:
        """Add the commits between ``known`` and ``base``; False when ``base`` does not extend
        ``known``'s first-parent chain (the caller then rebuilds)."""
        out = calls.run(
            "log",
            "--first-parent",
            f"--format=%H%x1f%P%x1f%s%x1f{_TRAILERS}%x1e",
            base,
            f"^{known}",
        ).stdout
        records = [r.strip().split("\x1f") for r in out.split("\x1e") if r.strip()]
        if not records or records[-1][1].split(" ")[0] != known:
            return False
        for sha, parents, subject, *names in reversed(records):
            landed = [name.strip() for name in names if name.strip()]
            if not landed or len(parents.split()) != 2:
                self._outside.append((sha, subject))
                self._seen_outside.append((sha, subject))
                continue
            for name in landed:
                self._tasks.setdefault(name, sha)
        for record in reversed(records):
            self._place.setdefault(record[0], len(self._place))
        self._tip = base
        return True
