"""The keyed records part of the state store contract: records by namespace and key, written
whole with a compare-and-set on their version, listed, deleted, unsafely named ones refused;
and the conflict strategies built on them (``state.conflicts``: built on the protocol, so
proven per backend). A mixin of ``StateStoreContract``."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest

from orchestrator.errors import (
    InvalidIdError,
    VersionConflict,
)
from orchestrator.models import (
    KeyedRecord,
)
from orchestrator.state.conflicts import (
    ConflictStrategy,
    MergeConflict,
    PendingConflict,
    atomic_update,
    list_conflicts,
    resolve_conflict,
    write_with_strategy,
)
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = ["RecordsContract"]


class RecordsContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    # -- keyed records ----------------------------------------------------------------------

    async def test_a_made_record_is_written_with_what_made_it(self, store: StateStore) -> None:
        """``put_made_record``: ``make`` called once, first; its data written as ``put_record``
        writes it (its compare-and-set too), the rest of its answer handed back; a ``make``
        that raises writes nothing."""
        calls: list[str] = []

        def make() -> tuple[dict[str, Any], str]:
            calls.append("made")
            return {"path": "/w/s1"}, "log created"

        record, rest = await store.put_made_record("worktrees", "s1", make, durable=False)
        assert (rest, calls) == ("log created", ["made"])
        assert (record.version, record.data) == (1, {"path": "/w/s1"})
        stored = await store.get_record("worktrees", "s1")
        assert stored is not None and (stored.version, stored.data) == (1, {"path": "/w/s1"})

        def failing() -> tuple[dict[str, Any], None]:
            raise OSError("the log could not be created")

        with pytest.raises(OSError, match="the log could not be created"):
            await store.put_made_record("worktrees", "s2", failing)
        assert await store.get_record("worktrees", "s2") is None
        with pytest.raises(VersionConflict):
            await store.put_made_record("worktrees", "s1", make, expected_version=0)
        stored = await store.get_record("worktrees", "s1")
        assert stored is not None and stored.version == 1
        again, _ = await store.put_made_record("worktrees", "s1", make, expected_version=1)
        assert again.version == 2 and calls == ["made"] * 3

    async def test_keyed_records(self, store: StateStore) -> None:
        assert await store.get_record("worktrees", "s1") is None
        first = await store.put_record("worktrees", "s1", {"task": "a"}, expected_version=0)
        assert (first.namespace, first.key, first.version, first.data) == (
            "worktrees",
            "s1",
            1,
            {"task": "a"},
        )
        with pytest.raises(VersionConflict):
            await store.put_record("worktrees", "s1", {"task": "b"}, expected_version=0)
        second = await store.put_record("worktrees", "s1", {"cli": "x"}, expected_version=1)
        assert second.version == 2 and second.data == {"cli": "x"}  # data is replaced whole
        await store.put_record("worktrees", "s2", {})
        await store.put_record("owners", "s1", {"other": True})
        listed = await store.list_records("worktrees")
        assert [r.key for r in listed] == ["s1", "s2"]
        with pytest.raises(VersionConflict):
            await store.delete_record("worktrees", "s1", expected_version=1)
        assert await store.delete_record("worktrees", "s1", expected_version=2)
        assert not await store.delete_record("worktrees", "s1")
        assert await store.get_record("worktrees", "s1") is None
        assert await store.get_record("owners", "s1") is not None
        again = await store.put_record("worktrees", "s1", {"n": 1}, expected_version=0)
        assert again.version == 1
        with pytest.raises(InvalidIdError):
            await store.put_record("../x", "k", {})
        with pytest.raises(InvalidIdError):
            await store.put_record("ns", "../k", {})

    async def test_records_are_deleted_together(self, store: StateStore) -> None:
        """``delete_records``: each as ``delete_record`` (whether it was there, its expected
        version), every version checked before any goes; bad names refused up front."""
        await store.put_record("worktrees", "s1", {"n": 1})
        await store.put_record("worktrees", "s1", {"n": 2})
        await store.put_record("owners", "o1", {"n": 1}, durable=False)
        await store.put_record("owners", "keep", {"n": 1})
        wanted = [
            Deletion("worktrees", "s1", 2),
            Deletion("owners", "o1"),
            Deletion("owners", "never"),
            Deletion("worktrees", "gone", 0),
        ]
        with pytest.raises(VersionConflict):  # one mismatch: none goes
            await store.delete_records([Deletion("owners", "o1"), Deletion("worktrees", "s1", 1)])
        assert await store.get_record("owners", "o1") is not None
        with pytest.raises(VersionConflict):  # one expected that is not there
            await store.delete_records([Deletion("owners", "o1"), Deletion("owners", "x", 3)])
        assert await store.get_record("owners", "o1") is not None
        assert await store.delete_records(wanted) == [True, True, False, False]
        assert await store.get_record("worktrees", "s1") is None
        assert await store.get_record("owners", "o1") is None
        assert [r.key for r in await store.list_records("owners")] == ["keep"]
        assert await store.delete_records([]) == []
        assert await store.delete_records([Deletion("worktrees", "s1"), wanted[1]]) == [False] * 2
        again = await store.put_record("worktrees", "s1", {"n": 1}, expected_version=0)
        assert again.version == 1  # a deleted record starts over
        with pytest.raises(ValueError, match="owners/keep is named twice"):
            await store.delete_records([Deletion("owners", "keep"), Deletion("owners", "keep")])
        with pytest.raises(InvalidIdError):
            await store.delete_records([Deletion("owners", "keep"), Deletion("owners", "../k")])
        assert await store.get_record("owners", "keep") is not None

    async def test_made_deletions_go_with_what_made_them(self, store: StateStore) -> None:
        """``delete_made_records``: ``make`` called once, first; the records it names deleted
        as ``delete_records`` deletes them, the rest of its answer handed back; a ``make``
        that raises deletes nothing."""
        await store.put_record("worktrees", "s1", {"n": 1})
        await store.put_record("owners", "o1", {"n": 1})
        calls: list[str] = []

        def make() -> tuple[list[Deletion], str]:
            calls.append("made")
            return [Deletion("worktrees", "s1", 1), Deletion("owners", "none")], "removed"

        assert await store.delete_made_records(make) == ([True, False], "removed")
        assert calls == ["made"] and await store.get_record("worktrees", "s1") is None

        def failing() -> tuple[list[Deletion], None]:
            raise OSError("the worktree could not be removed")

        with pytest.raises(OSError, match="could not be removed"):
            await store.delete_made_records(failing)
        assert await store.get_record("owners", "o1") is not None

        def nothing() -> tuple[list[Deletion], int]:
            return [], 7

        assert await store.delete_made_records(nothing) == ([], 7)

        def stale() -> tuple[list[Deletion], None]:
            return [Deletion("owners", "o1", 5)], None

        with pytest.raises(VersionConflict):
            await store.delete_made_records(stale)
        assert await store.get_record("owners", "o1") is not None

    # -- conflicts (``state.conflicts``: built on the protocol, so proven per backend) -----

    async def test_atomic_update_loses_no_concurrent_change(self, store: StateStore) -> None:
        def add_one(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "count": data.get("count", 0) + 1, f"by{len(data)}": True}

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(atomic_update, store, "counters", "c", add_one)
        final = await store.get_record("counters", "c")
        assert final is not None and final.data["count"] == 20 and final.version == 20

    async def test_first_write_wins_refuses_a_late_write(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1})
        await store.put_record("cfg", "k", {"a": 2}, expected_version=read.version)
        with pytest.raises(VersionConflict):
            await write_with_strategy(store, "cfg", "k", {"a": 3}, based_on=read)
        assert (await store.get_record("cfg", "k")).data == {"a": 2}  # type: ignore[union-attr]

    async def test_last_write_wins_replaces_what_is_there(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1})
        await store.put_record("cfg", "k", {"a": 2})
        written = await write_with_strategy(
            store, "cfg", "k", {"a": 3}, based_on=read, strategy=ConflictStrategy.LAST_WRITE_WINS
        )
        assert isinstance(written, KeyedRecord) and written.data == {"a": 3}

    async def test_merge_combines_changes_and_refuses_a_clash(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1, "n": {"x": 1}, "tags": ["t"]})
        await store.put_record("cfg", "k", {"a": 2, "n": {"x": 1}, "tags": ["t", "theirs"]})
        mine = {"a": 1, "n": {"x": 1, "y": 2}, "tags": ["t", "mine"]}
        merged = await write_with_strategy(
            store, "cfg", "k", mine, based_on=read, strategy=ConflictStrategy.MERGE
        )
        assert isinstance(merged, KeyedRecord)
        assert merged.data == {"a": 2, "n": {"x": 1, "y": 2}, "tags": ["t", "theirs", "mine"]}
        with pytest.raises(MergeConflict) as clash:
            await write_with_strategy(
                store, "cfg", "k", {**mine, "a": 5}, based_on=read, strategy=ConflictStrategy.MERGE
            )
        assert clash.value.paths == ["a"]
        assert (await store.get_record("cfg", "k")) == merged  # nothing written

    async def test_manual_keeps_a_late_write_aside_until_resolved(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1, "b": 1})
        theirs = await store.put_record("cfg", "k", {"a": 2, "b": 1})
        kept = await write_with_strategy(
            store, "cfg", "k", {"a": 3, "b": 1}, based_on=read, strategy=ConflictStrategy.MANUAL
        )
        assert isinstance(kept, PendingConflict) and kept.fields == ["a"]
        assert (await store.get_record("cfg", "k")) == theirs  # the record is untouched
        assert [c.conflict_id for c in await list_conflicts(store)] == [kept.conflict_id]
        settled = await resolve_conflict(store, kept.conflict_id, "ours")
        assert (
            isinstance(settled, KeyedRecord)
            and settled.data == {"a": 3, "b": 1}
            and settled.version == theirs.version + 1
        )
        assert await list_conflicts(store) == []
        # A conflict settled against a record that moved again is refused, nothing written.
        again = await write_with_strategy(
            store, "cfg", "k", {"a": 4, "b": 1}, based_on=theirs, strategy=ConflictStrategy.MANUAL
        )
        assert isinstance(again, PendingConflict)
        await store.put_record("cfg", "k", {"a": 9, "b": 9})
        with pytest.raises(VersionConflict):
            await resolve_conflict(store, again.conflict_id, "theirs")
        assert [c.conflict_id for c in await list_conflicts(store)] == [again.conflict_id]
