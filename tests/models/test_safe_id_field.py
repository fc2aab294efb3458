"""``SafeId``'s core pattern is the same rule as ``ids.is_safe_id``, checked without Python."""

from __future__ import annotations

import itertools
import random

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from orchestrator import id_fields
from orchestrator.id_fields import CheckedId, SafeId
from orchestrator.ids import is_safe_id
from orchestrator.models import SessionRecord, TaskState

_ADAPTER: TypeAdapter[str] = TypeAdapter(SafeId)


def _accepted(value: str) -> bool:
    try:
        _ADAPTER.validate_python(value)
    except ValidationError:
        return False
    return True


def test_same_rule_on_every_short_id_over_the_tricky_characters() -> None:
    # every string up to 6 characters over the letters of "lock", a dot and the others: every
    # '..', leading/trailing '.', '.lock' ending and near miss ('.loc', '.locks', 'x.lockx')
    alphabet = "lock.a-_Z/"
    checked = 0
    for size in range(7):
        for letters in itertools.product(alphabet[:8] if size == 6 else alphabet, repeat=size):
            value = "".join(letters)
            assert _accepted(value) == is_safe_id(value), value
            checked += 1
    assert checked > 300_000


def test_same_rule_on_generated_ids_of_every_length() -> None:
    rng = random.Random(51)
    pieces = ["a", "z", "0", "9", "-", "_", ".a", "lock", ".lock", "l", "k", ".", ".."]
    hostile = ["A", " ", "\n", "/", "..", "."]
    agreed = {True: 0, False: 0}
    for _ in range(40_000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.15:
            at = rng.randint(0, len(value))
            value = value[:at] + rng.choice(hostile) + value[at:]
        if rng.random() < 0.3:
            value = value[: rng.choice((63, 64, 65))].ljust(rng.choice((63, 64, 65)), "x")
        if rng.random() < 0.2:
            value += rng.choice((".lock", ".", ".lockx", "lock"))
        expected = is_safe_id(value)
        assert _accepted(value) == expected, value
        agreed[expected] += 1
    assert agreed[True] > 4_000 and agreed[False] > 4_000


@pytest.mark.parametrize("value", ["a" * 64, "a" * 65, "a.lock", "a.locks", "a..b", "a.", ".a", ""])
def test_the_length_and_the_edges(value: str) -> None:
    assert _accepted(value) == is_safe_id(value)


def test_a_refused_record_id_names_the_field_the_value_and_the_rule() -> None:
    with pytest.raises(ValidationError) as refused:
        TaskState(task_id="../etc")
    text = str(refused.value)
    assert "task_id" in text and "'../etc'" in text and "not a safe id" in text
    assert refused.value.errors()[0]["type"] == "safe_id"
    with pytest.raises(ValidationError, match="not a safe id"):
        TaskState(task_id=7)  # type: ignore[arg-type]


def test_reading_records_calls_no_python_for_their_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # a stop's checkpoint reads every task record back: their ids are checked in pydantic's
    # core, not by 40,000 calls of a Python validator
    calls: list[str] = []

    def counted(value: str, kind: str = "id") -> str:
        calls.append(value)
        return value

    monkeypatch.setattr(id_fields, "check_id", counted)
    session = SessionRecord(session_id="s-1", task_ids=[f"t{n}" for n in range(100)])
    tasks = [TaskState(task_id=f"t{n}", session_id="s-1") for n in range(100)]
    back = [TaskState.model_validate_json(task.model_dump_json()) for task in tasks]
    SessionRecord.model_validate_json(session.model_dump_json())
    assert [task.task_id for task in back] == [f"t{n}" for n in range(100)]
    assert calls == []

    class Config(BaseModel):
        id: CheckedId

    Config(id="t1")  # the run config's ids still go through check_id, which quotes them
    assert calls == ["t1"]
