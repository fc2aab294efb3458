"""The web view shows each session's services and their state (issue 50, "Visible"): a run
whose session started ``web`` (ready, then stopped with the attempt) and ``db`` (which never
became ready): the task's row in ``/api/view`` and its detail in ``/api/task`` carry both,
the failure with its reason and never its log's text. Over HTTP, no browser."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.browser_tier import WebProcess
from tests.support.council_process import council, task, write_config
from tests.support.web_helpers import http
from tests.support.workflow_helpers import make_repo

PYTHON = sys.executable
SERVICES = f"""\
sandbox: none
services:
  web:
    command: [{PYTHON}, -m, http.server, "3000", --bind, 127.0.0.1]
    port: 3000
  db:
    command: [/bin/sh, -c, "echo the cluster refused to start >&2; exit 3"]
    port: 5999
    start_timeout: 20
"""


def test_the_task_row_and_detail_carry_its_session_s_services(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt one"), phases=("build",))
    config.write_text(SERVICES + config.read_text())
    done = council(["run", str(config), "--json"], tmp_path)
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]  # db never started

    with WebProcess(config) as web:
        auth = {"authorization": f"token {web.token}"}
        view = http(f"{web.base}/api/view", headers=auth).json()
        detail = http(f"{web.base}/api/task/one", headers=auth).json()

    (row,) = view["tasks"]
    web_service, db = row["services"]
    assert web_service == {"name": "web", "state": "stopped", "port": 3000, "why": None}, row
    assert (db["name"], db["state"], db["port"]) == ("db", "failed", 5999), row
    assert db["why"].startswith("ended before it was ready"), db
    assert "refused" not in db["why"], db  # the reason, never the log's text
    assert detail["row"]["services"] == row["services"]
    assert detail["report"]["services"] == row["services"]
