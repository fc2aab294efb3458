"""Records carried in the record-and-task write (``put_made_record_and_task_carrying``,
``state.carried``): each made from the record as found and written after the call's own, in
order; one whose ``make`` gives None left alone; a refused call (the task's fence, a ``make``
that raises, a carried ``make`` that raises) writes none of them. A mixin of
``StateStoreContract``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from orchestrator.errors import StaleClaim
from orchestrator.models import KeyedRecord
from orchestrator.state.carried import CarriedPut
from orchestrator.state.protocol import StateStore

__all__ = ["CarriedContract"]


def _handoff() -> tuple[dict[str, Any], str]:
    return {"phase": "build"}, "file written"


def _added(path: str) -> CarriedPut:
    """The session's context with ``path`` added to what it found (a compare-and-set)."""

    def make(current: KeyedRecord | None) -> Mapping[str, Any]:
        files = list(current.data.get("files", [])) if current is not None else []
        return {"files": sorted({*files, path})}

    return CarriedPut("session-context", "s1", make, durable=False)


class CarriedContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_carried_records_are_written_after_the_record_and_task(
        self, store: StateStore
    ) -> None:
        await store.update_task_state("t1", {})
        claim = await store.acquire_claim("t1", "worker-a", 60)
        assert claim is not None
        await store.put_record("session-context", "s1", {"files": ["a.py"]})
        seen: list[KeyedRecord | None] = []

        def untouched(current: KeyedRecord | None) -> None:
            seen.append(current)
            return None

        record, rest, task, written = await store.put_made_record_and_task_carrying(
            "handoffs",
            "t1.build",
            _handoff,
            "t1",
            {"current_phase": "build"},
            fencing_token=claim.token,
            carried=[
                _added("b.py"),
                CarriedPut("radar-sessions", "s1", untouched),
                CarriedPut("radar-sessions", "s2", lambda _: {"tip": "c1"}, ttl=60),
            ],
        )
        assert rest == "file written" and record.data == {"phase": "build"}
        assert task.current_phase == "build"
        context, nothing, sighting = written
        assert nothing is None and seen == [None]
        assert context is not None and context.version == 2
        assert context.data == {"files": ["a.py", "b.py"]}  # merged into what it found
        assert sighting is not None and sighting.expires_at is not None
        stored = await store.get_record("session-context", "s1")
        assert stored is not None and stored.data == {"files": ["a.py", "b.py"]}
        assert await store.get_record("radar-sessions", "s1") is None
        kept = await store.get_record("radar-sessions", "s2")
        assert kept is not None and kept.data == {"tip": "c1"}

    async def test_a_refused_call_writes_no_carried_record(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        claim = await store.acquire_claim("t1", "worker-a", 60)
        assert claim is not None
        with pytest.raises(StaleClaim):
            await store.put_made_record_and_task_carrying(
                "handoffs",
                "t1.build",
                _handoff,
                "t1",
                {"current_phase": "x"},
                fencing_token=claim.token + 7,
                carried=[_added("a.py")],
            )
        assert await store.get_record("session-context", "s1") is None
        assert await store.get_record("handoffs", "t1.build") is None
        with pytest.raises(ValueError, match="twice"):
            await store.put_made_record_and_task_carrying(
                "handoffs", "t1.build", _handoff, "t1", {}, carried=[_added("a"), _added("b")]
            )
        assert await store.get_record("session-context", "s1") is None
