"""The typed task record: what the run's features keep in ``TaskState.metadata``, as models.

``TaskState.metadata`` is a flat JSON object the store writes as it is; the features of a run
(retries, parks, holds, the worktree kept between attempts, landing through pull requests,
the radar, relanding, council mode) talk to each other through its keys. Each feature's keys
are one part here (``RetryMeta``, ``WorktreeMeta``, ``ParkMeta``, ``HoldMeta``, ``PullMeta``,
``LandingMeta``, ``CouncilMeta``), composed in ``TaskMeta``; the key each field is kept under
is its alias, and nothing outside this module names a key.

``TaskMeta.read(mapping)`` reads a record's metadata, ``meta.dump()`` gives the flat mapping to
write: the same keys with the same JSON values as before this module (old records read as
they are, nothing migrates). A key no part knows (a plugin's, another version's) is kept as it
was and written back; a value of the wrong type (a damaged or older record) is read as absent
and written back untouched unless the field is set again (``None`` clears a key). Only the
fields that were read or set are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Annotated, Any, ClassVar, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

__all__ = [
    "CouncilMeta",
    "HoldMeta",
    "LandingMeta",
    "ParkMeta",
    "PullMeta",
    "PullState",
    "Relanding",
    "RetryMeta",
    "StackState",
    "TaskMeta",
    "WorktreeMeta",
]


def _iso(value: object) -> datetime:
    """An ISO time as the scheduler writes it (``datetime.isoformat``); anything else is
    damaged (read as absent)."""
    if isinstance(value, datetime):  # set by a writer
        return value
    if not isinstance(value, str):
        raise ValueError(f"an ISO time was expected, not {type(value).__name__}")
    return datetime.fromisoformat(value)


# A moment kept as ``datetime.isoformat()`` text, read back by ``datetime.fromisoformat``.
IsoTime = Annotated[datetime, BeforeValidator(_iso), PlainSerializer(lambda t: t.isoformat())]


class _Part(BaseModel):
    """One feature's keys: each field kept under its alias, absent until read or set."""

    model_config = ConfigDict(
        populate_by_name=True, validate_assignment=True, extra="ignore", defer_build=True
    )


class RetryMeta(_Part):
    """The retry bookkeeping (``scheduler.attempts.failures``, ``scheduler.retry``)."""

    failures: int | None = None  # failed attempts so far (what RetryPolicy.decide counts)
    rechecks: int | None = None  # attempts sent round again by the tamper check (not failures)
    empty_builds: int | None = None  # attempts whose build changed nothing (no_changes)
    retry_note: str | None = None  # why the last attempt changed nothing, for the next build
    not_before: IsoTime | None = None  # before then a retried task is not dispatched
    outcome: str | None = None  # the outcome kind a failed task ended with (rate_limited...)
    resolve_rounds: int | None = None  # conflicts answered by building again on the base
    conflicts: list[str] | None = None  # the files of the last merge conflict
    usage: dict[str, int | float] | None = None  # tokens and cost summed over attempts


class WorktreeMeta(_Part):
    """The worktree a task keeps between its attempts (``scheduler.attempts.runner``)."""

    session: str | None = Field(default=None, alias="worktree_session")  # its session id
    losses: int | None = Field(default=None, alias="worktree_losses")  # requeued: it was deleted


class ParkMeta(_Part):
    """A task parked on an adapter's rate limits (``scheduler.rules.parks``)."""

    until: IsoTime | None = Field(default=None, alias="parked_until")  # its quota lifts
    adapter: str | None = Field(default=None, alias="parked_adapter")  # the adapter it parked on
    since: IsoTime | None = Field(default=None, alias="rate_limited_since")  # limits began
    parks: int | None = None  # how many times the task was parked


class HoldMeta(_Part):
    """What holds a queued task back (``scheduler.spending``, ``scheduler.radar_watch``)."""

    held: str | None = None  # the budget or quota a task waits for
    held_until: IsoTime | None = None  # a quota's hold ends
    radar_hold: str | None = None  # the collision a queued task waits for (radar: sequence)


class PullState(BaseModel):
    """The task's pull request as last seen (``scheduler.pulls``; ``council status`` shows
    it). Its keys are kept as they were read; a key not named here survives."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, defer_build=True)

    number: int | None = Field(default=None, strict=True)  # never a bool or text read as one
    url: str | None = None
    head: str | None = None
    head_sha: str | None = None
    state: str | None = None  # open, closed, merged, closing
    approvals: int | None = None
    checks: str | None = None  # unknown, none, pending, success, failure
    round: int | None = None  # builds pushed to it so far
    waiting: str | None = None  # what it waits for (a sentence; "" for nothing)
    human: bool | str | None = None  # a person must act (or who)
    looked: bool | None = None  # the follower has looked at it
    fresh: bool | None = None  # opened just now: nobody can have reviewed it yet
    feedback_rounds: int | None = None
    answered: list[int] | None = None  # ids of the reviews and comments answered
    answered_heads: list[str] | None = None  # heads whose failing checks were answered
    reviews_seen: list[int] | None = None  # ids of the reviews listed at the last look
    ignored: int | None = None  # reviews set aside at the last look: not from a trusted login
    gate: str | None = None  # head, reviews and checks council's merge was last asked at
    refused: str | None = None  # the gate at which the forge refused council's merge

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class StackState(BaseModel):
    """A stacked pull request's place (``scheduler.pulls.stack``): what it was built on and
    where it asks to land. Commits are the exact ones recorded, never a branch's tip read
    later (a branch on the remote may have been moved by someone else)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, defer_build=True)

    below: list[str] | None = None  # the dependencies it stands on, open for review then
    on: dict[str, str] | None = None  # each of them -> the head commit it was built on
    start: str | None = None  # the commit its work started from (a head, or ``merge``)
    merge: str | None = None  # the orchestrator's merge of several heads below, recorded
    base: str | None = None  # the branch its pull request asks to land on now
    rebuilt: int | None = None  # rebuilds on a changed pull request below
    told: str | None = None  # the stack's section its pull request's body last said
    conflicts: list[str] | None = None  # a change below conflicted here: its CLI resolves them

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class PullMeta(_Part):
    """Landing through a pull request (``scheduler.pulls``) and the task's issue (a task made
    from an issue: ``forge.issue_tasks``; its config's metadata carries the same keys)."""

    pull: PullState | None = None
    issue: int | None = Field(default=None, strict=True)  # its issue, which its pull closes
    issue_url: str | None = None
    pull_feedback: str | None = None  # the feedback its next build answers
    stack: StackState | None = None  # a stacked pull request's place (``landing.pulls``)


class Relanding(BaseModel):
    """One landing of the task that vanished, and what became of it
    (``scheduler.attempts.relander``)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    commit: str
    base: str | None = None
    merge_base: str | None = None
    replaced_by: list[str] | None = None  # the commits that replaced it (``<sha> <subject>``)
    seen_at: str | None = None
    action: str | None = None  # reland, lost, report


class LandingMeta(_Part):
    """A task on its way to the base (``scheduler.attempts.lander``, ``relander``)."""

    waiting: str | None = None  # what a merging task's landing waits for (a sentence)
    relanded: list[Relanding] | None = None


class CouncilMeta(_Part):
    """Council mode (``scheduler.candidates``, ``scheduler.council``)."""

    candidate: dict[str, Any] | None = None  # a candidate's verified result awaiting the pick
    council: dict[str, Any] | None = None  # a council task's candidates and winner


_P = TypeVar("_P", bound=_Part)


def _keys_of(part: type[_Part]) -> frozenset[str]:
    return frozenset((f.alias or name) for name, f in part.model_fields.items())


def _read_part(part: type[_P], mapping: Mapping[str, Any], damaged: dict[str, Any]) -> _P:
    """``part`` from the keys of ``mapping`` it knows; a key whose value does not validate
    goes to ``damaged`` and is read as absent."""
    keys = _KEYS[part]
    if keys.isdisjoint(mapping):  # most parts of most records: no key of theirs at all
        return _empty(part)
    known = {k: mapping[k] for k in keys if k in mapping}
    for key in [k for k, v in known.items() if v is None]:
        damaged[key] = known.pop(key)  # a null kept as it is, unless set again
    for _ in range(len(known) + 1):
        try:
            return part.model_validate(known)
        except ValidationError as error:
            bad = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
            if not bad & known.keys():
                raise
            for key in bad & known.keys():
                damaged[key] = known.pop(key)
    raise AssertionError("unreachable: every key was dropped")  # pragma: no cover


def _empty(part: type[_P]) -> _P:
    """``part`` with every field absent, as ``model_construct()`` builds it but without its
    cost (most records keep no key of most parts; the dispatcher reads one part of every
    task each tick). Every field of a part defaults to None."""
    empty = part.__new__(part)
    object.__setattr__(empty, "__dict__", dict.fromkeys(_field_names(part)))
    object.__setattr__(empty, "__pydantic_fields_set__", set())
    object.__setattr__(empty, "__pydantic_extra__", None)
    object.__setattr__(empty, "__pydantic_private__", None)
    return empty


@cache
def _field_names(part: type[_Part]) -> tuple[str, ...]:
    """``part``'s field names, read once (pydantic's ``model_fields`` costs a deprecated
    descriptor's call on each read: thousands for a report of a big run)."""
    return tuple(part.model_fields)


def _dump_part(part: _Part, damaged: dict[str, Any], out: dict[str, Any]) -> None:
    for name, info in type(part).model_fields.items():
        key = info.alias or name
        out.pop(key, None)
        if name not in part.model_fields_set:
            if key in damaged:
                out[key] = damaged[key]
            continue
        value = getattr(part, name)
        if value is None:
            continue
        out[key] = part.model_dump(mode="json", include={name}, by_alias=True, exclude_unset=True)[
            key
        ]


_PARTS: dict[str, type[_Part]] = {
    "retry": RetryMeta,
    "worktree": WorktreeMeta,
    "park": ParkMeta,
    "hold": HoldMeta,
    "pull": PullMeta,
    "landing": LandingMeta,
    "council": CouncilMeta,
}
_KEYS: dict[type[_Part], frozenset[str]] = {part: _keys_of(part) for part in _PARTS.values()}
_ALL_KEYS = frozenset().union(*_KEYS.values())


class TaskMeta:
    """A task record's metadata, one typed part per feature, over the flat keys the store
    keeps (``read``, ``dump``). A part is read from the record the first time it is asked
    for, so a reader of one part (the dispatcher's, each tick, over every task) pays for that
    part alone; ``dump`` writes the parts read or set, and every other key as it was.
    ``VERSION`` is the shape this module writes: it is not written into records, which read
    as they are."""

    VERSION: ClassVar[int] = 1

    __slots__ = ("_damaged", "_read", "_source")

    def __init__(self, source: Mapping[str, Any] | None = None) -> None:
        self._source: dict[str, Any] = dict(source or {})
        self._read: dict[str, _Part] = {}
        self._damaged: dict[str, Any] = {}

    @classmethod
    def parts(cls) -> dict[str, type[_Part]]:
        return dict(_PARTS)

    @classmethod
    def keys(cls) -> frozenset[str]:
        """Every key a part keeps."""
        return _ALL_KEYS

    @classmethod
    def read(cls, mapping: Mapping[str, Any] | None) -> TaskMeta:
        """The typed view of a record's ``metadata`` (None reads as empty); never raises for a
        damaged value, which reads as absent."""
        return cls(mapping)

    @classmethod
    def peek(cls, mapping: Mapping[str, Any] | None) -> TaskMeta:
        """``read`` for a reader that changes nothing: a record with no metadata (every task
        not started yet: thousands in a big run, read by each report and each tick's queue)
        gets the one empty view, built once, whose parts refuse a change (pydantic's frozen
        error) instead of a view built for it."""
        return _Peek(mapping) if mapping else _empty_view()

    def _part(self, name: str) -> Any:
        part = self._read.get(name)
        if part is None:
            part = self._read[name] = _read_part(_PARTS[name], self._source, self._damaged)
        return part

    @property
    def retry(self) -> RetryMeta:
        return cast(RetryMeta, self._part("retry"))

    @property
    def worktree(self) -> WorktreeMeta:
        return cast(WorktreeMeta, self._part("worktree"))

    @property
    def park(self) -> ParkMeta:
        return cast(ParkMeta, self._part("park"))

    @property
    def hold(self) -> HoldMeta:
        return cast(HoldMeta, self._part("hold"))

    @property
    def pull(self) -> PullMeta:
        return cast(PullMeta, self._part("pull"))

    @property
    def landing(self) -> LandingMeta:
        return cast(LandingMeta, self._part("landing"))

    @property
    def council(self) -> CouncilMeta:
        return cast(CouncilMeta, self._part("council"))

    @property
    def extra(self) -> dict[str, Any]:
        """The keys no part knows, as they were read."""
        return {k: v for k, v in self._source.items() if k not in _ALL_KEYS}

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of a task record's ``metadata``: every part's keys (by the name the
        record keeps them under), each optional; keys no part knows are allowed (a plugin's,
        another version's). ``council state schema`` prints it inside the task record's."""

        class TaskMetadata(*_PARTS.values()):  # type: ignore[misc]
            """A task record's ``metadata``: what the run's features keep about the task
            (``orchestrator.task_meta``)."""

            model_config = ConfigDict(extra="allow", defer_build=True)

        schema = TaskMetadata.model_json_schema(by_alias=True, mode="validation")
        return {**schema, "x-version": cls.VERSION}

    def dump(self) -> dict[str, Any]:
        """The flat mapping to keep as the record's ``metadata``: every key of a part not read
        and every key no part knows as they were, each part read or set in JSON values; the
        record's own order, then new keys."""
        out = dict(self._source)
        for part in self._read.values():
            _dump_part(part, self._damaged, out)
        first = [k for k in self._source if k in out]
        return {k: out[k] for k in [*first, *(k for k in out if k not in self._source)]}


class _Peek(TaskMeta):
    """``TaskMeta.peek``'s view of a record with metadata: a part none of whose keys the
    record holds is the empty view's (``_empty_view``), shared and refusing a change, not
    one made for it (a report of a big run reads five of them for each task)."""

    __slots__ = ()

    def _part(self, name: str) -> Any:
        part = self._read.get(name)
        if part is None:
            if _KEYS[_PARTS[name]].isdisjoint(self._source):
                part = self._read[name] = _empty_view()._read[name]
            else:
                part = super()._part(name)
        return part


@cache
def _frozen(part: type[_P]) -> type[_P]:
    """``part`` whose instances refuse changes: the parts of the shared empty view."""
    return type(part.__name__, (part,), {"model_config": ConfigDict(frozen=True)})


@cache
def _empty_view() -> TaskMeta:
    view = TaskMeta(None)
    for name, part in _PARTS.items():
        view._read[name] = _empty(_frozen(part))
    return view
