"""What one workstation tells the others through ``pg_notify``, and what a listener makes of it.

Every event a store commits is also sent on the channel ``council_events`` as a small JSON
object: ``{"o": origin, "t": type, "k": kind, "key": key, "v": version, "f": fields}`` (the
last four when the event has them). ``o`` is the writing store's origin, so a store can drop
its own notices: its subscribers already had those events, in full, after the commit.

A listener hands on only the notices of task writes (``state.updated`` of kind ``tasks``), as
an event of the same type and data shape a local write gives, marked ``remote``: that is what
the scheduler's ``TaskView`` needs to read the task again. Other events are not handed on: a
notice carries too little of them to stand for the event (a ``task.dispatched`` without its
data), and another workstation's attempts are not this process's to show. The full events
stay in ``council.events`` for whoever wants them.

PostgreSQL refuses a payload of 8000 bytes or more; a notice stays far below: the fields are
left out past ``MAX_PAYLOAD`` (a task event without them is read again whatever it changed),
and then the key (the receiver, not knowing which task, reads them all: ``resync``).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.events import Event, EventType
from orchestrator.events.state import StateRecovered, StateResync, StateUpdated
from orchestrator.state.changes import RESYNC, RecordChange, change_of

__all__ = ["MAX_PAYLOAD", "REMOTE", "encode", "record_change", "remote_event", "resync"]

MAX_PAYLOAD = 2000  # bytes; PostgreSQL's own limit is 8000
REMOTE = "remote"  # data key marking an event another process's write caused
_TASK_EVENTS = frozenset({EventType.STATE_UPDATED, EventType.STATE_RECOVERED})


def encode(event: Event, origin: str) -> str:
    """The notice of ``event`` written by the store ``origin`` (module doc)."""
    data = event.data
    note: dict[str, Any] = {"o": origin, "t": event.type}
    if isinstance(kind := data.get("kind"), str):
        note["k"] = kind
    if isinstance(key := data.get("key"), str):
        note["key"] = key
    if isinstance(version := data.get("version"), int):
        note["v"] = version
    fields = data.get("fields")
    if isinstance(fields, list) and all(isinstance(f, str) for f in fields):
        note["f"] = fields
    for optional in ("f", "key"):
        text = _dumps(note)
        if len(text.encode()) <= MAX_PAYLOAD:
            return text
        note.pop(optional, None)
    return _dumps({"o": origin, "t": event.type} | ({"k": note["k"]} if "k" in note else {}))


def remote_event(payload: str, origin: str) -> Event | None:
    """The event to hand this store's subscribers for a notice, or None when it is this
    store's own, not a task write, or not a notice of this format (a workstation of an older
    version sends the bare event type: the periodic full read covers its writes)."""
    try:
        note = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(note, dict) or note.get("o") == origin:
        return None
    kind, event_type = note.get("k"), note.get("t")
    if kind != "tasks" or event_type not in _TASK_EVENTS:
        return None
    key = note.get("key")
    if not isinstance(key, str):
        return resync("a task notice too large to name its task")
    version = note.get("v")
    version = version if isinstance(version, int) else None
    if event_type == EventType.STATE_RECOVERED:
        why = "recovered by another workstation"
        return StateRecovered(kind=kind, key=key, reason=why, new_version=version, remote=True)
    data: dict[str, Any] = {"kind": kind, "key": key, REMOTE: True}
    if version is not None:
        data["version"] = version
    fields = note.get("f")
    if isinstance(fields, list) and all(isinstance(f, str) for f in fields):
        data["fields"] = fields
    return StateUpdated(**data)


def record_change(payload: str) -> RecordChange | None:
    """The record write a notice tells of, whichever store sent it (a watcher of this store
    waits for its own writes too), for ``watch``; ``RESYNC`` for a record write too large to
    name its key; None for anything else."""
    try:
        note = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(note, dict) or note.get("t") not in _TASK_EVENTS:
        return None
    if "k" in note and not isinstance(note.get("key"), str):
        return RESYNC
    return change_of(note.get("k"), note.get("key"), note.get("v"))


def resync(reason: str) -> Event:
    """Tells subscribers that other processes' writes may have gone unheard: read everything
    again."""
    return StateResync(remote=True, reason=reason)


def _dumps(note: dict[str, Any]) -> str:
    return json.dumps(note, separators=(",", ":"), ensure_ascii=False)
