"""Each session's services as the store keeps them, for ``council status``, the live view and
the web page (issue 50: "Visible").

One keyed record per task (namespace ``services``, key the task's id), written by the
scheduler's part (``scheduler.session_services``) each time one of its attempt's services
changes state: the run's session, the attempt's worktree session and its attempt count (a
record of a later attempt is never written over: ``newer``), and for each service that
attempt started its ``name``, ``state`` (``starting``, ``ready``, ``failed``, ``stopped``),
``port`` and, for a failure, ``why`` (the reason alone, masked by the writer, never its log's
text). The next attempt of the task writes over it; a record of another session is not the
task's (``by_task``).

Read as untrusted (``read``): anything in the store may have been written by another version
or damaged, so a record is validated and bounded, and one that does not validate reads as
absent. Light on purpose (pydantic and the records' model only): ``status``'s quick look reads
it without the store (``run.reports.quick_report``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.models import KeyedRecord

__all__ = [
    "MAX_SERVICES",
    "MAX_WHY",
    "NAMESPACE",
    "ServiceState",
    "ServicesRecord",
    "bounded_why",
    "by_task",
    "newer",
    "note",
    "read",
]

NAMESPACE = "services"
MAX_SERVICES = 64  # services one record lists at most
MAX_WHY = 300  # characters of a failure's reason kept
_MAX_NAME = 64

State = Literal["starting", "ready", "failed", "stopped"]


class ServiceState(BaseModel):
    """One service of a session now: its name, state, port and why it failed."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(min_length=1, max_length=_MAX_NAME)
    state: State
    port: int | None = Field(default=None, ge=1, le=65535)
    why: str | None = Field(default=None, max_length=MAX_WHY)


class ServicesRecord(BaseModel):
    """A task's record: the run's ``session``, its attempt's worktree ``worktree`` and its
    services in the order configured."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    session: str = Field(max_length=200)
    worktree: str = Field(default="", max_length=200)
    attempt: int = Field(default=0, ge=0)  # the task's attempt count its attempt was claimed at
    services: list[ServiceState] = Field(default_factory=list, max_length=MAX_SERVICES)


def bounded_why(why: str) -> str:
    """``why`` cut to ``MAX_WHY`` characters (an ellipsis where it was cut)."""
    return why if len(why) <= MAX_WHY else why[: MAX_WHY - 1] + "…"


def newer(record: KeyedRecord | None, than: ServicesRecord) -> bool:
    """Whether ``record`` is of a later attempt of the same session than ``than`` (another
    workstation took the task over): it is not written over."""
    kept = read(record) if record is not None else None
    return kept is not None and kept.session == than.session and kept.attempt > than.attempt


def read(record: KeyedRecord) -> ServicesRecord | None:
    """``record``'s services, validated; None when it does not validate (module doc)."""
    try:
        return ServicesRecord.model_validate(record.data)
    except ValidationError:
        return None


def by_task(
    records: Iterable[KeyedRecord], session_id: str, task_ids: Iterable[str]
) -> dict[str, list[ServiceState]]:
    """Task id -> its services, of the records of ``session_id``'s tasks ``task_ids``."""
    wanted = set(task_ids)
    found: dict[str, list[ServiceState]] = {}
    for record in records:
        if record.key not in wanted:
            continue
        services = read(record)
        if services is not None and services.session == session_id:
            found[record.key] = list(services.services)
    return found


def note(services: Sequence[ServiceState] | Mapping[str, str]) -> str:
    """The compact word on a task's line: ``web ready, db failed`` ('' for none)."""
    if isinstance(services, Mapping):
        return ", ".join(f"{name} {state}" for name, state in services.items())
    return ", ".join(f"{s.name} {s.state}" for s in services)
