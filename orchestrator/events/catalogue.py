"""Every event type's model, and reading an event back into it.

``AnyEvent`` is the union of the typed models, discriminated on ``type``, with ``Event`` for a
type no model has (a plugin's own). ``parse_event`` reads one ``events.jsonl`` line and fails
when it does not fit its type's model; ``read_event`` falls back to the untyped ``Event`` (for
logs an older version wrote); ``typed`` turns an untyped ``Event`` of a known type into its
model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from orchestrator.events import (
    council_mode,
    dropped,
    issues,
    locks,
    mcp,
    merge,
    phases,
    pulls,
    radar,
    runs,
    services,
    spend,
    state,
    tasks,
    worktrees,
)
from orchestrator.events.base import Event

__all__ = ["MODELS", "AnyEvent", "events", "parse_event", "read_event", "typed_event"]

_FAMILIES = (
    state,
    locks,
    merge,
    pulls,
    radar,
    runs,
    tasks,
    council_mode,
    phases,
    worktrees,
    issues,
    dropped,
    spend,
    mcp,
    services,
)

MODELS: Mapping[str, type[Event]] = {
    model.model_fields["type"].default: model
    for family in _FAMILIES
    for model in (getattr(family, name) for name in family.__all__)
}
"""Each event type's model, by the type's name."""

_UNTYPED = "untyped"  # the union's tag for an event whose type has no model


def _tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in MODELS else _UNTYPED


_MEMBERS: Any = tuple(
    [Annotated[model, Tag(kind)] for kind, model in MODELS.items()]
    + [Annotated[Event, Tag(_UNTYPED)]]
)
AnyEvent: Any = Annotated[Union[_MEMBERS], Discriminator(_tag)]  # noqa: UP007
"""Every event: a typed model for each known type, ``Event`` for any other."""

_ADAPTER: list[TypeAdapter[Event]] = []  # made on first use (``events``)


def events() -> TypeAdapter[Event]:
    """The validator of ``AnyEvent``, made on first use: it builds the validator of every event
    model at once (some 40 ms), which a run that only writes events never needs."""
    if not _ADAPTER:
        _ADAPTER.append(TypeAdapter(AnyEvent))
    return _ADAPTER[0]


def parse_event(line: str | bytes) -> Event:
    """One ``events.jsonl`` line as its typed model (``Event`` for a type without one);
    ``pydantic.ValidationError`` when it is not an event or does not fit its model."""
    return events().validate_json(line)


def read_event(line: str | bytes) -> Event:
    """As ``parse_event``, but a line that does not fit its model (written by an older
    version) is an untyped ``Event``; ``ValidationError`` only when it is no event at all."""
    try:
        return parse_event(line)
    except ValidationError:
        return Event.model_validate_json(line)


def typed_event(event: Event) -> Event:
    """``event`` as its type's model; itself when it is typed already, or when its type has
    no model or its data does not fit it."""
    model = MODELS.get(event.type)
    if model is None or isinstance(event, model):
        return event
    try:
        return model.model_validate(event.model_dump())
    except ValidationError:
        return event
