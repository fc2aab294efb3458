"""Two sessions side by side, each with its own services: the same port, the same database name,
no cross-talk (a run config's ``services:``, docs/services.md).

Offline, in a few seconds, with the ``scripted`` stand-in CLI::

    python examples/services_side_by_side.py                      # a new temporary directory
    python examples/services_side_by_side.py --workdir /tmp/svc   # keep the repository there

It makes a small repository with a tiny key-value server (``kv.py``: database ``app`` on port
5432) and a test (``check.py``) that starts a dev server on port 3000, writes its task's row
into database ``app``, reads the database back and fails if it sees any row but its own. Two
tasks, ``alpha`` and ``beta``, run that test as their verify command at the same time: on one
shared network the second dev server could not bind port 3000 and each test would see the
other's row. Each session gets its own network and its own ``db`` service, so both pass and
land. The exit code is the run's: 0 when both landed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from orchestrator import Council, Event, RunConfig

KV = """\
import http.server, json, sys
rows = {}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        rows.setdefault(self.path.split("/")[1], []).append(self.path.split("/")[2])
        self.send_response(204); self.end_headers()
    def do_GET(self):
        body = json.dumps(rows.get(self.path.strip("/"), [])).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
CHECK = """\
import json, os, socket, sys, urllib.request
me = sys.argv[1]
dev = socket.socket(); dev.bind(("127.0.0.1", 3000)); dev.listen()  # "the dev server"
url = os.environ["COUNCIL_SERVICE_DB_URL"]
urllib.request.urlopen(urllib.request.Request(url + "/" + me, method="PUT"))
rows = json.loads(urllib.request.urlopen(url).read())
if rows != [me]:
    sys.exit(f"{me} saw rows {rows} in database app")
print(f"{me}: port 3000 bound, database app holds only its own row")
"""
SHOWN = {"service.ready", "service.stopped", "merge.completed", "phase.failed", "task.failed"}


def _repo(workdir: Path) -> Path:
    repo = workdir / "repo"
    repo.mkdir(parents=True)
    (repo / "kv.py").write_text(KV)
    (repo / "check.py").write_text(CHECK)
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "."],
        ["git", "-c", "user.name=Example", "-c", "user.email=example@example.com", "commit",
         "-qm", "a key-value server and a check"],
    ):  # fmt: skip
        subprocess.run(argv, cwd=repo, check=True)
    return repo


def build_config(repo: Path) -> RunConfig:
    python = sys.executable

    def task(name: str) -> dict[str, Any]:
        return {
            "id": name,
            "prompt": f"Write {name}.txt.",
            "files": [f"{name}.txt"],
            "verify": [[python, "check.py", name]],
            "metadata": {"phase_instructions": {"build": f"WRITE {name}.txt {name}"}},
        }

    return RunConfig.model_validate(
        {
            "repo": str(repo),
            "adapters": {"cli": {"type": "scripted", "options": {"delay": 0}}},
            "default_adapter": "cli",
            "workflow": {"phases": [{"name": "build"}]},
            "capacity": {"sessions": 2},
            "sandbox": "none",
            "services": {
                "db": {
                    "command": [python, "kv.py", "5432"],
                    "port": 5432,
                    "url": "http://{host}:{port}/app",
                }
            },
            "tasks": [task("alpha"), task("beta")],
        }
    )


def show(event: Event) -> None:
    if event.type in SHOWN:
        print(event.type, {k: v for k, v in event.data.items() if k in ("task_id", "service")})


async def main(workdir: Path) -> int:
    council = Council(build_config(_repo(workdir)))
    council.subscribe(show)
    async with council:
        report = await council.run()
    for task in report.tasks:
        print(f"{task.task_id}: {task.status}")
    return report.exit_code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where to make the repository")
    args = parser.parse_args()
    if args.workdir is not None:
        sys.exit(anyio.run(main, args.workdir))
    with tempfile.TemporaryDirectory() as temporary:
        sys.exit(anyio.run(main, Path(temporary)))
