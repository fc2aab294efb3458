"""Building a merge train: each boarded branch merged onto the one before it, on one base tip.

``Cars`` reads the base once (the first request's look), then for each request in order runs
the checks one landing runs (``merge.secret_gate``, then ``merge.attempt.examine``) against the
train so far: the base, plus every merge built before it. A request that landed already, that
conflicts (with the base or with an earlier car: as it would, had that one landed first), or
whose check failed (a secret, a missing branch) is settled there and adds nothing; one that
merges cleanly becomes a *car*: a two-parent merge commit whose first parent is the car before
it (or the base), carrying its own ``Council-Task`` trailer. The train's tip is the last car;
moving the base to it (one ``update-ref``, or one push) lands every car at once, and the base's
first-parent history shows one merge commit per task, exactly as landings one at a time would.

A car can be taken off again while it is the last (``drop``: the remote landing's write-ahead
record refused it): the train's tip goes back to the one before it, so the cars after are built
on what will really land. Whether a task landed is always read against the base tip of record
(``landed``), never against cars that have not landed yet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import CouncilError
from orchestrator.git.merge_tree import GitCalls, Tips, commit_merge, commit_message, read_tips
from orchestrator.merge.attempt import Request, examine
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.secret_gate import SecretGate
from orchestrator.merge.types import MergeResult, MergeStatus

__all__ = ["Car", "Cars", "Outcome", "Split"]

Outcome = MergeResult | Exception
"""What one request of a train came to: its result, or the error that is its alone."""


@dataclass(frozen=True)
class Split:
    """Landing the train at once is in the way of one of its cars (the base's checkout would
    block it): the cars go one by one instead."""


@dataclass(frozen=True)
class Car:
    """A request that merges cleanly: ``commit`` merges its branch onto ``parent``."""

    index: int  # the request's place in the train
    request: Request
    report: MergeResult  # status merged; base_before is ``parent``
    tree: str
    commit: str
    parent: str
    parent_tree: str


class Cars:
    """One attempt at a train (see the module doc): fed its requests in order by ``add``."""

    def __init__(
        self,
        calls: GitCalls,
        base_ref: str,
        base_branch: str,
        history: TaskIndex,
        gate: SecretGate,
        common: Path,
        *,
        read_common: Path | None = None,
        failed: dict[str, Exception] | None = None,
    ) -> None:
        self._calls = calls
        self._base_ref = base_ref
        self._base_branch = base_branch
        self._history = history
        self._gate = gate
        self._common = common
        self._read_common = read_common  # where ``read_tips`` may read refs from git's files
        self.base = ""  # the base tip of record, read by the first request
        self.base_tree = ""
        self.cars: list[Car] = []
        self._settled: dict[int, Outcome] = {}
        self._count = 0
        # task id -> its error, kept across the train's attempts: a member that failed (a
        # secret found and masked, a claim lost) is never tried again when the train is.
        self.failed = failed if failed is not None else {}

    @property
    def tip(self) -> str:
        """What the base becomes when the train lands."""
        return self.cars[-1].commit if self.cars else self.base

    @property
    def tree(self) -> str:
        return self.cars[-1].tree if self.cars else self.base_tree

    def add(self, request: Request) -> Car | None:
        """The next request: a new car, or None when it was settled without one."""
        index = self._count
        self._count += 1
        calls = self._calls
        try:
            tips = read_tips(calls, self._base_ref, request.ref, self._read_common)
        except CouncilError as exc:
            self._fail(index, request, exc)
            return None
        if not self.base:
            self.base, self.base_tree = tips.base, tips.base_tree
        # Later looks may see the ref moved by another writer: the train still builds on the
        # tip it read, and the update (compare-and-swap, or the push's lease) finds the move.
        here = Tips(self.tip, self.tree, tips.branch)
        try:
            self._gate.check(calls, request.branch, tips.branch, here.base, self._common)
            found = examine(
                calls, self._history, request, self._base_branch, here, landed=self.base
            )
        except CouncilError as exc:
            self._fail(index, request, exc)
            return None
        if isinstance(found, MergeResult):
            self._settled[index] = self._as_read(found)
            return None
        text = commit_message(request.branch, request.task_id, request.session_id, request.message)
        commit = commit_merge(calls, found.tree, here.base, here.branch, text, self._common)
        car = Car(index, request, found.report, found.tree, commit, here.base, here.base_tree)
        self.cars.append(car)
        return car

    def drop(self, car: Car, error: Exception) -> None:
        """Take the last car off with ``error`` as its outcome (see the module doc)."""
        if not self.cars or self.cars[-1] is not car:
            raise ValueError("only the last car of a train can be taken off")
        self.cars.pop()
        self._fail(car.index, car.request, error)

    def _fail(self, index: int, request: Request, error: Exception) -> None:
        self._settled[index] = error
        self.failed[request.task_id] = error

    def outcomes(self, **landed: Any) -> list[Outcome]:
        """Every request's outcome, in order; the cars landed (``landed``: more fields of
        their results, such as the checkout the base was fast-forwarded in)."""
        tip = self.tip
        found = {
            i: replace(o, base_after=tip) if isinstance(o, MergeResult) else o
            for i, o in self._settled.items()
        }
        for car in self.cars:
            found[car.index] = replace(
                car.report,
                merge_commit=car.commit,
                base_after=tip,
                tip_contained=True,
                **landed,
            )
        return [found[i] for i in range(self._count)]

    def waiting(
        self, message: str, details: list[str], checkout: Path | None = None
    ) -> list[Outcome]:
        """Every outcome, the cars waiting (nothing moved): for ``message``, in ``checkout``."""
        found = dict(self._settled)
        for car in self.cars:
            found[car.index] = replace(
                car.report,
                status=MergeStatus.WAITING_FOR_CHECKOUT,
                base_before=self.base,
                base_after=self.base,
                message=message,
                details=details,
                checkout=checkout,
            )
        return [found[i] for i in range(self._count)]

    def reason(self) -> str:
        """The reflog line of the update that lands the train."""
        if len(self.cars) == 1:
            request = self.cars[0].request
            return f"council: merge {request.branch} (task {request.task_id})"
        names = ", ".join(car.request.task_id for car in self.cars)
        return f"council: merge train of {len(self.cars)} (tasks {names})"

    def record(self, history: TaskIndex) -> None:
        """The train landed: the base's first-parent history gained each car, in order."""
        for car in self.cars:
            history.record(car.parent, car.commit, car.request.task_id)

    def _as_read(self, result: MergeResult) -> MergeResult:
        """A request settled without a car was decided against the train so far: its result
        says the base tip of record it was read on."""
        return replace(result, base_before=self.base, base_after=self.base)
