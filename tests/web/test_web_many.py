"""A run of 1,024 tasks on the page: the server sends one window of rows at a time, filters and
searches on its side, and the page pages through them (``council web`` without FILE, in the
repository whose run it shows)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.protocol import TaskInit
from tests.support.browser_tier import WebProcess, artefact, chromium
from tests.support.workflow_helpers import make_repo

pytestmark = pytest.mark.browser

TASKS = 1024


async def _make_run(repo: Path) -> None:
    async with FileStateStore.for_repo(repo) as store:
        ids = [f"t{n:05d}" for n in range(TASKS)]
        inits: list[TaskInit] = [{"task_id": task_id} for task_id in ids]
        await store.create_session({}, [], session_id="s-many", listed=ids)
        await store.add_session_tasks("s-many", inits)
        for task_id in ids[::100]:
            await store.update_task_state(task_id, {"status": TaskStatus.FAILED})


def test_a_run_of_1024_tasks_is_paged_filtered_and_searched_on_the_server(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    anyio.run(_make_run, repo)
    with WebProcess(None, cwd=repo) as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(web.url)
        page.wait_for_selector("tr[data-task=t00000]")
        assert page.text_content("#matched") == "1–200 of 1024"
        assert page.locator("tr[data-task]").count() == 200  # one window, not the run
        page.click("#next")
        page.wait_for_selector("tr[data-task=t00200]")
        assert page.text_content("#matched") == "201–400 of 1024"
        page.select_option("#status-filter", "failed")
        page.wait_for_function(
            "() => document.getElementById('matched').textContent === '1–11 of 11'"
        )
        page.fill("#search", "T0100")  # the failed t01000 alone, whatever the case
        page.wait_for_function("() => document.querySelectorAll('tr[data-task]').length === 1")
        assert page.locator("tr[data-task=t01000]").count() == 1
        page.screenshot(path=artefact(tmp_path, "many-tasks-searched.png"), full_page=True)
