"""Two sessions side by side, each with its own ``web`` service on port 3000 serving its own
data, and a check in each that binds port 4000 while the other's holds it too: run in this
process (``side_by_side``) or as another user (``python -m tests.services.side_by_side DIR``,
printing its result as JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from orchestrator.config.services import ServiceConfig
from orchestrator.process.command import CommandResult, run_command
from orchestrator.services.session import SessionServices

SESSIONS = ("alpha", "beta")
# The machine's Python for what runs in a session's network: this one may sit where a user
# namespace cannot reach (a virtualenv under /root).
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
# Binds 4000 in its session's network, says so with a file, waits (bounded) until the other
# session's check holds 4000 too, then prints what its session's service on 3000 serves.
CHECK = """
import os, socket, sys, time, urllib.request
here, other = sys.argv[1], sys.argv[2]
s = socket.socket(); s.bind(("127.0.0.1", 4000)); s.listen()
open(here + ".bound", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(other + ".bound"):
    if time.monotonic() > deadline:
        sys.exit("the other check never bound its port")
    time.sleep(0.05)
print(urllib.request.urlopen(os.environ["COUNCIL_SERVICE_WEB_URL"] + "/data.txt").read().decode())
"""


def web(root: Path) -> ServiceConfig:
    argv = [PYTHON, "-m", "http.server", "3000", "--bind", "127.0.0.1"]
    return ServiceConfig(
        command=[*argv, "--directory", str(root)], port=3000, url="http://{host}:{port}"
    )


async def side_by_side(base: Path) -> dict[str, object]:
    """Each session's check's output and exit code, and whether the sessions were isolated."""
    groups: dict[str, SessionServices] = {}
    results: dict[str, CommandResult] = {}
    for name in SESSIONS:
        work = base / name
        work.mkdir(exist_ok=True)
        (work / "data.txt").write_text(f"data of {name}\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work)}
        groups[name] = SessionServices(
            {"web": web(work)}, workdir=work, env=env, log_dir=work / "logs"
        )
    try:
        for group in groups.values():
            await group.before("build")

        async def check(name: str, other: str) -> None:
            group = groups[name]
            argv = [PYTHON, "-c", CHECK, str(base / name), str(base / other)]
            env = {**group.env, **group.variables()}
            results[name] = await run_command(
                group.join(argv), cwd=group.workdir, env=env, timeout=90
            )

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(check, "alpha", "beta")
            tasks.start_soon(check, "beta", "alpha")
        return {
            "isolated": all(group.isolated for group in groups.values()),
            "states": {name: dict(group.states) for name, group in groups.items()},
            "checks": {
                name: {"code": result.returncode, "output": result.output}
                for name, result in results.items()
            },
        }
    finally:
        for group in groups.values():
            await group.close()


if __name__ == "__main__":
    print(json.dumps(anyio.run(side_by_side, Path(sys.argv[1]))))
