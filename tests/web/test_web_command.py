"""``council web``'s own refusals, said before it serves anything: the ``web`` extra missing, a
port that is no port, a config with no run recorded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from tests.support.council_process import task, write_config
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
