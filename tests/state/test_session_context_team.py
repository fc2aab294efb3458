"""The context layer across workstations: a task's prompt on one workstation names the files a
task owns on another, through the team's store (PostgreSQL, real ``council run`` processes)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.models import TaskStatus
from orchestrator.state.context import ContextManager, SessionContext
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.workflow.handoffs.busy_files import LEAD
from tests.support.team_helpers import Team
from tests.support.timing import patience
from tests.support.workflow_helpers import logged_prompts

pytestmark = pytest.mark.postgres


async def contexts_in(dsn: str, root: Path) -> list[SessionContext]:
    async with await PostgresStateStore.connect(dsn) as store:
        return await ContextManager(store, root).all_contexts()


async def landed(dsn: str, task_id: str) -> bool:
    async with await PostgresStateStore.connect(dsn) as store:
        state = await store.get_task_state(task_id)
    return state is not None and state.status == TaskStatus.DONE


async def test_a_prompt_names_files_another_workstation_owns(pg_dsn: str, tmp_path: Path) -> None:
    team = Team(tmp_path, pg_dsn)
    gates = tmp_path / "gates"  # the sandbox lets the CLIs read it (``readable``)
    gates.mkdir()
    owner_go = gates / "owner-go"
    owner = {
        "id": "owner",
        "prompt": "Write owned.txt.",
        "files": ["owned.txt"],
        "priority": 10,
        "metadata": {"phase_instructions": {"build": f"WAIT_FOR {owner_go} 60\nWRITE owned.txt a"}},
    }
    watcher = {
        "id": "watcher",
        "prompt": "Write watched.txt.",
        "files": ["watched.txt"],
        "metadata": {"phase_instructions": {"build": "WRITE watched.txt b"}},
    }
    for name in ("a", "b"):
        team.workstation(name, [owner, watcher], sessions=1, readable=gates)
    try:
        team.start("a")  # one session: it takes the owner first and holds it at the gate
        with anyio.fail_after(patience(60)):
            while not [c for c in await contexts_in(pg_dsn, tmp_path) if c.task == "owner"]:
                await anyio.sleep(0.05)
        team.start("b")  # the watcher can only run here, while the owner runs on a
        with anyio.fail_after(patience(60)):
            while not await landed(pg_dsn, "watcher"):
                await anyio.sleep(0.05)
        owner_go.touch()
        results = {name: team.finish(name, timeout=120) for name in ("a", "b")}
    finally:
        team.stop_all()
    for name, (code, _report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
    assert sorted(team.landed_tasks()) == ["owner", "watcher"]
    (prompt,) = logged_prompts(tmp_path / "b" / ".council" / "logs", "watcher", "build")
    assert f"{LEAD}\n- owned.txt (task owner)\n" in prompt
    assert await contexts_in(pg_dsn, tmp_path) == []  # both landed: their contexts went
