"""Blocking work in a record's store call, in the state store contract: ``delete_record_after``
(the work done first, once, then the record removed as ``delete_record`` removes it; work that
raises removes nothing), ``put_made_record_then`` (the record written, then the work, once;
work that raises leaves the record written) and ``put_made_record_while`` (that, the record
deleted again when the work's answer says its time is over). A mixin of
``StateStoreContract``."""

from __future__ import annotations

from typing import ClassVar

import pytest

from orchestrator.errors import VersionConflict
from orchestrator.state.protocol import StateStore

__all__ = ["DeleteAfterContract"]


class DeleteAfterContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_a_record_goes_after_the_work_it_waits_for(self, store: StateStore) -> None:
        written = await store.put_record("runs", "t1", {"pid": 7})
        done: list[str] = []

        def first() -> str:
            done.append("swept")
            return "its answer"

        deleted, answer = await store.delete_record_after("runs", "t1", first, written.version)
        assert (deleted, answer, done) == (True, "its answer", ["swept"])  # once
        assert await store.get_record("runs", "t1") is None

    async def test_work_that_raises_removes_nothing(self, store: StateStore) -> None:
        await store.put_record("runs", "t1", {"pid": 7})

        def first() -> None:
            raise OSError("the log could not be closed")

        with pytest.raises(OSError, match="the log could not be closed"):
            await store.delete_record_after("runs", "t1", first)
        record = await store.get_record("runs", "t1")
        assert record is not None and record.data == {"pid": 7}

    async def test_the_work_is_done_for_a_missing_record_too(self, store: StateStore) -> None:
        await store.put_record("runs", "other", {})  # the namespace exists; this key does not
        done: list[int] = []
        deleted, answer = await store.delete_record_after("runs", "t1", lambda: done.append(1))
        assert (deleted, answer, done) == (False, None, [1])

    async def test_a_version_mismatch_removes_nothing(self, store: StateStore) -> None:
        written = await store.put_record("runs", "t1", {"pid": 7})
        await store.put_record("runs", "t1", {"pid": 8})  # replaced meanwhile
        done: list[int] = []
        with pytest.raises(VersionConflict):
            await store.delete_record_after("runs", "t1", lambda: done.append(1), written.version)
        assert done == [1]  # done first, whatever the record turns out to be
        record = await store.get_record("runs", "t1")
        assert record is not None and record.data == {"pid": 8}

    async def test_work_after_a_write_sees_it_written(self, store: StateStore) -> None:
        seen: list[str] = []

        def make() -> tuple[dict[str, int], str]:
            seen.append("made")
            return {"pid": 7}, "the session"

        def then(rest: str) -> int:
            seen.append(f"then {rest}")
            return 3

        record, rest, after = await store.put_made_record_then("runs", "t1", make, then, 0)
        assert (rest, after, seen) == ("the session", 3, ["made", "then the session"])
        stored = await store.get_record("runs", "t1")
        assert stored is not None and stored.data == {"pid": 7} == record.data

    async def test_work_after_a_write_that_raises_leaves_it_written(
        self, store: StateStore
    ) -> None:
        def then(_: None) -> None:
            raise OSError("the checkout failed")

        with pytest.raises(OSError, match="the checkout failed"):
            await store.put_made_record_then("runs", "t1", lambda: ({"pid": 7}, None), then)
        stored = await store.get_record("runs", "t1")
        assert stored is not None and stored.data == {"pid": 7}

    async def test_nothing_is_done_after_a_write_refused(self, store: StateStore) -> None:
        await store.put_record("runs", "t1", {"pid": 7})
        done: list[int] = []
        with pytest.raises(VersionConflict):  # it exists: a creation is refused
            await store.put_made_record_then(
                "runs", "t1", lambda: ({"pid": 8}, None), lambda _: done.append(1), 0
            )
        assert done == []

    async def test_a_record_stands_while_its_work_runs(self, store: StateStore) -> None:
        seen: list[object] = []

        def then(rest: str) -> str:
            seen.append(rest)
            return "landed"

        written, rest, answer, deleted = await store.put_made_record_while(
            "runs", "t1", lambda: ({"pid": 7}, "its rest"), then, lambda a: a == "landed", 0
        )
        assert (rest, answer, deleted, seen) == ("its rest", "landed", True, ["its rest"])
        assert written.data == {"pid": 7}
        assert await store.get_record("runs", "t1") is None
        again, _, answer, deleted = await store.put_made_record_while(
            "runs", "t1", lambda: ({"pid": 8}, None), lambda _: "retry", lambda a: a == "landed"
        )
        assert (answer, deleted) == ("retry", False)  # not over: it stays
        stored = await store.get_record("runs", "t1")
        assert stored is not None and stored.data == {"pid": 8} == again.data

    async def test_a_record_whose_work_raises_stands(self, store: StateStore) -> None:
        def then(_: None) -> bool:
            raise OSError("git went away")

        with pytest.raises(OSError, match="git went away"):
            await store.put_made_record_while(
                "runs", "t1", lambda: ({"pid": 7}, None), then, lambda _: True
            )
        stored = await store.get_record("runs", "t1")
        assert stored is not None and stored.data == {"pid": 7}
