"""A goal's plan on the page, over plain HTTP (``web.plan_view``): ``council run -g GOAL
--approve`` waits, ``council web FILE`` serves the plan before any run is recorded, and its
answers go through the same functions as ``council approve``: an edited list checked as a
hand-written config, a bad edit refused with nothing changed, an answer without the CSRF value
refused, and the run that follows lands exactly the accepted tasks."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.run.goal_hold import read_plan
from tests.cli.test_cli_goal import GOAL, TASKS, setup
from tests.support.browser_tier import WebProcess
from tests.support.cli_process_helpers import reap, spawn, wait_for
from tests.support.scheduler_helpers import merged_tasks
from tests.support.web_helpers import http

SAVED = "run.goal-add-a-greeting.yaml"


@dataclass
class HeldRun:
    config: Path
    saved: Path
    process: subprocess.Popen[str]


def held_status(repo: Path) -> str | None:
    held = read_plan(repo)
    return None if held is None else held.status


@contextmanager
def held_run(tmp_path: Path, *extra: str) -> Iterator[HeldRun]:
    """``council run -g GOAL --approve`` on the scripted planner, its plan held."""
    config = setup(tmp_path)
    process = spawn("run", "-g", GOAL, config, "--approve", "--json", *extra, cwd=tmp_path)
    try:
        wait_for(lambda: held_status(tmp_path / "repo") == "pending", "the plan held", 60)
        yield HeldRun(config, tmp_path / SAVED, process)
    finally:
        reap(process)


def signed_in(web: WebProcess) -> dict[str, str]:
    """The headers of the page's own requests: its cookie and its CSRF value."""
    return page_headers(web.url, web.base)


def page_headers(url: str, base: str) -> dict[str, str]:
    cookie = http(url).headers["set-cookie"].split(";")[0]
    page = http(base + "/", headers={"cookie": cookie}).body.decode()
    csrf = page.split('name="council-csrf" content="')[1].split('"')[0]
    return {"cookie": cookie, "x-council-csrf": csrf}


def test_the_plan_is_served_edited_and_accepted_and_the_run_lands_exactly_it(
    tmp_path: Path,
) -> None:
    with held_run(tmp_path) as run, WebProcess(run.config) as web:
        headers = signed_in(web)
        shown = http(web.base + "/api/plan", headers=headers)
        assert shown.status == 200
        plan = shown.json()["plan"]
        assert plan["status"] == "pending" and plan["goal"] == GOAL
        assert plan["config"] == str(run.saved)
        assert [t["id"] for t in plan["tasks"]] == TASKS
        assert plan["tasks"][1]["depends_on"] == [TASKS[0]]
        # No run is recorded yet: the run's routes say so.
        assert http(web.base + "/api/view", headers=headers).status == 409

        accept = web.base + "/api/plan/accept"
        kept = [{"id": TASKS[0], "prompt": "Write the greeting note, edited on the page."}]
        no_csrf = {"cookie": headers["cookie"]}
        assert http(accept, method="POST", headers=no_csrf, body={"tasks": kept}).status == 403
        # Removing the first task leaves the second after a task of no list: refused, as is.
        before = run.saved.read_bytes()
        bad = http(accept, method="POST", headers=headers, body={"tasks": [{"id": TASKS[1]}]})
        assert bad.status == 400
        assert "depends_on" in bad.json()["error"] and TASKS[0] in bad.json()["error"]
        forged = http(accept, method="POST", headers=headers, body={"tasks": [{"id": "new"}]})
        assert forged.status == 400 and "not a task of the plan" in forged.json()["error"]
        assert run.saved.read_bytes() == before
        assert held_status(tmp_path / "repo") == "pending"

        done = http(accept, method="POST", headers=headers, body={"tasks": kept})
        assert done.status == 200, done.body
        assert done.json()["said"].endswith("1 task(s) run")
        out, err = run.process.communicate(timeout=120)
    assert run.process.returncode == 0, err
    report = json.loads(out)
    assert [(t["task_id"], t["status"]) for t in report["tasks"]] == [(TASKS[0], "done")]
    assert merged_tasks(tmp_path / "repo") == [TASKS[0]]
    saved = run.saved.read_text()
    assert "Write the greeting note, edited on the page." in saved and TASKS[1] not in saved


def test_a_plan_refused_from_the_page_runs_nothing(tmp_path: Path) -> None:
    with held_run(tmp_path) as run, WebProcess(run.saved) as web:
        headers = signed_in(web)
        refuse = web.base + "/api/plan/refuse"
        assert http(refuse, method="POST", headers={"cookie": headers["cookie"]}).status == 403
        refused = http(refuse, method="POST", headers=headers)
        assert refused.status == 200 and "nothing runs" in refused.json()["said"]
        out, err = run.process.communicate(timeout=60)
        again = http(refuse, method="POST", headers=headers)
        assert again.status == 400 and "was refused already" in again.json()["error"]
    assert run.process.returncode == 2, out + err
    assert "the plan was refused: nothing ran" in err
    assert not (tmp_path / "repo" / ".council" / "state").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_run_with_web_serves_the_plan_then_the_run_on_the_same_address(tmp_path: Path) -> None:
    """``run -g --approve --web``: the plan's page before the session exists; accepted there,
    the run's page follows on the same port and token (the browser's cookie holds)."""
    port = _free_port()
    with held_run(tmp_path, "--web", "--web-port", str(port)) as run:
        assert run.process.stderr is not None
        said: list[str] = []
        while not any("serves the goal's plan at" in line for line in said):
            line = run.process.stderr.readline()
            assert line, f"no page for the plan: {''.join(said)}"
            said.append(line)
        url = said[-1][said[-1].index("http://") :].split()[0]
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        token = {"authorization": f"token {url.split('token=')[1]}"}
        plan = http(f"http://127.0.0.1:{port}/api/plan", headers=token).json()["plan"]
        assert [t["id"] for t in plan["tasks"]] == TASKS
        headers = page_headers(url, f"http://127.0.0.1:{port}")
        accept = f"http://127.0.0.1:{port}/api/plan/accept"
        assert http(accept, method="POST", headers=headers).status == 200
        out, err = run.process.communicate(timeout=120)
    assert run.process.returncode == 0, err
    assert f"council web serves the run at {url}" in err  # the same address and token
    assert [t["task_id"] for t in json.loads(out)["tasks"]] == TASKS
