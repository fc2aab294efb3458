"""``council web``'s own refusals, said before it serves anything (the ``web`` extra missing, a
port that is no port, a config with no run recorded), what it never shows (a secret), and
``run --web``: the server beside the run."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from tests.support.browser_tier import WebProcess
from tests.support.cli_process_helpers import reap, spawn, wait_for
from tests.support.council_process import council, task, write_config
from tests.support.timing import patience
from tests.support.web_helpers import http
from tests.support.workflow_helpers import make_repo


def test_without_the_web_extra_the_command_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n.startswith(("orchestrator.web", "uvicorn"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as where it is not installed
    done = CliRunner().invoke(app, ["web", "nowhere.yaml"])
    assert done.exit_code == 2
    assert "council web needs the `web` extra: pip install 'cli-council[web]'" in done.output


def test_a_port_that_is_no_port_is_refused() -> None:
    done = CliRunner().invoke(app, ["web", "nowhere.yaml", "--port", "70000"])
    assert done.exit_code == 2
    assert "--port 70000 is no port (0 to 65535)" in done.output


def test_a_config_with_no_run_recorded_is_said_before_serving(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt one"))
    done = CliRunner().invoke(app, ["web", str(config), "--port", "0"])
    assert done.exit_code == 2
    assert f"no run has been recorded in {repo / '.council' / 'state'}" in done.output
    assert "serves the run" not in done.output


def test_a_secret_a_cli_printed_is_masked_in_the_logs_the_page_shows(tmp_path: Path) -> None:
    secret = "sk-web-0123456789abcdefghij"
    repo = make_repo(tmp_path / "repo")
    config = write_config(tmp_path, repo, task("one", "PRINT_ENV API_TOKEN\nWRITE one.txt one"))
    text = config.read_text().replace(
        "options: {delay: 0}}", f"options: {{delay: 0}}, env: {{API_TOKEN: {secret}}}}}"
    )
    config.write_text(text)
    done = council(["run", str(config), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    with WebProcess(config) as web:
        shown = http(f"{web.base}/api/task/one", headers={"authorization": f"token {web.token}"})
    logs = shown.json()["logs"]
    build = [log["text"] for log in logs if log["name"].startswith("one-build-")]
    assert build and "stdout| ***" in build[0], logs  # the value it printed, masked on write
    assert all(secret not in log["text"] for log in logs)
    assert secret not in shown.body.decode()


def test_run_with_web_serves_its_run_beside_it_until_it_ends(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    gates = tmp_path / "gates"
    gates.mkdir()
    tasks = task("held", f"WAIT_FOR {gates / 'gate'} 60\nWRITE held.txt held")
    config = write_config(tmp_path, repo, tasks)
    config.write_text(f"sandbox: {{read: [{gates}]}}\n" + config.read_text())
    run = spawn("run", config, "--json", "--web", "--web-port", "0", cwd=tmp_path)
    try:
        assert run.stderr is not None
        url = ""
        for line in run.stderr:  # the run's own lines, then the server's URL
            if "council web serves the run at " in line:
                url = line.split("serves the run at ")[1].split()[0]
                break
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url, url
        base, token = url.split("/?")[0], url.split("token=")[1]
        auth = {"authorization": f"token {token}"}
        wait_for(
            lambda: any(
                row["status"] == "running"
                for row in http(f"{base}/api/view", headers=auth).json()["tasks"]
            ),
            "the page's view of the running task",
        )
        assert http(f"{base}/api/view").status == 403  # the token is required beside a run too
        (gates / "gate").write_text("go\n")
        out, _ = run.communicate(timeout=patience(60))
        assert run.returncode == 0 and '"done": 1' in out, out[-2000:]
        with pytest.raises(OSError):  # the server ended with the run
            urllib.request.urlopen(f"{base}/api/view", timeout=5)
    finally:
        if not (gates / "gate").exists():
            (gates / "gate").write_text("go\n")
        reap(run)


def test_a_host_beyond_the_loopback_is_warned_that_the_token_goes_in_plain_http(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt one"))
    done = council(["run", str(config), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    said = {}
    for host in ("127.0.0.1", "0.0.0.0"):
        web = WebProcess(config, "--host", host)
        web.stop()
        said[host] = web.stderr_text
    assert "plain HTTP" not in said["127.0.0.1"]
    assert "--host 0.0.0.0: the page and its token go over plain HTTP" in said["0.0.0.0"]
