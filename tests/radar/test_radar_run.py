"""The collision radar in a real run (the scripted CLI, real worktrees): two tasks rewriting
the same function collide at their build's commit; each review's prompt is told who overlaps
it, where and what they changed; the board and the status report mark both tasks; with
``radar: sequence`` a task submitted then, declaring that file, waits with the collision named
as its reason, and starts once one side landed and the collision resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.council import Council
from orchestrator.events import Event
from orchestrator.models import TaskStatus
from orchestrator.radar.records import Collision, collisions
from orchestrator.radar.warning import HEADING
from orchestrator.run.reports.report import RunReport
from orchestrator.run.reports.session_report import session_report
from orchestrator.state.protocol import StateStore
from tests.support.radar_helpers import BASE_MODULE
from tests.support.scheduler_helpers import run_config
from tests.support.timing import patience
from tests.support.workflow_helpers import logged_prompts
from tests.support.worktree_helpers import git, make_repo


def rewrite(old: str, new: str) -> str:
    """A scripted-cli line writing the base module with ``old`` replaced by ``new``."""
    return f"WRITE src/mod.py <<EOF\n{BASE_MODULE.replace(old, new)}EOF"


def gated_task(task_id: str, build: str, gate: Path) -> dict[str, Any]:
    return {
        "id": task_id,
        "prompt": "Change alpha.",
        "phases": ["build", "review"],
        "metadata": {
            "phase_instructions": {
                "build": build,
                "review": f"WAIT_FOR {gate} 60\nSAY VERDICT: approve",
            }
        },
    }


async def live_collision(store: StateStore, severity: str) -> Collision:
    """The first live collision graded ``severity`` (the timer may see a pair first by its
    uncommitted hunks, before the phase commits make it a conflict)."""
    with anyio.fail_after(patience(30)):
        while True:
            found = [c for c in await collisions(store) if c.severity == severity]
            if found:
                return found[0]
            await anyio.sleep(0.05)


async def test_a_collision_warned_marked_held_for_and_resolved(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"src/mod.py": BASE_MODULE, "README.md": "hello\n"})
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    gate = tmp_path / "reviews-go"
    config = run_config(
        repo,
        [
            gated_task("task-a", rewrite("y = x + 1", "y = x + 10"), gate),
            gated_task("task-b", rewrite("y = x + 1", "y = x + 20"), gate),
        ],
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
        workflow={"phases": [{"name": "build"}, {"name": "review"}]},
        sandbox={"read": [str(tmp_path)]},  # the reviews wait for the test's gate
        radar={"mode": "sequence", "interval": 0.2},
    )
    said: list[Event] = []
    reports: list[RunReport] = []
    async with Council(config) as council:
        store = council.scheduler.services.store
        log_dir = council.scheduler.services.log_dir
        store.subscribe(said.append)

        async def run() -> None:
            reports.append(await council.run())

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            try:
                found = await live_collision(store, "conflict")
                assert found.tasks == ("task-a", "task-b") or found.tasks == ("task-b", "task-a")
                assert found.paths == ["src/mod.py"]
                assert found.severity == "conflict" and found.conflict_paths == ["src/mod.py"]
                # the board marks both tasks (its copy of the records is read each radar
                # interval: it may show the grade before this one for a moment)
                with anyio.fail_after(patience(30)):
                    while True:
                        marks = {line.task_id: line.collision for line in council.board()}
                        if all(str(m).endswith("(conflict)") for m in marks.values()):
                            break
                        await anyio.sleep(0.05)
                assert marks["task-a"] == "collides with task-b on src/mod.py (conflict)"
                assert marks["task-b"] == "collides with task-a on src/mod.py (conflict)"
                # status marks them too, in its report (the --json of `council status`)
                session = await store.get_session(council.scheduler.session_id or "")
                assert session is not None
                report = await session_report(store, session)
                assert report.task("task-a").collision == marks["task-a"]
                (shown,) = report.collisions
                assert sorted(shown.tasks) == ["task-a", "task-b"]
                assert shown.severity == "conflict" and shown.paths == ["src/mod.py"]
                # radar: sequence holds a task declaring that file while the collision lives
                council.submit(
                    {
                        "id": "task-c",
                        "prompt": "Change beta.",
                        "files": ["src/mod.py"],
                        "metadata": {
                            "phase_instructions": {"build": rewrite("y = x * 2", "y = x * 3")}
                        },
                    }
                )
                reason = "waits for collision between task-a and task-b on src/mod.py"
                with anyio.fail_after(patience(30)):
                    while True:
                        state = await store.get_task_state("task-c")
                        if state is not None and state.metadata.get("radar_hold"):
                            break
                        await anyio.sleep(0.05)
                assert state.status == TaskStatus.QUEUED
                session = await store.get_session(council.scheduler.session_id or "")
                assert session is not None
                report = await session_report(store, session)
                assert report.task("task-c").waiting == reason
            finally:
                gate.touch()
        assert await collisions(store) == []  # every session ended: nothing left
    (report,) = reports
    assert report.task("task-c").status == TaskStatus.DONE
    assert report.task("task-a").status == TaskStatus.DONE
    kinds = [e.type for e in said if e.type.startswith("radar.")]
    assert kinds.count("radar.collision") >= 1 and "radar.resolved" in kinds
    resolved = next(e for e in said if e.type == "radar.resolved")
    assert resolved.data["paths"] == ["src/mod.py"]
    assert {resolved.data["task_id"], resolved.data["other_task_id"]} == {"task-a", "task-b"}
    # The review after the second build's commit (the first review may start before the
    # other build committed) is told who overlaps it, where, and what the other changed.
    told = 0
    for mine, other, theirs in (("task-a", "task-b", "20"), ("task-b", "task-a", "10")):
        review = logged_prompts(log_dir, mine, "review")[0]
        if HEADING in review:
            told += 1
            assert f"task {other} changes src/mod.py" in review
            assert ": the same lines" in review  # graded hunks, or conflict once both committed
            assert "src/mod.py: your line 2, their line 2" in review
            assert f"+    y = x + {theirs}" in review
    assert told >= 1


async def test_radar_off_looks_at_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"src/mod.py": BASE_MODULE, "README.md": "hello\n"})
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    gate = tmp_path / "reviews-go"
    gate.touch()  # nothing waits
    config = run_config(
        repo,
        [
            gated_task("task-a", rewrite("y = x + 1", "y = x + 10"), gate),
            gated_task("task-b", rewrite("y = x + 1", "y = x + 20"), gate),
        ],
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
        workflow={"phases": [{"name": "build"}, {"name": "review"}]},
        sandbox={"read": [str(tmp_path)]},
        radar="off",
    )
    said: list[Event] = []
    async with Council(config) as council:
        store = council.scheduler.services.store
        log_dir = council.scheduler.services.log_dir
        store.subscribe(said.append)
        report = await council.run()
        assert await store.list_records("radar-sessions") == []
        assert await collisions(store) == []
    assert report.task("task-a").status == TaskStatus.DONE
    assert not [e for e in said if e.type.startswith("radar.")]
    for task_id in ("task-a", "task-b"):
        assert all(HEADING not in p for p in logged_prompts(log_dir, task_id, "review"))


async def test_alone_the_collisions_are_read_back_only_after_a_look_that_changed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alone, nobody but the run's radar writes collision records: they are never read back
    after a look, which read them itself (``Radar.known``; issue 51: no store read a phase)."""
    from orchestrator.scheduler import radar_watch

    reads: list[int] = []
    real = radar_watch.collisions

    async def counted(store: StateStore) -> list[Collision]:
        found = await real(store)
        reads.append(len(found))
        return found

    monkeypatch.setattr(radar_watch, "collisions", counted)
    repo = make_repo(tmp_path / "repo", {"src/mod.py": BASE_MODULE, "README.md": "hello\n"})
    tasks = [
        {"id": f"t{n}", "prompt": f"WRITE f{n}.txt apart {n}", "phases": ["build"]}
        for n in range(3)
    ]
    config = run_config(
        repo, tasks, adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    async with Council(config) as council:
        report = await council.run()
    assert [t.status for t in report.tasks] == [TaskStatus.DONE] * 3
    assert reads == []  # the first look's own read stood for it; none changed a collision
