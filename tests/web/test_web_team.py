"""A team run on PostgreSQL seen from a third clone's ``council web``: two workstations run the
tasks, the page (in headless Chromium) shows both working and every task ending, live, through
the database's notifications."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser_tier import WebProcess, artefact, chromium
from tests.support.team_helpers import Team, team_task, wait_for
from tests.support.timing import patience
from tests.support.web_helpers import http

pytestmark = pytest.mark.browser


def test_a_team_run_of_two_workstations_is_seen_from_a_third_clone(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    gates = tmp_path / "gates"
    gates.mkdir()
    tasks = [team_task(n) for n in range(1, 5)]
    for task in tasks:
        build = task["metadata"]["phase_instructions"]["build"]
        task["metadata"]["phase_instructions"]["build"] = f"WAIT_FOR {gates / 'gate'} 60\n{build}"
    for name in ("a", "b", "c"):
        team.workstation(name, tasks, sessions=2, readable=gates)
    try:
        team.start("a")
        wait_for(
            lambda: team.council("status", str(tmp_path / "a.yaml"), "--json").returncode == 0,
            "the team's session",
        )
        team.start("b")
        with WebProcess(tmp_path / "c.yaml", env=team.env()) as web, chromium() as browser:
            auth = {"authorization": f"token {web.token}"}

            def both_working() -> bool:
                view = http(f"{web.base}/api/view", headers=auth).json()
                return len(view["workstations"]) == 2

            wait_for(both_working, "two workstations in the view", 40)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(web.url)
            page.wait_for_selector("tr[data-task=t01]")
            page.evaluate("() => { window.sameDocument = true; }")
            assert (page.text_content("#workstations") or "").count("workstation ") == 2
            page.screenshot(path=artefact(tmp_path, "team-working.png"), full_page=True)
            (gates / "gate").write_text("go\n")
            page.wait_for_function(
                "() => [...document.querySelectorAll('tr[data-task]')]"
                ".every((row) => row.dataset.status === 'done')",
                timeout=patience(40) * 1000,
            )
            page.screenshot(path=artefact(tmp_path, "team-done.png"), full_page=True)
            assert page.evaluate("() => window.sameDocument") is True
        for name in ("a", "b"):
            code, _, err = team.finish(name)
            assert code == 0, err[-2000:]
    finally:
        if not (gates / "gate").exists():
            (gates / "gate").write_text("go\n")
        team.stop_all()
