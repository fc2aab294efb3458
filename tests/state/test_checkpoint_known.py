"""A checkpoint given the records its caller holds (``create_checkpoint(known=)``, a stop's view
of its tasks) parses again only the files that do not hold exactly them: one another process
wrote since, a copy the caller changed, one it does not hold; the checkpoint is the store's
records either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.models import SessionRecord, SessionStatus, TaskState, TaskStatus
from orchestrator.state import FileStateStore


async def test_only_records_not_held_exactly_are_parsed_and_the_checkpoint_is_the_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "state"
    async with FileStateStore(root) as store, FileStateStore(root) as other:
        await store.create_session({}, ["a", "b", "c", "d"], session_id="s1")
        held = {t.task_id: t for t in await store.list_tasks("s1")}
        del held["d"]
        held["c"] = held["c"].model_copy(update={"priority": 7})  # not what the file holds
        # Another process's store writes b after the caller read it.
        await other.update_task_state("b", {"status": TaskStatus.RUNNING})

        session = await store.update_session(
            "s1", {"status": SessionStatus.INTERRUPTED}, metrics=False
        )

        parsed: list[str] = []
        parse, parse_session = store.tasks.parse, store.sessions.parse

        def counted(key: str, raw: bytes) -> TaskState:
            parsed.append(key)
            return parse(key, raw)

        def counted_session(key: str, raw: bytes) -> SessionRecord:
            parsed.append(key)
            return parse_session(key, raw)

        monkeypatch.setattr(store.tasks, "parse", counted)
        monkeypatch.setattr(store.sessions, "parse", counted_session)
        made = await store.create_checkpoint("s1", "stop", known=held, session=session)
        kept = await store.get_checkpoint(made.checkpoint_id)
        # The session written by another process since: parsed from its file.
        await other.update_session("s1", {"status": SessionStatus.ACTIVE}, metrics=False)
        again = await store.create_checkpoint("s1", "again", known=held, session=session)
        monkeypatch.undo()
        assert (await store.get_checkpoint(again.checkpoint_id)).session.status == (
            SessionStatus.ACTIVE
        )
        on_disk = await other.get_checkpoint(made.checkpoint_id)  # parsed from its file
        now = await other.list_tasks("s1")

    assert sorted(parsed) == ["b", "b", "c", "c", "d", "d", "s1"]  # s1: the second's only
    by_id = {t.task_id: t for t in kept.tasks}
    assert by_id["a"] is held["a"]  # taken as held: its file is exactly it
    assert by_id["b"].status == TaskStatus.RUNNING  # the other writer's, not the held copy
    assert by_id["c"].priority == 0  # the file's, not the changed copy
    expected = [t.model_dump() for t in sorted(now, key=lambda t: t.task_id)]
    for checkpoint in (kept, on_disk):
        got = [t.model_dump() for t in sorted(checkpoint.tasks, key=lambda t: t.task_id)]
        assert got == expected
    assert kept.session.metrics.in_progress == 1 and kept.session.metrics.queued == 3
    assert kept.session.status == SessionStatus.INTERRUPTED
