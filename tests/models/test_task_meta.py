"""The typed task record (``orchestrator.task_meta``): today's records read and written back
as the same JSON, unknown keys kept, damaged values read as absent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from orchestrator.cli.store.state_cmd import task_record_json_schema
from orchestrator.forge.base import PullRequest
from orchestrator.models import TaskState
from orchestrator.scheduler.pulls.landing import pull_summary
from orchestrator.task_meta import PullState, TaskMeta

NOW = datetime(2025, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)

# Metadata as the scheduler writes it today (what the scheduler tests' records hold).
RECORDS: list[dict[str, Any]] = [
    {},
    {"failures": 1, "not_before": NOW.isoformat(), "outcome": "rate_limited"},
    {"rechecks": 2, "empty_builds": 1, "retry_note": "the build changed nothing"},
    {
        "worktree_session": "t1-ab12cd",
        "worktree_losses": 1,
        "resolve_rounds": 1,
        "conflicts": ["a.py"],
    },
    {
        "parked_until": NOW.isoformat(),
        "parked_adapter": "claude",
        "rate_limited_since": NOW.isoformat(),
        "parks": 3,
    },
    {"held": "budget run: $1.00 spent of $1.00", "held_until": NOW.isoformat()},
    {"radar_hold": "waits for t2: both change a.py", "waiting": "the merge queue"},
    {"usage": {"input_tokens": 120, "output_tokens": 30, "cost_usd": 0.0042}},
    {
        "issue": 7,
        "issue_url": "https://github.com/o/r/issues/7",
        "pull_feedback": "rename the function",
        "pull": {
            "number": 12,
            "url": "https://github.com/o/r/pull/12",
            "head": "council/t1/1",
            "head_sha": "a" * 40,
            "state": "open",
            "approvals": 0,
            "checks": "unknown",
            "round": 1,
            "waiting": "",
            "human": False,
            "looked": True,
            "fresh": False,
            "feedback_rounds": 1,
            "answered": [3, 5],
            "answered_heads": ["b" * 40],
        },
    },
    {
        "relanded": [
            {
                "commit": "c" * 40,
                "base": "main",
                "merge_base": "d" * 40,
                "replaced_by": ["f" * 10 + " a subject"],
                "seen_at": NOW.isoformat(),
                "action": "reland",
            }
        ]
    },
    {
        "candidates": {"claude": {"model": "opus"}},
        "candidate": {"commit": "e" * 40, "verified": True},
        "council": {"candidates": ["t1@claude"], "winner": None},
    },
]


@pytest.mark.parametrize("record", RECORDS)
def test_todays_records_round_trip_to_the_same_json(record: dict[str, Any]) -> None:
    back = TaskMeta.read(record).dump()
    assert json.dumps(back) == json.dumps(record)


def test_the_pull_summary_the_landing_writes_round_trips() -> None:
    pr = PullRequest(
        number=4,
        title="t",
        body="",
        state="open",
        merged=False,
        head="council/t/1",
        head_sha="f" * 40,
        base="main",
        mergeable=None,
        mergeable_state="unknown",
        url="u",
    )
    summary = pull_summary(pr, round_=2, created=True)
    meta = TaskMeta.read({"pull": summary})
    assert meta.pull.pull is not None and meta.pull.pull.number == 4
    assert meta.pull.pull.fresh is True and meta.pull.pull.round == 2
    assert json.dumps(meta.dump()) == json.dumps({"pull": summary})


def test_typed_reads() -> None:
    meta = TaskMeta.read(RECORDS[4] | RECORDS[1])
    assert meta.park.until == NOW and meta.park.adapter == "claude" and meta.park.parks == 3
    assert meta.retry.failures == 1 and meta.retry.not_before == NOW
    assert meta.worktree.session is None and meta.pull.pull is None


def test_unknown_keys_survive_a_read_modify_write() -> None:
    record = {"plugin_note": {"deep": [1, 2]}, "failures": 1, "future_key": "x"}
    meta = TaskMeta.read(record)
    meta.retry.failures = 2
    meta.worktree.session = "t1-0"
    assert meta.dump() == {
        "plugin_note": {"deep": [1, 2]},
        "failures": 2,
        "future_key": "x",
        "worktree_session": "t1-0",
    }
    pull = TaskMeta.read({"pull": {"number": 1, "merged_by": "bot"}}).pull.pull
    assert isinstance(pull, PullState) and pull.dump() == {"number": 1, "merged_by": "bot"}


def test_none_clears_a_key() -> None:
    meta = TaskMeta.read({"worktree_session": "s", "waiting": "w"})
    meta.worktree.session = None
    assert meta.dump() == {"waiting": "w"}


@pytest.mark.parametrize(
    ("record", "part", "field"),
    [
        ({"failures": "many"}, "retry", "failures"),
        ({"not_before": 17}, "retry", "not_before"),
        ({"parked_until": "not a time"}, "park", "until"),
        ({"pull": ["not", "a", "dict"]}, "pull", "pull"),
        ({"pull": {"number": "twelve"}}, "pull", "pull"),
        ({"relanded": [{"no_commit": 1}]}, "landing", "relanded"),
        ({"usage": "lots"}, "retry", "usage"),
    ],
)
def test_a_damaged_value_reads_as_absent_and_is_kept(
    record: dict[str, Any], part: str, field: str
) -> None:
    meta = TaskMeta.read({**record, "failures_ok": 1, "waiting": "the queue"})
    assert getattr(getattr(meta, part), field) is None
    assert meta.landing.waiting == "the queue"  # the rest of the record still reads
    assert meta.dump() == {**record, "failures_ok": 1, "waiting": "the queue"}


def test_a_damaged_value_set_again_is_replaced() -> None:
    meta = TaskMeta.read({"failures": "many"})
    meta.retry.failures = 1
    assert meta.dump() == {"failures": 1}
    meta.retry.failures = None
    assert meta.dump() == {}


def test_a_wrong_type_set_is_refused() -> None:
    meta = TaskMeta.read({})
    with pytest.raises(ValueError, match="failures"):
        meta.retry.failures = "many"  # type: ignore[assignment]


def test_every_key_belongs_to_one_part() -> None:
    keys = [
        info.alias or name
        for part in TaskMeta.parts().values()
        for name, info in part.model_fields.items()
    ]
    assert len(keys) == len(set(keys)) == len(TaskMeta.keys())
    assert TaskMeta.VERSION == 1


@pytest.mark.parametrize("record", RECORDS)
def test_todays_records_meet_the_published_schema(record: dict[str, Any]) -> None:
    jsonschema.validate(record, TaskMeta.json_schema())


def test_the_schema_refuses_a_key_of_the_wrong_type_and_allows_one_no_part_knows() -> None:
    schema = TaskMeta.json_schema()
    jsonschema.validate({"a_plugins_key": {"any": "thing"}}, schema)
    for bad in ({"failures": "one"}, {"pull": {"number": "12"}}, {"parked_until": 3}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_a_task_record_as_the_store_keeps_it_meets_council_state_schema() -> None:
    record = TaskState(task_id="t1", session_id="s1", metadata=RECORDS[8] | RECORDS[4])
    schema = task_record_json_schema()
    jsonschema.validate(record.model_dump(mode="json"), schema)
    assert schema["properties"]["metadata"] == {"$ref": "#/$defs/TaskMetadata"}
    assert set(schema["$defs"]["TaskMetadata"]["properties"]) == TaskMeta.keys()


@pytest.mark.parametrize("record", RECORDS)
def test_a_peek_reads_as_a_read(record: dict[str, Any]) -> None:
    """``peek`` (a reader's view) reads every part as ``read`` does, the empty record too."""
    peeked, read = TaskMeta.peek(record), TaskMeta.read(record)
    for name in TaskMeta.parts():
        assert getattr(peeked, name).model_dump() == getattr(read, name).model_dump()
    assert peeked.dump() == read.dump() == record


def test_records_without_metadata_share_one_view_that_refuses_changes() -> None:
    """Thousands of tasks not started yet read one empty view (no view built each), and a
    reader that changed it would change every such record's: the change is refused."""
    first, second = TaskMeta.peek({}), TaskMeta.peek(None)
    assert first is second
    with pytest.raises(ValidationError, match="frozen"):
        first.retry.outcome = "rate_limited"
    assert first.retry.outcome is None and first.dump() == {}
    assert TaskMeta.peek({"parks": 1}) is not first
    fresh = TaskMeta.read({})
    fresh.retry.outcome = "rate_limited"  # ``read`` stays a writer's own view
    assert fresh.dump() == {"outcome": "rate_limited"}


def test_a_peek_shares_the_empty_parts_of_a_record_with_metadata() -> None:
    """A record with metadata reads each part it holds no key of as the one empty view's part
    (a report reads five such parts of each task): shared, and refusing a change as that
    view's do; the parts it holds keys of are read from them; ``read`` makes its own."""
    peeked = TaskMeta.peek({"parks": 2, "parked_adapter": "claude"})
    assert (peeked.park.parks, peeked.park.adapter) == (2, "claude")
    empty = TaskMeta.peek({})
    assert peeked.retry is empty.retry and peeked.pull is empty.pull
    assert TaskMeta.peek({"outcome": "x"}).park is empty.park
    with pytest.raises(ValidationError, match="frozen"):
        peeked.hold.held = "budget"
    assert peeked.hold.held is None and empty.hold.held is None
    own = TaskMeta.read({"parks": 2})
    own.hold.held = "budget: run"  # ``read`` stays a writer's own view
    assert own.dump() == {"parks": 2, "held": "budget: run"}
