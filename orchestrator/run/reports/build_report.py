"""A run's report built from the state store's records alone: each task's status, attempts,
phases, branch, usage and why it ended, the collision radar's live collisions (each task in one
marked), each task's session's services, and the totals, so any process can report any run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    TERMINAL_TASK_STATUSES,
    ClaimStatus,
    SessionRecord,
    TaskState,
    TaskStatus,
    utcnow,
)
from orchestrator.run.reports.report import (
    CandidateReport,
    CollisionReport,
    PullReport,
    RunReport,
    RunTotals,
    StackReport,
    TaskReport,
    VanishedReport,
    WorkstationReport,
)
from orchestrator.run.reports.stack_view import stack_reports
from orchestrator.scheduler.context import TEAM
from orchestrator.scheduler.rules.queue import dependencies, wait_reason
from orchestrator.services.records import ServiceState
from orchestrator.spend.line import SpendLine
from orchestrator.task_meta import TaskMeta

if TYPE_CHECKING:
    # The radar's models: imported when a collision is there (``quick_report``'s look).
    from orchestrator.radar.records import Collision

__all__ = ["build_report"]


def _usage(meta: TaskMeta, name: str) -> Any:
    usage = meta.retry.usage
    return usage.get(name) if usage is not None else None


def _task_report(
    state: TaskState,
    depends_on: list[str],
    states: dict[str, TaskState],
    now: datetime,
    collision: str | None = None,
    services: list[ServiceState] | None = None,
) -> TaskReport:
    if collision is None and not services and _untouched(state):
        # As its batch recorded it (most records of a big run as it starts): the report of a
        # task with no record yet, a copy of one made once, not a report built field by field.
        return _unrecorded(state.task_id, depends_on, states)
    duration = None
    if state.started_at is not None and state.finished_at is not None:
        duration = (state.finished_at - state.started_at).total_seconds()
    meta = TaskMeta.peek(state.metadata)  # a damaged value reads as absent
    parked = state.status == TaskStatus.PARKED
    queued = state.status == TaskStatus.QUEUED
    outcome = meta.retry.outcome if state.status == TaskStatus.FAILED else None
    parks = meta.park.parks
    return _checked_report(
        task_id=state.task_id,
        status=state.status,
        phases={name: str(record.status) for name, record in state.phases.items()},
        current_phase=state.current_phase,
        adapter=state.adapter,
        attempts=state.attempt,
        branch=state.branch,
        merged_commit=state.merged_commit,
        error=state.error,
        outcome=outcome,
        parked_until=meta.park.until if parked else None,
        parked_adapter=meta.park.adapter if parked else None,
        parks=parks if parks is not None and parks > 0 else 0,
        conflicts=list(meta.retry.conflicts or []),
        started_at=state.started_at,
        finished_at=state.finished_at,
        duration_seconds=duration,
        input_tokens=_usage(meta, "input_tokens"),
        output_tokens=_usage(meta, "output_tokens"),
        cost_usd=_usage(meta, "cost_usd"),
        candidates=_candidates(meta),
        waiting=wait_reason(depends_on, state, states, now),
        held=meta.hold.held if queued else None,
        held_until=meta.hold.held_until if queued else None,
        holder=state.claim.holder if state.claim is not None else None,
        lease_expires=(
            state.claim.expires_at
            if state.claim is not None and state.claim.status == ClaimStatus.ACTIVE
            else None
        ),
        vanished=[
            VanishedReport.model_validate(r.model_dump(exclude_unset=True))
            for r in meta.landing.relanded or []
        ],
        pull=_pull(meta),
        collision=collision,
        services=services or [],
    )


_TASK_FIELDS = tuple(TaskReport.model_fields)


def _checked_report(**fields: Any) -> TaskReport:
    """``TaskReport(**fields)`` of every field, made as validating them would make it, without
    validating them again: each value was validated already, as a field of the task's record
    or of a part of its metadata (``TaskMeta``), and is of its report field's type (a third
    of a report's build went to validating them twice). Not the usage figures, which a record
    may keep as another type of number than the report's (a cost of ``1``, tokens of
    ``3.0``): a report with such a figure is validated, which converts or refuses it."""
    tokens = (fields["input_tokens"], fields["output_tokens"])
    cost = fields["cost_usd"]
    if not all(n is None or type(n) is int for n in tokens) or not (
        cost is None or type(cost) is float
    ):
        return TaskReport(**fields)
    made = TaskReport.__new__(TaskReport)
    object.__setattr__(made, "__dict__", {name: fields[name] for name in _TASK_FIELDS})
    object.__setattr__(made, "__pydantic_fields_set__", set(_TASK_FIELDS))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made


def _untouched(state: TaskState) -> bool:
    """Whether ``state`` holds nothing a report shows but its id and ``queued``."""
    return (
        state.status == TaskStatus.QUEUED
        and not state.metadata
        and not state.phases
        and state.attempt == 0
        and state.started_at is None
        and state.finished_at is None
        and state.claim is None
        and state.current_phase is None
        and state.adapter is None
        and state.branch is None
        and state.merged_commit is None
        and state.error is None
    )


def _unrecorded(task_id: str, depends_on: list[str], states: dict[str, TaskState]) -> TaskReport:
    """A task the session lists with no record yet (the run records its tasks in batches as it
    starts, and a stop then leaves the rest for `council resume`): queued, as it will be
    recorded. A copy of one report made once: thousands of them are listed at the start of a
    big run, and a report built field by field costs each of them its defaults."""
    done = TaskStatus.DONE
    deps = [d for d in depends_on if (s := states.get(d)) is None or s.status != done]
    waiting = f"after {', '.join(deps)}" if deps else None
    return _queued_copy(task_id, waiting)


_QUEUED = TaskReport(task_id="-", status=TaskStatus.QUEUED, phases={})
_QUEUED_FIELDS = frozenset(_QUEUED.model_fields_set | {"task_id", "waiting"})


def _queued_copy(task_id: str, waiting: str | None) -> TaskReport:
    """``_QUEUED.model_copy(update=...)`` for its two fields, made as that shallow copy is
    (the same values, ``phases`` shared as there) without its generic steps (copies of the
    private and extra state it has none of, of the set of fields set): a third of a stop's
    report of 10,000 tasks went to those."""
    made = TaskReport.__new__(TaskReport)
    object.__setattr__(
        made, "__dict__", {**_QUEUED.__dict__, "task_id": task_id, "waiting": waiting}
    )
    object.__setattr__(made, "__pydantic_fields_set__", set(_QUEUED_FIELDS))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made


def _candidates(meta: TaskMeta) -> list[CandidateReport]:
    council = meta.council.council
    listed = council.get("candidates") if council is not None else None
    if not isinstance(listed, list):
        return []
    return [CandidateReport.model_validate(item) for item in listed if isinstance(item, dict)]


def _pull(meta: TaskMeta) -> PullReport | None:
    if meta.pull.pull is None:
        return None
    pull = meta.pull.pull.dump()
    fields = {name: pull[name] for name in PullReport.model_fields if name in pull}
    try:
        return PullReport.model_validate(fields)
    except ValueError:
        return None


def _with_stack(report: TaskReport, stack: StackReport | None) -> TaskReport:
    """``report`` with its pull request's place in a stack (``stack_view``)."""
    if stack is None or report.pull is None:
        return report
    return report.model_copy(update={"pull": report.pull.model_copy(update={"stack": stack})})


def _total(values: Sequence[float | int | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def build_report(
    session: SessionRecord,
    tasks: Sequence[TaskState],
    workstations: Sequence[WorkstationReport] = (),
    spend: SpendLine | None = None,
    collisions: Sequence[Collision] = (),
    services: Mapping[str, list[ServiceState]] | None = None,
) -> RunReport:
    """The report of ``session``, tasks in the session's order (and, in a team, the
    workstations working in it; the live ``collisions`` of its unfinished tasks; ``services``:
    each task's session's services, by task id, ``services.records.by_task``)."""
    services = services or {}
    by_id = {task.task_id: task for task in tasks}
    deps, now = dependencies(session.options), utcnow()
    live = {i for i, t in by_id.items() if t.status not in TERMINAL_TASK_STATUSES}
    found = [c for c in collisions if set(c.tasks) & live]
    marked = _marks(found)
    stacks = stack_reports(tasks)
    reports = [
        _with_stack(
            _task_report(
                by_id[i],
                deps.get(i, []),
                by_id,
                now,
                marked.get(i) if i in live else None,
                services.get(i),
            ),
            stacks.get(i),
        )
        if i in by_id
        else _unrecorded(i, deps.get(i, []), by_id)
        for i in session.task_ids
        # An ended session records nothing more: a task it lists without a record in it was
        # taken over by a later session of the run (a team's), not waiting to be recorded.
        if i in by_id or session.status in ACTIVE_SESSION_STATUSES
    ]
    counted = Counter(r.status for r in reports)  # one pass, not one a status
    count = {status: counted.get(status, 0) for status in TaskStatus}
    starts = [r.started_at for r in reports if r.started_at is not None]
    ends = [r.finished_at for r in reports if r.finished_at is not None]
    duration = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    terminal = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CONFLICT, TaskStatus.CANCELLED)
    totals = RunTotals(
        tasks=len(reports),
        done=count[TaskStatus.DONE],
        failed=count[TaskStatus.FAILED],
        conflict=count[TaskStatus.CONFLICT],
        cancelled=count[TaskStatus.CANCELLED],
        waiting_for_checkout=count[TaskStatus.WAITING_FOR_CHECKOUT],
        in_review=count[TaskStatus.IN_REVIEW],
        held=sum(
            r.status == TaskStatus.QUEUED and (r.waiting or "").startswith("budget: ")
            for r in reports
        ),
        pending=sum(r.status not in terminal for r in reports),
        input_tokens=_total([r.input_tokens for r in reports]),
        output_tokens=_total([r.output_tokens for r in reports]),
        cost_usd=_total([r.cost_usd for r in reports]),
        duration_seconds=duration,
        unrecorded=len(reports) - len(by_id.keys() & set(session.task_ids)),
    )
    return RunReport(
        session_id=session.session_id,
        status=session.status,
        tasks=reports,
        totals=totals,
        team=team if isinstance(team := session.metadata.get(TEAM), str) else None,
        workstations=list(workstations),
        spend=spend,
        collisions=[_collision(c) for c in found],
    )


def _marks(found: Sequence[Collision]) -> dict[str, str]:
    """``radar.warning.marks``, its module imported only when a collision is live."""
    if not found:
        return {}
    from orchestrator.radar.warning import marks

    return marks(found)


def _collision(found: Collision) -> CollisionReport:
    return CollisionReport(
        tasks=list(found.tasks),
        paths=found.paths,
        severity=found.severity.value,
        conflict_paths=found.conflict_paths,
        workstations=[w for w in (found.a.workstation, found.b.workstation) if w],
        first_seen=found.first_seen,
    )
