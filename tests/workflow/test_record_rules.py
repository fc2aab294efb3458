"""Record rules beyond the contract: the workflow's own (phase order, handoff digests), on
every run's store, and a plugin's rule (``register_record_rules``) refusing a run's write."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from orchestrator.errors import PluginError, RecordRejected
from orchestrator.models import KeyedRecord, PhaseStatus, TaskStatus, utcnow
from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.host import load_plugins
from orchestrator.plugins.record_rule import RecordRule
from orchestrator.state import FileStateStore
from orchestrator.workflow.handoffs.document import (
    NAMESPACE,
    Handoff,
    handoff_key,
    sha256_text,
    store_handoff,
)
from orchestrator.workflow.record_rules import HANDOFF_DIGESTS, PHASE_ORDER, workflow_rules
from tests.support.scheduler_helpers import new_repo, run_config


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    async with FileStateStore.for_repo(tmp_path) as store:
        for rule in workflow_rules():
            store.validators.add(rule)
        yield store


def phase(name: str, status: PhaseStatus, **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": status, **fields}


async def test_two_phases_of_a_task_never_run_at_once(store: FileStateStore) -> None:
    running = phase("plan", PhaseStatus.RUNNING, started_at=utcnow())
    await store.update_task_state("t1", {"phases": {"plan": running}})
    both = {"plan": running, "build": phase("build", PhaseStatus.RUNNING)}
    with pytest.raises(RecordRejected) as refused:
        await store.update_task_state("t1", {"phases": both})
    assert refused.value.rule == PHASE_ORDER.name
    assert "phases plan, build would run at once" in str(refused.value)
    done = phase("plan", PhaseStatus.COMPLETED, started_at=utcnow(), finished_at=utcnow())
    await store.update_task_state("t1", {"phases": {"plan": done, "build": both["build"]}})


@pytest.mark.parametrize(
    ("phases", "problem"),
    [
        ({"plan": phase("build", PhaseStatus.PENDING)}, "phase 'build' is filed under 'plan'"),
        (
            {
                "plan": phase(
                    "plan",
                    PhaseStatus.COMPLETED,
                    started_at=utcnow(),
                    finished_at=utcnow() - timedelta(minutes=1),
                )
            },
            "phase 'plan' would end",
        ),
    ],
)
async def test_a_phase_record_must_say_what_happened(
    store: FileStateStore, phases: dict[str, Any], problem: str
) -> None:
    with pytest.raises(RecordRejected, match=problem):
        await store.update_task_state("t1", {"phases": phases})
    assert await store.get_task_state("t1") is None


def handoff(**fields: Any) -> Handoff:
    summary = "built it"
    base = {"task": "t1", "phase": "build", "adapter": "alice", "branch": "council/t1/1"}
    return Handoff(**{**base, "summary": summary, "sha256": {"summary": sha256_text(summary)}})


async def test_a_handoff_is_stored_only_whole_and_under_its_own_key(
    store: FileStateStore,
) -> None:
    good = handoff()
    await store_handoff(store, good)  # what the workflow writes passes
    tampered = {**good.model_dump(mode="json"), "summary": "something else"}
    with pytest.raises(RecordRejected) as refused:
        await store.put_record(NAMESPACE, handoff_key("t1", "build"), tampered)
    assert refused.value.rule == HANDOFF_DIGESTS.name
    assert "sha256.summary does not match the summary" in str(refused.value)
    with pytest.raises(RecordRejected, match=r"belongs under 't1\.build'"):
        await store.put_record(NAMESPACE, handoff_key("t2", "build"), good.model_dump(mode="json"))
    record = await store.get_record(NAMESPACE, handoff_key("t1", "build"))
    assert record is not None and record.data["summary"] == "built it"


class NoTodoInHandoffs:
    """A plugin: no handoff whose CLI said it left a TODO may be stored (a house rule)."""

    @staticmethod
    def check(kind: str, key: str, before: Any, after: Any) -> str | None:
        said = [after.data.get("summary"), *after.data.get("messages", [])] if after else []
        if isinstance(after, KeyedRecord) and any("TODO" in str(text) for text in said):
            return "a handoff may not leave a TODO"
        return None

    @hookimpl
    def register_record_rules(self, register: Any) -> None:
        register(RecordRule("team.no-todo", self.check, frozenset({"records/handoffs"})))


async def test_a_plugins_rule_holds_for_every_write_of_a_run(tmp_path: Path) -> None:
    host = load_plugins(extra=[NoTodoInHandoffs()], entry_points=(), environ={})
    assert [r.name for r in host.record_rules] == ["team.no-todo"]
    repo = new_repo(tmp_path)
    said = {"phase_instructions": {"build": "WRITE t1.txt t1\nSAY Done, TODO: tests"}}
    config = run_config(repo, [{"id": "t1", "prompt": "p", "metadata": said}])
    async with Council(config, plugins=host) as council:
        report = await council.run()
    task = report.task("t1")
    assert task.status == TaskStatus.FAILED, task
    assert "rule 'team.no-todo' refused it: a handoff may not leave a TODO" in (task.error or "")
    store = FileStateStore.for_repo(repo)
    assert await store.get_record(NAMESPACE, handoff_key("t1", "build")) is None


def test_a_plugin_registering_something_else_or_a_taken_name_fails_the_load() -> None:
    class Wrong:
        @hookimpl
        def register_record_rules(self, register: Any) -> None:
            register(lambda *a: None)

    class Twice:
        @hookimpl
        def register_record_rules(self, register: Any) -> None:
            register(HANDOFF_DIGESTS)
            register(HANDOFF_DIGESTS)

    with pytest.raises(PluginError, match="which is not a RecordRule"):
        load_plugins(builtins=(), extra=[Wrong()], entry_points=(), environ={})
    with pytest.raises(PluginError, match="already registered by"):
        load_plugins(builtins=(), extra=[Twice()], entry_points=(), environ={})
