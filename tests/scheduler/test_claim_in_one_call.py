"""An attempt reads its task and claims it in one store call (issue 51): the claim's updates
are made from the task as the store finds it under the claim's lock (one worker-thread call,
one transaction), with no read of its own first, and its workflow starts from the phase records
the claim found (no read either); a landing's release makes its metadata the same way; a retry
still counts its attempts."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from orchestrator.models import TaskStatus
from orchestrator.scheduler.attempts.runner import AttemptRunner
from orchestrator.scheduler.attempts.settler import Settler
from orchestrator.state import FileStateStore
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.task_run import TaskRun, WorkflowResult
from tests.support.scheduler_helpers import Probe, edit_and_commit, failure, new_repo, run_config

WATCHED: contextvars.ContextVar[str] = contextvars.ContextVar("watched", default="")


@dataclass
class Spy:
    reads: list[tuple[str, str]] = field(default_factory=list)  # (setup/load/settle, task)
    claims: list[tuple[str, bool]] = field(default_factory=list)  # (task, updates callable)
    loaded: list[bool] = field(default_factory=list)  # each load given its phases


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    seen = Spy()
    setup, load, settle = AttemptRunner._setup, PhaseBook.load, Settler.settle
    get, acquire = FileStateStore.get_task_state, FileStateStore.acquire_claim

    async def in_setup(self: AttemptRunner, attempt: Any) -> bool:
        token = WATCHED.set("setup")
        try:
            return await setup(self, attempt)
        finally:
            WATCHED.reset(token)

    async def in_settle(self: Settler, attempt: Any, result: Any) -> None:
        token = WATCHED.set("settle")
        try:
            await settle(self, attempt, result)
        finally:
            WATCHED.reset(token)

    async def in_load(self: PhaseBook, known: Any = None) -> None:
        seen.loaded.append(known is not None)
        token = WATCHED.set("load")
        try:
            await load(self, known)
        finally:
            WATCHED.reset(token)

    async def counted_get(self: FileStateStore, task_id: str) -> Any:
        if WATCHED.get():
            seen.reads.append((WATCHED.get(), task_id))
        return await get(self, task_id)

    async def counted_acquire(
        self: FileStateStore, task_id: str, holder: str, lease: float, updates: Any = None,
        **kw: Any,
    ) -> Any:  # fmt: skip
        if WATCHED.get() == "setup":
            seen.claims.append((task_id, callable(updates)))
        return await acquire(self, task_id, holder, lease, updates, **kw)

    monkeypatch.setattr(AttemptRunner, "_setup", in_setup)
    monkeypatch.setattr(PhaseBook, "load", in_load)
    monkeypatch.setattr(Settler, "settle", in_settle)
    monkeypatch.setattr(FileStateStore, "get_task_state", counted_get)
    monkeypatch.setattr(FileStateStore, "acquire_claim", counted_acquire)
    return seen


async def test_an_attempt_reads_and_claims_its_task_in_one_store_call(
    tmp_path: Path, spy: Spy, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries = {"flaky": 0}

    async def flaky(run: TaskRun, call: int) -> WorkflowResult:
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            return failure("try again", retryable=True)
        return await edit_and_commit(run, {"flaky.txt": "two\n"})

    async def plain(run: TaskRun, call: int) -> WorkflowResult:
        return await edit_and_commit(run, {"plain.txt": "one\n"})

    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [{"id": "plain", "prompt": "p"}, {"id": "flaky", "prompt": "p"}]
    probe = Probe(pause=0.01, behave={"plain": plain, "flaky": flaky})
    async with Council(run_config(repo, tasks), workflow=probe) as council:
        report = await council.run()
    monkeypatch.undo()
    async with FileStateStore.for_repo(repo) as store:
        state = await store.get_task_state("flaky")

    assert report.task("plain").status == TaskStatus.DONE
    assert report.task("flaky").status == TaskStatus.DONE
    assert [r for r in spy.reads if r[0] == "setup"] == []  # no read before the claim
    assert sorted(spy.claims) == [("flaky", True), ("flaky", True), ("plain", True)]
    assert report.task("flaky").attempts == 2
    assert state is not None and state.attempt == 2  # counted from the task as found
    assert TaskMeta.read(state.metadata).retry.failures == 1  # the first try's, kept


async def test_a_workflow_starts_from_the_phases_its_claim_found(tmp_path: Path, spy: Spy) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": f"t{n}", "prompt": f"WRITE f{n}.txt written by task {n}"} for n in range(2)
    ]
    adapters = {"alpha": {"type": "scripted", "options": {"delay": 0}}}
    async with Council(run_config(repo, tasks, adapters=adapters)) as council:
        report = await council.run()
    assert [report.task(f"t{n}").status for n in range(2)] == [TaskStatus.DONE] * 2
    assert spy.loaded == [True, True]  # each workflow given the phases its claim found
    assert spy.reads == []  # and none read again, nor by the landing's release
    assert (repo / "f0.txt").exists() and (repo / "f1.txt").exists()  # the work landed
