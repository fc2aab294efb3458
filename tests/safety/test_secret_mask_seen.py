"""An event is looked through for secrets once between its log line and its subscribers
(``secret_mask.masked_with_json`` keeps its answer for ``masked_model`` of the very same
object), and never when what is known changed in between: then it is looked through again."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from orchestrator.events import Event
from orchestrator.safety import secret_mask
from orchestrator.state.file.store import FileStateStore


def canary() -> str:
    return f"Tok-{secrets.token_hex(10)}"


def test_the_masked_event_a_line_was_written_from_is_the_one_handed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = canary()
    monkeypatch.setenv("SEEN_TEST_TOKEN", token)
    event = Event(type="verify.failed", data={"output": f"key {token}"})
    masked, line = secret_mask.masked_with_json(event)
    assert token.encode() not in line and masked.data == {"output": "key ***"}
    assert secret_mask.masked_model(event) is masked  # not rebuilt a second time
    again = secret_mask.masked_model(event)  # the kept answer is given once
    assert again is not masked and again.data == {"output": "key ***"}
    twin = event.model_copy()
    secret_mask.masked_with_json(event)
    told = secret_mask.masked_model(twin)  # an equal event, not the same object: its own look
    assert told is not masked and told.data == {"output": "key ***"}


def test_a_secret_known_after_the_line_is_masked_before_subscribers_see_it() -> None:
    key = canary()
    event = Event(type="phase.output", data={"text": f"printed {key}"})
    model, line = secret_mask.masked_with_json(event)
    assert model is event and key.encode() in line  # not a secret yet
    secret_mask.remember([key])
    told = secret_mask.masked_model(event)
    assert told is not event and told.data == {"text": "printed ***"}


async def test_a_store_event_reaches_the_log_and_subscribers_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = canary()
    monkeypatch.setenv("SEEN_STORE_TOKEN", token)
    seen: list[Event] = []
    async with FileStateStore.for_repo(tmp_path) as store:
        store.subscribe(seen.append)
        await store.create_session({}, ["t1"], session_id="s1")
        await store.emit(Event(type="verify.failed", data={"output": f"said {token}"}))
        await store.update_task_state("t1", {"error": f"failed: {token}"})
    assert [e.data for e in seen if e.type == "verify.failed"] == [{"output": "said ***"}]
    assert len(seen) > 1 and all(token not in e.model_dump_json() for e in seen)
    log = b"".join(p.read_bytes() for p in tmp_path.rglob("events.jsonl"))
    assert b"said ***" in log and token.encode() not in log
