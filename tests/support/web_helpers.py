"""What the web view's tests share: a run held open by a gate file, and HTTP without a browser.

``gated_run`` starts ``council run`` on two tasks: ``held``'s build waits for the file
``gates/gate`` (scripted-cli ``WAIT_FOR``; the sandbox lets the CLI read that directory),
``after`` depends on it, so it stays queued until the gate opens. ``http`` asks the server
something and gives back the status, headers and body (never following a redirect: the
token's exchange is one).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cli_process_helpers import reap, spawn, wait_for
from tests.support.council_process import task, task_record, write_config
from tests.support.workflow_helpers import make_repo

__all__ = ["Answer", "GatedRun", "gated_run", "http"]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_Stay)


def http(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=30) as answer:
            return Answer(answer.status, dict(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as refused:
        return Answer(refused.code, dict(refused.headers.items()), refused.read())


@dataclass
class GatedRun:
    repo: Path
    config: Path
    gate: Path
    process: subprocess.Popen[str]

    def status(self, task_id: str) -> str | None:
        record = task_record(self.repo, task_id)
        return None if record is None else str(record["status"])

    def building(self, task_id: str) -> bool:
        """Is the task running its build, whose CLI has started (its log is made), its plan
        done?"""
        record = task_record(self.repo, task_id)
        if record is None or record["status"] != "running" or record["current_phase"] != "build":
            return False
        return any((self.repo / ".council" / "logs").glob(f"{task_id}-build-*"))

    def finish(self) -> str:
        """Open the gate and wait for the run's end; its output."""
        self.gate.write_text("go\n")
        out, err = self.process.communicate(timeout=120)
        return out + err


@contextmanager
def gated_run(tmp_path: Path, extra: str = "") -> Iterator[GatedRun]:
    repo = make_repo(tmp_path / "repo")
    gates = tmp_path / "gates"
    gates.mkdir()
    gate = gates / "gate"
    tasks = task("held", f"WAIT_FOR {gate} 90\nWRITE held.txt held") + task(
        "after", "WRITE after.txt after", after="held"
    )
    config = write_config(tmp_path, repo, tasks)
    readable = f"sandbox: {{read: [{gates}]}}\n{extra}"  # the CLI sees the gate, sandboxed
    config.write_text(config.read_text().replace("tasks:\n", f"{readable}\ntasks:\n", 1))
    process = spawn("run", config, "--json", cwd=tmp_path)
    run = GatedRun(repo, config, gate, process)
    try:
        # Held at the gate: its build's CLI started, not merely its plan (its status says
        # running from the plan on).
        wait_for(lambda: run.building("held"), "task held building at its gate", 60)
        wait_for(lambda: run.status("after") == "queued", "task after queued", 30)
        yield run
    finally:
        if not gate.exists():
            gate.write_text("go\n")
        reap(process)
