"""``council web`` in a real headless Chromium (the ``browser`` tier): a run watched live to
its end, a task cancelled and a budget raised from the page, the token refused when missing.
Each test keeps screenshots of what it saw (``browser_tier.artefact``)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.config.budgets import Limit
from orchestrator.run.demo_config import write_demo_config
from tests.support.browser_tier import WebProcess, artefact, chromium
from tests.support.cli_process_helpers import council, reap, spawn, wait_for
from tests.support.council_process import task, write_config
from tests.support.timing import patience
from tests.support.web_helpers import gated_run
from tests.support.workflow_helpers import make_repo

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def _rows(page: Page) -> dict[str, str]:
    found: dict[str, str] = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('tr[data-task]')]"
        ".map((row) => [row.dataset.task, row.dataset.status]))"
    )
    return found


def _open(page: Page, web: WebProcess) -> None:
    page.goto(web.url)
    page.wait_for_selector("tr[data-task]", timeout=patience(20) * 1000)
    assert web.token not in page.url  # exchanged for the cookie
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads


def test_the_demos_run_is_watched_live_to_its_end(tmp_path: Path) -> None:
    """The demo (its personas a little slower, so the page is open before most tasks end):
    tasks change state on the page without a reload until the run is completed."""
    config = write_demo_config(tmp_path / "demo")
    text = config.read_text()
    for persona in ("careful", "quick", "reviewer"):
        text = text.replace(f"persona: {persona}\n", f"persona: {persona}\n      delay: 0.25\n")
    config.write_text(text)
    run = spawn("run", config, "--json", cwd=tmp_path)
    sessions = tmp_path / "demo" / "repo" / ".council" / "state" / "sessions"
    try:
        wait_for(lambda: sessions.is_dir() and any(sessions.iterdir()), "the demo's session")
        with WebProcess(config) as web, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            _open(page, web)
            seen: dict[str, list[str]] = {}
            deadline = time.monotonic() + patience(25)
            shot = False
            while page.get_attribute("body", "data-run-status") != "completed":
                assert time.monotonic() < deadline, f"the page never showed the end: {seen}"
                for task_id, status in _rows(page).items():
                    if seen.setdefault(task_id, [status])[-1] != status:
                        seen[task_id].append(status)
                if not shot and "running" in _rows(page).values():
                    page.screenshot(path=artefact(tmp_path, "run-live.png"), full_page=True)
                    shot = True
                page.wait_for_timeout(100)
            rows = _rows(page)
            for task_id, status in rows.items():
                if seen.setdefault(task_id, [status])[-1] != status:
                    seen[task_id].append(status)
            page.screenshot(path=artefact(tmp_path, "run-completed.png"), full_page=True)
            assert page.evaluate("() => window.sameDocument") is True
            today = datetime.now(UTC).date().isoformat()  # the ledger's days are UTC
            page.wait_for_selector(f"#chart .chart-row[data-key='{today}']")
            page.select_option("#cost-by", "adapter")  # `council cost --by adapter`
            page.wait_for_selector("#chart .chart-row[data-key=carol]")
            shown = page.eval_on_selector_all(
                "#chart .chart-row", "rows => rows.map(r => r.dataset.key)"
            )
            assert sorted(shown) == ["alice", "bob", "carol"], shown
        assert len(rows) == 7 and set(rows.values()) == {"done"}, rows
        changed = [task_id for task_id, statuses in seen.items() if len(statuses) > 1]
        assert changed, f"no task changed on the page: {seen}"
        assert all(seen[task_id][-1] == "done" for task_id in changed)
        _, err = run.communicate(timeout=patience(60))
        assert run.returncode == 0, err[-2000:]
    finally:
        reap(run)


def test_a_task_is_cancelled_from_the_page(tmp_path: Path) -> None:
    with gated_run(tmp_path) as run, WebProcess(run.config) as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        _open(page, web)
        page.click("tr[data-task=after] button[data-action=cancel]")
        page.wait_for_selector("tr[data-task=after][data-status=cancelled]")
        # The action's answer and the store's change reach the page each its own way.
        page.wait_for_function(
            "() => document.getElementById('said').textContent === 'cancelled task after'"
        )
        assert run.status("after") == "cancelled"
        page.click("tr[data-task=held]")  # its timeline and its CLI's logs
        page.wait_for_selector("#logs details.log")
        page.click("#logs details.diff summary")
        page.screenshot(path=artefact(tmp_path, "task-cancelled.png"), full_page=True)
        assert page.evaluate("() => window.sameDocument") is True
        report = json.loads(_report(run.finish()))
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {
        "held": "done",
        "after": "cancelled",
    }


def _resuming(config: Path) -> bool:
    """Is a `council resume` of ``config`` still running?"""
    wanted = str(config).encode()
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        parts = line.split(b"\0")
        if b"resume" in parts and wanted in parts:
            return True
    return False


def _report(output: str) -> str:
    return output[output.index("{") : output.rindex("}") + 1]


def test_a_budget_raised_from_the_page_lets_the_held_run_go_on(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    tasks = task("one", "WRITE one.txt one") + task("two", "WRITE two.txt two")
    config = write_config(tmp_path, repo, tasks)
    budget = "budgets: {run: {tokens: 1}}\n"
    config.write_text(config.read_text().replace("tasks:\n", budget + "tasks:\n", 1))
    held = council("run", config, "--json", cwd=tmp_path, timeout=120)
    assert '"held"' in held.stdout or "budget" in held.stderr, held.stderr[-2000:]
    with WebProcess(config) as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _open(page, web)
        assert "budget" in (page.text_content("#tasks") or "")  # why they wait
        page.select_option("#raise-scope", "run")
        page.fill("#raise-tokens", "100000000")
        page.screenshot(path=artefact(tmp_path, "budget-held.png"), full_page=True)
        page.click("#raise-go")
        page.wait_for_function(
            "() => document.getElementById('said').textContent.startsWith('budget run is now')"
        )
        page.click("#resume")  # `council resume FILE`, started by the server
        page.wait_for_function(
            "() => document.getElementById('said').textContent.startsWith('council resume')"
        )
        page.wait_for_selector("body[data-run-status=completed]", timeout=patience(25) * 1000)
        assert set(_rows(page).values()) == {"done"}, _rows(page)
        assert page.is_hidden("#resume")
        page.screenshot(path=artefact(tmp_path, "budget-raised-done.png"), full_page=True)
        assert page.evaluate("() => window.sameDocument") is True


def test_a_spent_budget_s_ask_answered_go_on_from_the_page(tmp_path: Path) -> None:
    """A run held by its spent budget: the page offers "Go on" on that budget, which gives it
    its configured room once more beyond what was spent (the rule of `/council go on`); a
    person answering each ask and resuming from the page sees the run end with every task
    done. (A call's tokens vary a little from run to run: how many asks it takes does too.)"""
    repo = make_repo(tmp_path / "repo")
    tasks = task("one", "WRITE one.txt one") + task("two", "WRITE two.txt two")
    config = write_config(tmp_path, repo, tasks)
    budget = "budgets: {run: {tokens: 250}}\n"  # two plans alone spend more
    config.write_text(config.read_text().replace("tasks:\n", budget + "tasks:\n", 1))
    held = council("run", config, "--json", cwd=tmp_path, timeout=120)
    assert held.returncode != 0 and "budget" in held.stdout + held.stderr, held.stderr[-2000:]
    with WebProcess(config) as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _open(page, web)
        answered = 0
        while page.get_attribute("body", "data-run-status") != "completed":
            assert answered < 8, f"still held after {answered} answers: {_rows(page)}"
            page.wait_for_selector("button[data-action=go-on][data-scope=run]")
            row = "[data-budget=run]"
            spent = int(page.get_attribute(row, "data-spent-tokens") or 0)
            before = int(page.get_attribute(row, "data-limit-tokens") or 0)
            if not answered:
                page.screenshot(path=artefact(tmp_path, "budget-ask.png"), full_page=True)
            page.click("button[data-action=go-on][data-scope=run]")
            page.wait_for_function(
                "() => document.getElementById('said').textContent.startsWith('budget run is')"
            )
            said = page.text_content("#said") or ""
            limit = max(spent, before) + 250  # its configured room once more
            assert f"budget run is now {Limit(tokens=limit).said()} " in said, (spent, before, said)
            answered += 1
            page.click("#resume")  # `council resume FILE`, started by the server
            page.wait_for_function(
                "() => document.getElementById('said').textContent.startsWith('council resume')"
            )
            wait_for(lambda: not _resuming(config), "the resumed run's end")
            page.wait_for_selector(
                "body[data-run-status=completed], body[data-run-status=interrupted]",
                timeout=patience(25) * 1000,
            )
        assert set(_rows(page).values()) == {"done"}, _rows(page)
        assert answered >= 1
        assert page.locator("button[data-action=go-on]").count() == 0  # nothing spent now


def test_the_page_refuses_a_browser_without_the_token_and_an_action_without_csrf(
    tmp_path: Path,
) -> None:
    with gated_run(tmp_path) as run, WebProcess(run.config) as web, chromium() as browser:
        stranger = browser.new_page()
        answer = stranger.goto(web.base + "/")
        assert answer is not None and answer.status == 403
        assert "token is needed" in (stranger.text_content("body") or "")
        stranger.screenshot(path=artefact(tmp_path, "token-missing.png"))
        page = browser.new_page()
        _open(page, web)
        # The page's own origin and cookie, without the page's CSRF value: refused.
        status = page.evaluate(
            "async () => (await fetch('/api/task/after/cancel', {method: 'POST'})).status"
        )
        assert status == 403
        assert run.status("after") == "queued"
