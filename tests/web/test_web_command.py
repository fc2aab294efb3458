"""``council web``'s own refusals, said before it serves anything (the ``web`` extra missing, a
port that is no port, a config with no run recorded), and what it never shows: a secret."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from tests.support.browser_tier import WebProcess
from tests.support.council_process import council, task, write_config
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
