"""A goal plan accepted from the page, in a real headless Chromium (the ``browser`` tier):
``council web`` serves the plan ``council run -g GOAL --approve`` holds before the run exists,
one task is removed and another's prompt edited on the page, Accept runs exactly those tasks,
and the same tab turns into the run's page once its session is on record; Refuse runs
nothing. Screenshots kept as the other browser tests keep them (``browser_tier.artefact``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.test_cli_goal import GOAL, TASKS
from tests.support.browser_tier import WebProcess, artefact, chromium
from tests.support.cli_process_helpers import council
from tests.support.scheduler_helpers import merged_tasks
from tests.support.timing import patience
from tests.web.test_web_plan import held_run

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

EDITED = "Write the greeting note <b>as edited</b> on the page."


def test_a_goal_plan_accepted_from_the_page_runs_the_tasks_left(tmp_path: Path) -> None:
    """``council web FILE`` started while ``council run -g GOAL --approve`` waits: the plan
    alone, then the run's page in the same tab once the accepted run is recorded."""
    with held_run(tmp_path) as run, WebProcess(run.config) as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(web.url)
        page.wait_for_selector("#plan-tasks li[data-plan-task]")
        shown = page.eval_on_selector_all(
            "#plan-tasks li", "rows => rows.map(r => r.dataset.planTask)"
        )
        assert shown == TASKS
        assert page.text_content("#plan-goal") == GOAL
        page.wait_for_selector("main", state="hidden")  # no run yet: the plan alone
        assert not _rows(page)
        page.screenshot(path=artefact(tmp_path, "plan-held.png"), full_page=True)

        page.click(f"li[data-plan-task='{TASKS[1]}'] button[data-action=remove]")
        page.fill(f"li[data-plan-task='{TASKS[0]}'] textarea", EDITED)
        assert page.query_selector("#plan-tasks b") is None  # text, never markup
        page.screenshot(path=artefact(tmp_path, "plan-edited.png"), full_page=True)
        page.click("#plan-accept")
        page.wait_for_function(
            "() => document.getElementById('said').textContent.startsWith('accepted the goal plan')"
        )
        # The run's page, on the same server and token: the tab reloads into it.
        page.wait_for_selector("body[data-run-status=completed]", timeout=patience(25) * 1000)
        assert _rows(page) == {TASKS[0]: "done"}
        assert page.is_hidden("#plan-box")
        page.screenshot(path=artefact(tmp_path, "plan-accepted-run.png"), full_page=True)
        out, err = run.process.communicate(timeout=patience(60))
    assert run.process.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert [(t["task_id"], t["status"]) for t in report["tasks"]] == [(TASKS[0], "done")]
    assert merged_tasks(tmp_path / "repo") == [TASKS[0]]
    saved = run.saved.read_text()
    assert "<b>as edited</b>" in saved and TASKS[1] not in saved


def test_a_goal_plan_refused_from_the_page_runs_nothing(tmp_path: Path) -> None:
    with held_run(tmp_path) as run, WebProcess(run.saved) as web, chromium() as browser:
        page = browser.new_page()
        page.goto(web.url)
        page.wait_for_selector("#plan-tasks li[data-plan-task]")
        page.click("#plan-refuse")
        page.wait_for_selector("body[data-plan=refused]")
        assert "nothing runs" in (page.text_content("#said") or "")
        assert page.is_hidden("#plan-accept")
        page.screenshot(path=artefact(tmp_path, "plan-refused.png"), full_page=True)
        out, err = run.process.communicate(timeout=patience(60))
    assert run.process.returncode == 2, out + err
    assert not (tmp_path / "repo" / ".council" / "state").exists()


def test_a_plan_accepted_from_another_shell_takes_the_open_page_to_the_run(
    tmp_path: Path,
) -> None:
    with held_run(tmp_path) as run, WebProcess(run.config) as web, chromium() as browser:
        page = browser.new_page()
        page.goto(web.url)
        page.wait_for_selector("main", state="hidden")
        accepted = council("approve", run.config, cwd=tmp_path)
        assert accepted.returncode == 0, accepted.stderr
        page.wait_for_selector("body[data-run-status=completed]", timeout=patience(25) * 1000)
        assert _rows(page) == {task: "done" for task in TASKS}
        out, err = run.process.communicate(timeout=patience(60))
    assert run.process.returncode == 0, out + err


def _rows(page: Page) -> dict[str, str]:
    found: dict[str, str] = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('tr[data-task]')]"
        ".map((row) => [row.dataset.task, row.dataset.status]))"
    )
    return found
