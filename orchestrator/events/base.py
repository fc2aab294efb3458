"""``Event``: what every event has, and the documented base of the typed event models.

On the wire (``events.jsonl``, ``model_dump``, ``--json``) an event is the same four keys it
has always been: ``{"type", "ts", "data", "level"}``. In Python a typed event holds its
payload as typed fields (``TaskDispatched(task_id=..., adapter=...)``), and ``data`` is a dict
view of them in their JSON form (as the log line has them: a time is a string), so code
written for the one untyped ``Event`` keeps working.

- ``Event(type=..., data={...})`` is how a plugin emits a type of its own: the payload is kept
  as it is (``data``), unchecked. The typed models (``TypedEvent`` and below) refuse a key
  they do not know.
- ``data`` holds the fields the emitter gave: one left at its default is neither in it nor in
  the log line, so a line says what was said and a line read back compares equal.
- ``TaskEvent`` is the base of every event about one task: ``task_id`` always.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from orchestrator.models import utcnow

__all__ = ["Event", "Subscriber", "TaskEvent", "TypedEvent"]

_ENVELOPE = frozenset({"type", "ts", "level"})  # the keys beside ``data``


class Event(BaseModel):
    """One event: its type, when, how loud, and its payload (``data``)."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    type: str
    ts: datetime = Field(default_factory=utcnow)
    level: str = "info"

    renamed: ClassVar[Mapping[str, str]] = {}
    """Payload keys an earlier version wrote under another name, ``{old: new}``: an old log
    line still reads into the model."""

    @model_validator(mode="before")
    @classmethod
    def _open_envelope(cls, value: Any) -> Any:
        """``{"type", "ts", "data": {...}, "level"}`` (the wire form, or ``data=`` given to
        the constructor) as the model's own fields."""
        if not isinstance(value, Mapping) or "data" not in value:
            return value
        payload = value["data"]
        if not isinstance(payload, Mapping):
            raise ValueError(f"data must be an object, not {type(payload).__name__}")
        clash = sorted(_ENVELOPE & payload.keys())
        if clash:
            raise ValueError(f"data key {clash[0]!r} is reserved for the event itself")
        fields = dict(payload)
        for old, new in cls.renamed.items():
            if old in fields and new not in fields:
                fields[new] = fields.pop(old)
        fields.update((key, item) for key, item in value.items() if key != "data")
        return fields

    @model_serializer(mode="wrap")
    def _close_envelope(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        flat: dict[str, Any] = handler(self)
        said = self.model_fields_set | set(self.model_extra or ())
        data = {key: item for key, item in flat.items() if key not in _ENVELOPE and key in said}
        wire: dict[str, Any] = {key: flat[key] for key in ("type", "ts") if key in flat}
        wire["data"] = data
        if "level" in flat:
            wire["level"] = flat["level"]
        return wire

    @property
    def data(self) -> dict[str, Any]:
        """The payload as a dict of JSON values, as the log has it (a new one each time): the
        fields the emitter gave. The typed fields are the attributes themselves."""
        data: dict[str, Any] = self.model_dump(mode="json")["data"]
        return data


class TypedEvent(Event):
    """The base of the typed models: every payload key is a field of the model."""

    model_config = ConfigDict(extra="forbid")


class TaskEvent(TypedEvent):
    """An event about one task."""

    task_id: str


Subscriber = Callable[[Event], None]
"""An in-process listener; it must not block (hand slow work to a task of your own)."""
