"""The scheduler on real repositories: capacity, dependencies, file ownership, priority.

Every run goes through the real store, worktrees, locks and merge queue; the workflows are
small real ones (``scheduler_helpers.Probe``) that edit and commit files in their worktree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config.run import RunConfig
from orchestrator.council import Council
from orchestrator.council import opening as council_module
from orchestrator.events import Event
from orchestrator.merge.queue import MergeQueue
from orchestrator.models import TaskStatus
from orchestrator.run.reports.report import RunReport
from orchestrator.state import FileStateStore
from orchestrator.workflow.task_run import TaskRun, WorkflowResult
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.scheduler_helpers import (
    Probe,
    edit_and_commit,
    failure,
    merged_tasks,
    new_repo,
    run_config,
    wait_or_cancel,
)
from tests.support.timing import patience
from tests.support.worktree_helpers import git


async def run(config: RunConfig, probe: Probe) -> RunReport:
    async with Council(config, workflow=probe) as council:
        return await council.run()


async def test_capacity_is_never_exceeded_globally_or_per_adapter(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": f"a{n}", "prompt": "p", "adapters": ["alpha"]} for n in range(3)
    ]
    tasks += [{"id": f"b{n}", "prompt": "p", "adapters": ["beta"]} for n in range(4)]
    config = run_config(repo, tasks, capacity={"sessions": 3, "per_adapter": {"alpha": 1}})
    probe = Probe(pause=0.2)

    report = await run(config, probe)

    assert report.exit_code == 0 and report.totals.done == 7
    assert probe.peak == 3  # capacity was used, never exceeded
    assert probe.peak_by_adapter["alpha"] == 1
    assert probe.peak_by_adapter["beta"] <= 3
    assert sorted(merged_tasks(repo)) == sorted(str(t["id"]) for t in tasks)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


async def test_a_dependent_starts_only_after_its_dependency_is_merged(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "app", "prompt": "p", "depends_on": ["lib"], "priority": 9},
        {"id": "lib", "prompt": "p"},
        {"id": "docs", "prompt": "p", "depends_on": ["app"]},
    ]
    seen: dict[str, str] = {}

    async def check_dependency(run: TaskRun, call: int) -> WorkflowResult:
        dependency = run.task.depends_on[0]
        state = await run.store.get_task_state(dependency)
        assert state is not None
        seen[run.task.id] = state.status
        # The worktree was forked after the dependency landed, so its work is here.
        assert (run.session.path / "out" / f"{dependency}.txt").exists()
        return await edit_and_commit(run, {f"out/{run.task.id}.txt": "x\n"})

    probe = Probe(behave={"app": check_dependency, "docs": check_dependency})
    report = await run(run_config(repo, tasks), probe)

    assert report.totals.done == 3
    assert seen == {"app": TaskStatus.DONE, "docs": TaskStatus.DONE}
    assert merged_tasks(repo) == ["lib", "app", "docs"]


async def test_a_failed_dependency_fails_its_dependents_instead_of_waiting(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "lib", "prompt": "p"},
        {"id": "app", "prompt": "p", "depends_on": ["lib"]},
    ]

    async def broken(run: TaskRun, call: int) -> WorkflowResult:
        return failure("no key", retryable=False, kind="auth_required")

    report = await run(run_config(repo, tasks), Probe(behave={"lib": broken}))

    assert report.exit_code == 1
    assert report.task("app").status == TaskStatus.FAILED
    assert report.task("app").error == "not started: dependency 'lib' ended failed"
    assert report.task("app").attempts == 0


async def test_two_tasks_declaring_one_file_never_run_at_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "first", "prompt": "p", "files": ["shared.txt"], "priority": 2},
        {"id": "second", "prompt": "p", "files": ["./shared.txt"], "priority": 1},
        {"id": "free", "prompt": "p"},
    ]

    async def edit_shared(run: TaskRun, call: int) -> WorkflowResult:
        text = (run.session.path / "shared.txt").read_text()
        owner = await run.locks.owner_of("shared.txt")
        assert owner is not None and owner.session == run.session.session_id
        await wait_or_cancel(run, 0.2)
        return await edit_and_commit(run, {"shared.txt": text + f"{run.task.id}\n"})

    probe = Probe(behave={"first": edit_shared, "second": edit_shared}, pause=0.3)
    report = await run(run_config(repo, tasks), probe)

    assert report.totals.done == 3
    pairs = {frozenset(pair) for pair in probe.overlaps}
    assert frozenset({"first", "second"}) not in pairs
    assert frozenset({"second", "free"}) in pairs or frozenset({"first", "free"}) in pairs
    # The second forked from a base that held the first's edit: both landed, no conflict.
    assert git(repo, "show", "main:shared.txt") == "one\ntwo\nfirst\nsecond"


async def test_priority_then_age_decides_the_order(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "low", "prompt": "p", "priority": 0},
        {"id": "high", "prompt": "p", "priority": 5},
        {"id": "mid-a", "prompt": "p", "priority": 1},
        {"id": "mid-b", "prompt": "p", "priority": 1},
    ]
    probe = Probe(pause=0.01)
    report = await run(run_config(repo, tasks, capacity={"sessions": 1}), probe)

    assert report.totals.done == 4
    assert [s.task_id for s in probe.starts] == ["high", "mid-a", "mid-b", "low"]
    assert probe.peak == 1


async def test_a_forecast_conflict_holds_the_later_merge_until_the_earlier_lands(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "early", "prompt": "p", "priority": 1},
        {"id": "late", "prompt": "p"},
    ]

    async def slow_edit(run: TaskRun, call: int) -> WorkflowResult:
        (run.session.path / "shared.txt").write_text("one\nearly\n")
        await run.worktrees.commit_in_worktree(run.session, "early edit")
        await wait_or_cancel(run, 0.4)  # still in flight when `late` is ready
        return await edit_and_commit(run, {"out/early.txt": "x\n"})

    async def quick_edit(run: TaskRun, call: int) -> WorkflowResult:
        await wait_or_cancel(run, 0.1)
        return await edit_and_commit(run, {"shared.txt": "one\nlate\n"})

    events: list[Event] = []
    probe = Probe(behave={"early": slow_edit, "late": quick_edit})
    async with Council(run_config(repo, tasks), workflow=probe) as council:
        council.subscribe(events.append)
        report = await council.run()

    forecast = [e for e in events if e.type == "merge.forecast_conflict"]
    assert [(e.data["task_id"], e.data["held_for"]) for e in forecast] == [("late", "early")]
    assert forecast[0].data["paths"] == ["shared.txt"]
    # Held, the later one did not land first: the earlier work is on the base. The later one's
    # merge then conflicted, and a resolve round built it again on the updated base: it lands,
    # and the branch that conflicted is kept.
    assert report.task("early").status == TaskStatus.DONE
    late = report.task("late")
    assert late.status == TaskStatus.DONE and probe.calls["late"] == 2
    rounds = [e for e in events if e.type == "merge.resolve_round"]
    assert [(e.data["task_id"], e.data["paths"]) for e in rounds] == [("late", ["shared.txt"])]
    kept = rounds[0].data["kept_branch"]
    assert git(repo, "show", f"{kept}:shared.txt").strip() == "one\nlate"
    assert late.branch is not None and late.branch != kept
    assert report.exit_code == 0


async def test_a_second_conflict_ends_the_task_in_conflict(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [{"id": "late", "prompt": "p"}]

    async def racing_edit(run: TaskRun, call: int) -> WorkflowResult:
        result = await edit_and_commit(run, {"shared.txt": f"one\nlate {call}\n"})
        # The user commits a change to the same line while this attempt was working.
        (repo / "shared.txt").write_text(f"one\nuser {call}\n")
        git(repo, "commit", "-qam", f"user edit {call}")
        return result

    events: list[Event] = []
    probe = Probe(behave={"late": racing_edit})
    async with Council(run_config(repo, tasks), workflow=probe) as council:
        council.subscribe(events.append)
        report = await council.run()

    late = report.task("late")
    assert probe.calls["late"] == 2
    assert late.status == TaskStatus.CONFLICT and late.conflicts == ["shared.txt"]
    assert [e.data["round"] for e in events if e.type == "merge.resolve_round"] == [1]
    assert late.branch is not None and git(repo, "rev-parse", "--verify", late.branch)
    assert report.exit_code == 1


async def test_a_task_an_earlier_run_merged_is_not_run_again(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [{"id": "once", "prompt": "p"}, {"id": "twice", "prompt": "p"}]

    async def edit(run: TaskRun, call: int) -> WorkflowResult:
        return await edit_and_commit(run, {f"{run.task.id}.txt": f"{call}\n"})

    first = Probe(behave={"once": edit, "twice": edit})
    async with Council(run_config(repo, tasks[:1]), workflow=first) as council:
        assert (await council.run()).exit_code == 0
    events: list[Event] = []
    second = Probe(behave={"once": edit, "twice": edit})
    async with Council(run_config(repo, tasks), workflow=second) as council:
        council.subscribe(events.append)
        report = await council.run()

    assert report.exit_code == 0 and second.calls == {"twice": 1}
    skipped = [e.data["task_id"] for e in events if e.type == "task.already_merged"]
    assert skipped == ["once"]
    assert report.task("once").merged_commit == git(repo, "rev-parse", "main~1").strip()
    log = git(repo, "log", "--first-parent", "--format=%B", "main")
    assert log.count("Council-Task: once\n") == 1


async def test_a_branch_that_landed_and_went_while_a_later_merge_looks_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `early` lands; its branch is deleted with its worktree while it still counts as in
    # flight. `late` (files unknown, so it must forecast against every earlier branch) is
    # ready exactly then: the branch it would look at is gone, which is no failure.
    gone = anyio.Event()
    looked = anyio.Event()

    class SlowToLeave(WorktreeManager):
        async def remove_session_worktree(self, session: Any, **options: Any) -> Any:
            removed = await super().remove_session_worktree(session, **options)
            gone.set()
            with anyio.move_on_after(patience(5)):
                await looked.wait()  # still in flight until `late` has looked
            return removed

    class Looking(MergeQueue):
        async def forecast_many(self, pairs: Any) -> Any:
            try:
                return await super().forecast_many(pairs)
            finally:
                looked.set()

    monkeypatch.setattr(council_module, "WorktreeManager", SlowToLeave)
    monkeypatch.setattr(council_module, "MergeQueue", Looking)
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "early", "prompt": "p", "priority": 1},
        {"id": "late", "prompt": "p"},
    ]

    async def when_early_is_gone(run: TaskRun, call: int) -> WorkflowResult:
        await gone.wait()
        result = await edit_and_commit(run, {"out/late.txt": "x\n"})
        result.files_changed = []  # as if unknown: forecast against every earlier branch
        return result

    probe = Probe(behave={"late": when_early_is_gone})
    report = await run(run_config(repo, tasks), probe)

    assert report.task("early").status == TaskStatus.DONE
    assert report.task("late").status == TaskStatus.DONE, report.task("late").error
    assert probe.calls["late"] == 1


async def test_a_task_is_written_merging_only_while_its_merge_waits(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [{"id": "first", "prompt": "p"}, {"id": "second", "prompt": "p"}]

    async def build(run: TaskRun, call: int) -> WorkflowResult:
        return await edit_and_commit(run, {f"out/{run.task.id}.txt": "x\n"})

    config = run_config(repo, tasks[:1])
    async with Council(config, workflow=Probe(behave={"first": build})) as council:
        report = await council.run()
        store = council.scheduler.services.store
        history = [await store.get_task_state("first"), *await store.task_history("first")]
    # Straight through: running, then done, never merging (one write less per task).
    assert report.task("first").status == TaskStatus.DONE
    assert TaskStatus.MERGING not in {state.status for state in history if state is not None}
    final = history[0]
    assert final is not None and final.current_phase is None

    # The user's checkout of the base has an uncommitted change: the merge waits, and the task
    # says so (``merging``) until the checkout is clean again.
    (repo / "README.md").write_text("edited by the user\n")
    config = run_config(repo, tasks[1:])
    reports: list[RunReport] = []
    async with (
        Council(config, workflow=Probe(behave={"second": build})) as council,
        anyio.create_task_group() as group,
    ):

        async def go() -> None:
            reports.append(await council.run())

        group.start_soon(go)
        async with FileStateStore(config.state_dir) as outside:
            with anyio.fail_after(patience(30)):
                while True:
                    state = await outside.get_task_state("second")
                    if state is not None and state.status == TaskStatus.MERGING:
                        break
                    await anyio.sleep(0.02)
        git(repo, "checkout", "--", "README.md")
    assert reports[0].task("second").status == TaskStatus.DONE
    assert merged_tasks(repo) == ["first", "second"]


async def test_a_landed_worktree_s_removal_failing_before_the_release_still_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The landing's release rides in the worktree removal's store call (release_first). A
    # removal that ends before that release was written (here it raises at once; in a run
    # it was cancelled waiting for the worktree's lock) leaves the claim to be released
    # after it, from the stage the attempt was releasing from: no illegal move.
    failed: list[str] = []

    class FailsOnce(WorktreeManager):
        async def remove_session_worktree(self, session: Any, **options: Any) -> Any:
            if not failed:
                failed.append(str(session))
                raise OSError("the disk went away for a moment")
            return await super().remove_session_worktree(session, **options)

    monkeypatch.setattr(council_module, "WorktreeManager", FailsOnce)
    repo = new_repo(tmp_path)
    report = await run(run_config(repo, [{"id": "once", "prompt": "p"}]), Probe())

    assert failed, "the removal was never asked for"
    assert report.task("once").status == TaskStatus.DONE, report.task("once").error
    log = git(repo, "log", "--first-parent", "--format=%B", "main")
    assert log.count("Council-Task: once\n") == 1
