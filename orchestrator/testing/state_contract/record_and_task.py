"""The record-and-task write of the state store contract (``put_made_record_and_task``): a
keyed record made and written, then a task's update, in one store call; refused whole (the
task's fence or version, a ``make`` that raises). A mixin of ``StateStoreContract``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from orchestrator.errors import StaleClaim, VersionConflict
from orchestrator.models import TaskStatus
from orchestrator.state.protocol import StateStore

__all__ = ["RecordAndTaskContract"]


class RecordAndTaskContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_a_record_and_a_task_are_written_in_one_call(self, store: StateStore) -> None:
        """``make`` called once; the record holds its data, the rest of its answer comes back,
        and the task's update is merged under its claim's fence."""
        await store.update_task_state("t1", {"metadata": {"kept": 1}})
        claim = await store.acquire_claim("t1", "worker-a", 60)
        assert claim is not None
        calls: list[str] = []

        def make() -> tuple[dict[str, Any], str]:
            calls.append("made")
            return {"phase": "build"}, "file written"

        record, rest, task = await store.put_made_record_and_task(
            "handoffs",
            "t1.build",
            make,
            "t1",
            {"current_phase": "build"},
            fencing_token=claim.token,
        )
        assert (rest, calls) == ("file written", ["made"])
        assert (record.namespace, record.key, record.version) == ("handoffs", "t1.build", 1)
        assert record.data == {"phase": "build"}
        assert task.current_phase == "build" and task.metadata == {"kept": 1}
        stored = await store.get_task_state("t1")
        assert stored is not None and stored.version == task.version
        kept = await store.get_record("handoffs", "t1.build")
        assert kept is not None and (kept.version, kept.data) == (1, {"phase": "build"})
        again, _, _ = await store.put_made_record_and_task(
            "handoffs", "t1.build", make, "t1", {"status": TaskStatus.RUNNING}
        )
        assert again.version == 2 and calls == ["made", "made"]
        with pytest.raises(VersionConflict):  # the record's own compare-and-set
            await store.put_made_record_and_task(
                "handoffs", "t1.build", make, "t1", {"current_phase": "x"}, record_version=0
            )
        kept = await store.get_record("handoffs", "t1.build")
        assert kept is not None and kept.version == 2
        stored = await store.get_task_state("t1")
        assert stored is not None and stored.current_phase == "build"

    async def test_a_refused_task_writes_no_record(self, store: StateStore) -> None:
        """A stale fence, a version that does not match, a ``make`` that raises: neither the
        record nor the task is written."""
        await store.update_task_state("t1", {})
        first = await store.acquire_claim("t1", "worker-a", 60)
        assert first is not None
        await store.release_claim("t1", first.token)
        second = await store.acquire_claim("t1", "worker-b", 60)
        assert second is not None
        before = await store.get_task_state("t1")
        assert before is not None

        def make() -> tuple[dict[str, Any], None]:
            return {"phase": "build"}, None

        with pytest.raises(StaleClaim):
            await store.put_made_record_and_task(
                "handoffs", "t1.build", make, "t1", {"current_phase": "x"}, fencing_token=1
            )
        with pytest.raises(VersionConflict):
            await store.put_made_record_and_task(
                "handoffs", "t1.build", make, "t1", {"current_phase": "x"}, before.version + 5
            )

        def failing() -> tuple[dict[str, Any], None]:
            raise OSError("the handoff file could not be written")

        with pytest.raises(OSError, match="could not be written"):
            await store.put_made_record_and_task(
                "handoffs", "t1.build", failing, "t1", {"current_phase": "x"}
            )
        assert await store.get_record("handoffs", "t1.build") is None
        after = await store.get_task_state("t1")
        assert after is not None and after.version == before.version
        assert after.current_phase is None
