"""Typed events: one model per event type, the same wire shape as the untyped ``Event`` had
(``type``, ``ts``, ``data``, ``level``), read back into their models, and still usable by code
written for the untyped ``Event`` (``.data``, ``sentence``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.event_text import sentence
from orchestrator.events import (
    Event,
    EventType,
    PhaseFailed,
    PhaseStarted,
    StateUpdated,
    TaskDispatched,
    TaskEvent,
    parse_event,
    read_event,
    typed_event,
)
from orchestrator.events.catalogue import MODELS
from orchestrator.safety import secret_mask
from orchestrator.state import FileStateStore


def test_every_event_type_has_one_model_and_every_model_a_type() -> None:
    assert set(MODELS) == {str(kind) for kind in EventType}
    for kind, model in MODELS.items():
        assert issubclass(model, Event), kind
        assert model.model_fields["type"].default == kind


def test_a_typed_event_is_written_in_the_shape_the_log_always_had() -> None:
    event = TaskDispatched(task_id="t1", adapter="alpha", attempt=1, branch="council/t1/1")

    wire = json.loads(event.model_dump_json())

    assert list(wire) == ["type", "ts", "data", "level"]
    assert wire["type"] == "task.dispatched" and wire["level"] == "info"
    # What the emitter gave, nothing else: a field left at its default is not written.
    assert wire["data"] == {
        "task_id": "t1",
        "adapter": "alpha",
        "attempt": 1,
        "branch": "council/t1/1",
    }
    assert event.data == wire["data"] and event.phase is None
    assert parse_event(event.model_dump_json()) == event


def test_a_log_line_reads_back_into_its_model() -> None:
    line = json.dumps(
        {
            "type": "phase.failed",
            "ts": "2025-01-02T03:04:05Z",
            "data": {"task_id": "t3", "phase": "build", "status": "failed", "attempt": 2},
            "level": "warning",
        }
    )

    event = parse_event(line)

    assert isinstance(event, PhaseFailed) and isinstance(event, TaskEvent)
    assert (event.task_id, event.phase, event.attempt, event.error) == ("t3", "build", 2, None)
    assert event.ts.year == 2025 and event.level == "warning"


def test_a_line_an_older_version_wrote_with_task_still_reads() -> None:
    old = {"task": "t1", "phase": "plan", "adapter": "a", "status": "running", "attempt": 1}
    line = json.dumps({"type": "phase.started", "ts": "2025-01-02T03:04:05Z", "data": old})

    event = parse_event(line)

    assert isinstance(event, PhaseStarted) and event.task_id == "t1"
    assert sentence(event) == "t1: plan started on a"


def test_a_type_without_a_model_stays_a_plain_event_with_its_data() -> None:
    line = '{"type": "plugin.noticed", "ts": "2025-01-02T03:04:05Z", "data": {"n": 3}}'

    event = parse_event(line)

    assert type(event) is Event
    assert event.type == "plugin.noticed" and event.data == {"n": 3}
    assert json.loads(event.model_dump_json())["data"] == {"n": 3}


def test_data_that_does_not_fit_its_model_is_refused_or_read_untyped() -> None:
    line = json.dumps(
        {"type": "task.dispatched", "ts": "2025-01-02T03:04:05Z", "data": {"task_id": "t1"}}
    )

    with pytest.raises(ValidationError, match="adapter"):
        parse_event(line)
    loose = read_event(line)  # an older log: still read, as the untyped event
    assert type(loose) is Event and loose.data == {"task_id": "t1"}
    with pytest.raises(ValidationError, match="Extra inputs"):
        TaskDispatched.model_validate(
            {"data": {"task_id": "t", "adapter": "a", "attempt": 1, "branch": "b", "nope": 1}}
        )
    with pytest.raises(ValidationError, match="data key 'level' is reserved"):
        Event(type="x", data={"level": "loud"})


def test_an_untyped_event_of_a_known_type_becomes_its_model() -> None:
    plain = Event(type="state.updated", data={"kind": "tasks", "key": "t1", "version": 2})

    event = typed_event(plain)

    assert isinstance(event, StateUpdated) and event.task_id == "t1" and event.version == 2
    assert typed_event(event) is event
    odd = Event(type="state.updated", data={"kind": "tasks"})  # no key: left as it is
    assert typed_event(odd) is odd


def test_a_masked_typed_event_stays_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_TEST_API_KEY", "sk-live-0123456789abcdef")
    failed = PhaseFailed(
        task_id="t1",
        phase="build",
        status="failed",
        attempt=1,
        error="auth refused for sk-live-0123456789abcdef",
    )

    masked = secret_mask.masked_model(failed)

    assert isinstance(masked, PhaseFailed) and masked.task_id == "t1"
    assert masked.error is not None and "sk-live" not in masked.error
    assert "sk-live" not in secret_mask.masked_json(failed).decode()


async def test_the_store_reads_its_log_back_typed(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state", events_path=tmp_path / "events.jsonl") as store:
        await store.emit(TaskDispatched(task_id="t1", adapter="a", attempt=1, branch="b"))
        await store.emit(Event(type="plugin.noticed", data={"n": 1}))
        read = list(store.events.read())

    assert [type(e) for e in read] == [TaskDispatched, Event]
    assert read[0].data == {"task_id": "t1", "adapter": "a", "attempt": 1, "branch": "b"}
