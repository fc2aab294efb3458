"""The page's report as the store changes: only the tasks written are read again, and a session
whose status changed has every task read again after it (no ended run beside a running task)."""

from __future__ import annotations

from pathlib import Path

import anyio

from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.web.board import Board
from orchestrator.web.source import open_source


def test_an_ended_run_is_never_shown_beside_a_task_as_it_was(tmp_path: Path) -> None:
    """The run's last write (its session ended) heard in a batch before its last task's: the
    report read for it shows that task as it is, not as it was."""

    async def run() -> None:
        state = tmp_path / ".council" / "state"
        async with FileStateStore(state) as store:
            await store.create_session({}, [], session_id="s-1", listed=["a", "b"])
            await store.add_session_tasks("s-1", [{"task_id": "a"}, {"task_id": "b"}])
            await store.update_task_state("a", {"status": TaskStatus.DONE})
            await store.update_task_state("b", {"status": TaskStatus.RUNNING})
        async with open_source(None, state_dir=state) as source:
            first = await source.report()
            assert {t.task_id: str(t.status) for t in first.tasks} == {
                "a": "done",
                "b": "running",
            }
            await source.store.update_task_state("b", {"status": TaskStatus.DONE})
            await source.store.update_session("s-1", {"status": SessionStatus.COMPLETED})
            # The batch heard held the session's write alone: no task named as written.
            after = await source.report(changed=set())
            assert str(after.status) == "completed"
            assert {t.task_id: str(t.status) for t in after.tasks} == {"a": "done", "b": "done"}
            # While the session's status stays, a task is read again only when written.
            await source.store.update_task_state("a", {"status": TaskStatus.FAILED})
            kept = await source.report(changed=set())
            assert {t.task_id: str(t.status) for t in kept.tasks}["a"] == "done"
            again = await source.report(changed={"a"})
            assert {t.task_id: str(t.status) for t in again.tasks}["a"] == "failed"

    anyio.run(run)


def test_the_page_shows_each_pull_request_s_place_in_its_stack(tmp_path: Path) -> None:
    """``landing.pulls: stacked``: the page's pull requests say each one's place, the one
    below it and the one above it, as ``status --json`` does."""

    def pull(number: int) -> dict[str, object]:
        return {"number": number, "url": f"https://x/pull/{number}", "state": "open"}

    async def run() -> None:
        state = tmp_path / ".council" / "state"
        async with FileStateStore(state) as store:
            await store.create_session({}, [], session_id="s-1", listed=["a", "b"])
            await store.add_session_tasks("s-1", [{"task_id": "a"}, {"task_id": "b"}])
            review = TaskStatus.IN_REVIEW
            await store.update_task_state("a", {"status": review, "metadata": {"pull": pull(7)}})
            stacked = {"pull": pull(8), "stack": {"below": ["a"], "base": "council/a"}}
            await store.update_task_state("b", {"status": review, "metadata": stacked})
        async with open_source(None, state_dir=state) as source:
            shown = await Board(source).view()
            stacks = {p["task_id"]: p["stack"] for p in shown["pulls"]}
            assert stacks == {
                "a": {"place": 1, "below": [], "above": [{"task_id": "b", "number": 8}]},
                "b": {"place": 2, "below": [{"task_id": "a", "number": 7}], "above": []},
            }

    anyio.run(run)
