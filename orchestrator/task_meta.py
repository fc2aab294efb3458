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
from typing import Annotated, Any, ClassVar, TypeVar

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

    model_config = ConfigDict(populate_by_name=True, validate_assignment=True, extra="ignore")


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

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    number: int | None = None
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

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class PullMeta(_Part):
    """Landing through a pull request (``scheduler.pulls``) and the task's issue."""

    pull: PullState | None = None
    issue: int | None = None  # its issue's number, which its pull request closes
    issue_url: str | None = None
    pull_feedback: str | None = None  # the feedback its next build answers


class Relanding(BaseModel):
    """One landing of the task that vanished, and what became of it
    (``scheduler.attempts.relander``)."""

    model_config = ConfigDict(extra="allow")

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

    candidates: dict[str, dict[str, Any]] | None = None  # adapter -> its candidate's metadata
    candidate: dict[str, Any] | None = None  # a candidate's verified result awaiting the pick
    council: dict[str, Any] | None = None  # a council task's candidates and winner


_P = TypeVar("_P", bound=_Part)


def _read_part(part: type[_P], mapping: dict[str, Any], damaged: dict[str, Any]) -> _P:
    """``part`` from the keys of ``mapping`` it knows; a key whose value does not validate
    goes to ``damaged`` and is read as absent."""
    keys = {(f.alias or name) for name, f in part.model_fields.items()}
    known = {k: v for k, v in mapping.items() if k in keys}
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


def _dump_part(part: _Part, damaged: dict[str, Any], out: dict[str, Any]) -> None:
    for name, info in type(part).model_fields.items():
        key = info.alias or name
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


class TaskMeta(BaseModel):
    """A task record's metadata, one typed part per feature, over the flat keys the store
    keeps (``read``, ``dump``). ``VERSION`` is the shape this module writes: it is not
    written into records, which read as they are."""

    VERSION: ClassVar[int] = 1

    model_config = ConfigDict(extra="allow")

    retry: RetryMeta = Field(default_factory=RetryMeta)
    worktree: WorktreeMeta = Field(default_factory=WorktreeMeta)
    park: ParkMeta = Field(default_factory=ParkMeta)
    hold: HoldMeta = Field(default_factory=HoldMeta)
    pull: PullMeta = Field(default_factory=PullMeta)
    landing: LandingMeta = Field(default_factory=LandingMeta)
    council: CouncilMeta = Field(default_factory=CouncilMeta)

    _damaged: dict[str, Any] = {}
    _order: tuple[str, ...] = ()

    @classmethod
    def parts(cls) -> dict[str, type[_Part]]:
        return {name: f.annotation for name, f in cls.model_fields.items()}  # type: ignore[misc]

    @classmethod
    def keys(cls) -> frozenset[str]:
        """Every key a part keeps."""
        return frozenset(
            info.alias or name
            for part in cls.parts().values()
            for name, info in part.model_fields.items()
        )

    @classmethod
    def read(cls, mapping: Mapping[str, Any] | None) -> TaskMeta:
        """The typed view of a record's ``metadata`` (None reads as empty); never raises for a
        damaged value, which reads as absent."""
        source = dict(mapping or {})
        damaged: dict[str, Any] = {}
        parts = {name: _read_part(part, source, damaged) for name, part in cls.parts().items()}
        known = cls.keys()
        extra = {k: v for k, v in source.items() if k not in known}
        meta = cls.model_construct(**parts)  # type: ignore[arg-type]
        meta.__pydantic_extra__ = extra
        meta._damaged = damaged
        meta._order = tuple(source)
        return meta

    def dump(self) -> dict[str, Any]:
        """The flat mapping to keep as the record's ``metadata``: the keys no part knows as
        they were read, then each part's set fields under their keys, in JSON values."""
        out: dict[str, Any] = dict(self.__pydantic_extra__ or {})
        for name in self.parts():
            _dump_part(getattr(self, name), self._damaged, out)
        first = [k for k in self._order if k in out]  # the record's own order, then new keys
        return {k: out[k] for k in [*first, *(k for k in out if k not in self._order)]}
