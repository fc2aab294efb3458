"""The history part of the state store contract: ``record_history`` reaches every version of
every kind of record, with its values, also those compacted into the archive long after they
left the recent window. A mixin of ``StateStoreContract``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from orchestrator.errors import StateError
from orchestrator.models import KeyedRecord, SessionRecord, TaskState
from orchestrator.state.history_archive import ARCHIVE_BATCH
from orchestrator.state.protocol import StateStore
from orchestrator.state.record_diff import field_changes

__all__ = ["HistoryContract"]

# Past the recent window (ten) and two whole archive batches, and a few waiting for the next.
MANY = 10 + 2 * ARCHIVE_BATCH + 5


def _versions(docs: list[dict[str, Any]]) -> list[int]:
    return [int(d["version"]) for d in docs]


class HistoryContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_task_history_reaches_every_version_with_its_values(
        self, store: StateStore
    ) -> None:
        written: list[TaskState] = []
        for n in range(MANY):
            # Nested changes too: a key added, changed and removed inside metadata.
            metadata: dict[str, Any] = {"n": n, "even": n % 2 == 0}
            if n % 3:
                metadata["third"] = {"deep": n}
            written.append(
                await store.update_task_state("t1", {"priority": n, "metadata": metadata})
            )
        history = await store.record_history("tasks", "t1")
        assert _versions(history) == list(range(MANY, 0, -1))
        # Each version reads back exactly as it was written, archived ones included.
        assert [TaskState.model_validate(d) for d in history] == written[::-1]

    async def test_limit_and_before_version_page_back_through_the_archive(
        self, store: StateStore
    ) -> None:
        for n in range(MANY):
            await store.update_task_state("t1", {"priority": n})
        newest = await store.record_history("tasks", "t1", limit=3)
        assert _versions(newest) == [MANY, MANY - 1, MANY - 2]
        archived = await store.record_history("tasks", "t1", limit=2, before_version=4)
        assert _versions(archived) == [3, 2]
        assert [d["priority"] for d in archived] == [2, 1]
        pages: list[dict[str, Any]] = []
        before: int | None = None
        while page := await store.record_history("tasks", "t1", limit=7, before_version=before):
            pages += page
            before = int(page[-1]["version"])
        assert _versions(pages) == list(range(MANY, 0, -1))
        assert await store.record_history("tasks", "t1", limit=0) == []

    async def test_session_history_keeps_every_version(self, store: StateStore) -> None:
        await store.create_session({"n": -1}, ["a"], session_id="s1")
        for n in range(MANY - 1):
            await store.update_session("s1", {"options": {"n": n}})
        history = await store.record_history("sessions", "s1")
        assert _versions(history) == list(range(MANY, 0, -1))
        sessions = [SessionRecord.model_validate(d) for d in history]
        assert [s.options["n"] for s in sessions] == list(range(MANY - 2, -2, -1))

    async def test_keyed_record_history_keeps_every_version(self, store: StateStore) -> None:
        for n in range(MANY):
            await store.put_record("notes", "k1", {"n": n, "text": f"note {n}"})
        history = await store.record_history("records/notes", "k1")
        records = [KeyedRecord.model_validate(d) for d in history]
        assert [r.version for r in records] == list(range(MANY, 0, -1))
        assert [r.data["n"] for r in records] == list(range(MANY - 1, -1, -1))
        assert await store.record_history("records/other", "k1") == []

    async def test_a_deleted_record_takes_its_history_with_it(self, store: StateStore) -> None:
        for n in range(MANY):
            await store.put_record("notes", "k1", {"n": n})
        assert await store.delete_record("notes", "k1")
        assert await store.record_history("records/notes", "k1") == []
        again = await store.put_record("notes", "k1", {"n": "again"})
        history = await store.record_history("records/notes", "k1")
        assert _versions(history) == [again.version]

    async def test_counter_history_is_newest_first(self, store: StateStore) -> None:
        # Fencing tokens are a counter record in one backend (written once a claim, or once
        # a block of claims: the file store's) and a database sequence in another (no
        # history there): either way the call answers, newest first.
        await store.update_task_state("t1", {})
        for holder in ("a", "b", "c"):
            claim = await store.acquire_claim("t1", holder, 30)
            assert claim is not None
            await store.release_claim("t1", claim.token)
        versions = _versions(await store.record_history("counters", "fencing"))
        assert versions == sorted(versions, reverse=True)
        assert len(versions) <= 3

    async def test_a_record_never_written_has_no_history(self, store: StateStore) -> None:
        assert await store.record_history("tasks", "nope") == []
        assert await store.record_history("sessions", "nope") == []

    async def test_an_unknown_kind_is_refused(self, store: StateStore) -> None:
        with pytest.raises(StateError, match="no record kind"):
            await store.record_history("checkpoints", "x")

    async def test_diff_between_an_archived_and_a_recent_version(self, store: StateStore) -> None:
        for n in range(MANY):
            status = "running" if n == 1 else "queued"
            await store.update_task_state("t1", {"priority": n, "status": status})
        versions = {int(d["version"]): d for d in await store.record_history("tasks", "t1")}
        changes = {c.path: (c.old, c.new) for c in field_changes(versions[2], versions[MANY])}
        assert changes == {"priority": (1, MANY - 1), "status": ("running", "queued")}
