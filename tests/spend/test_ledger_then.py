"""A call's ledger record opened and closed with blocking work of its caller's in the write's
own call (``Ledger.opened_then``, ``closed_then``; issue 51), on both backends: the work runs
once, before the write, its answer given back; work that raises writes nothing, so a call whose
look before its CLI failed has no record, and one whose close failed stays open."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from orchestrator.spend.ledger import NAMESPACE, Ledger
from orchestrator.state.protocol import StateStore
from tests.spend.test_spend import backend, entry, store
from tests.support.hops import count_hops

__all__ = ["backend", "store"]


async def test_the_work_rides_in_the_records_call_and_its_answer_comes_back(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(store)
    await ledger.opened(entry(ended_at=None))  # the namespace there, as in a run
    opened = entry(ended_at=None, cost_usd=None, cost_source="none")
    done: list[str] = []

    def before() -> str:
        done.append("before")
        return "looked"

    hopped = count_hops(monkeypatch)
    assert await ledger.opened_then(opened, before) == "looked"
    opening_hops = len(hopped)
    closed = opened.model_copy(update={"ended_at": opened.started_at, "cost_usd": 0.1})

    def after() -> int:
        done.append("after")
        return 7

    assert await ledger.closed_then(closed, after) == 7
    assert done == ["before", "after"]  # each once
    assert opening_hops <= 1 and len(hopped) <= 2  # no call of their own
    assert closed in await ledger.entries("s1")


async def test_work_that_raises_writes_nothing(store: StateStore) -> None:
    ledger = Ledger(store)
    opened = entry(ended_at=None, cost_usd=None, cost_source="none")

    def refused() -> Any:
        raise OSError("the look before the CLI failed")

    with pytest.raises(OSError, match="look before"):
        await ledger.opened_then(opened, refused)
    assert await store.get_record(NAMESPACE, opened.call) is None  # no record, no CLI
    await ledger.opened(opened)
    closed = opened.model_copy(update={"ended_at": opened.started_at, "cost_usd": 0.1})
    with pytest.raises(OSError, match="look before"):
        await ledger.closed_then(closed, refused)
    (left,) = await ledger.entries("s1")
    assert left.ended_at is None  # still open: counted at its forecast, for ``settle``


async def test_the_work_runs_off_the_event_loop(store: StateStore) -> None:
    ledger = Ledger(store)
    threads: list[int] = []
    await ledger.opened_then(
        entry(ended_at=None, cost_usd=None, cost_source="none"),
        lambda: threads.append(threading.get_ident()),
    )
    assert threads and threads != [threading.get_ident()]  # a worker's, not the loop's


async def test_a_close_that_failed_can_be_made_again(store: StateStore) -> None:
    """A close whose write did not happen (its work raised, or the store refused it) keeps the
    open record's version: the next close of the call in this process writes over it, where
    it was refused as a second open and the call stayed open until ``settle``."""
    ledger = Ledger(store)
    opened = entry(ended_at=None, cost_usd=None, cost_source="none")
    await ledger.opened(opened)
    closed = opened.model_copy(update={"ended_at": opened.started_at, "cost_usd": 0.1})

    def refused() -> Any:
        raise OSError("the look after the CLI failed")

    with pytest.raises(OSError, match="look after"):
        await ledger.closed_then(closed, refused)
    await ledger.closed(closed)
    (left,) = await ledger.entries("s1")
    assert left.ended_at is not None and left.cost_usd == 0.1
