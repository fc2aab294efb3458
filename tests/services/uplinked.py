"""A session's network namespace with its way out (``SessionNet.open(uplink)``), run as a
program of its own so a test can run it as another user, or kill it:

    python -m tests.services.uplinked reach <host> <port>   # JSON: the route, what was read
    python -m tests.services.uplinked hold                  # JSON: the pids, then waits
    python -m tests.services.uplinked verify <root> <bwrap> <host> <port>
        # a verify command under the sandbox in that namespace (``layout`` under <root>)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio

from orchestrator.sandbox.commands import CommandPlace, SessionSide, run_confined
from orchestrator.sandbox.network import find
from orchestrator.sandbox.plan import GitReach, Sandbox, SandboxSettings
from orchestrator.services.session import SessionServices
from orchestrator.services.session_net import SessionNet

# Run inside the namespace: its default route's gateway, and what a server outside says.
INSIDE = """\
import socket, sys
routes = open("/proc/net/route").read().split("\\n")[1:]
gateway = [r.split()[2] for r in routes if r.split() and r.split()[1] == "00000000"]
said = ""
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as conn:
    said = conn.recv(100).decode()
print(gateway[0] if gateway else "", said)
"""


async def reach(host: str, port: int) -> dict[str, object]:
    helper = find()
    assert helper is not None, "slirp4netns is not installed"
    net = await SessionNet.open(helper)
    try:
        argv = net.join([sys.executable, "-I", "-S", "-c", INSIDE, host, str(port)])
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(argv, capture_output=True, text=True, timeout=30)
        )
        uplinked = net.uplinked
    finally:
        await net.close()
    gateway, _, said = done.stdout.strip().partition(" ")
    return {"code": done.returncode, "gateway": gateway, "said": said, "err": done.stderr,
            "uplinked": uplinked}  # fmt: skip


async def hold() -> None:
    helper = find()
    assert helper is not None, "slirp4netns is not installed"
    net = await SessionNet.open(helper)
    uplink = net._uplink
    assert uplink is not None
    print(json.dumps({"holder": net.pid, "helper": uplink.pid, "me": os.getpid()}), flush=True)
    await anyio.sleep_forever()


async def verify(root: Path, bwrap: str, host: str, port: int) -> dict[str, object]:
    """As the scheduler's services part does: the session's services opened with the
    sandbox's helper, then a verify command run confined in the session's network."""
    helper = find()
    assert helper is not None, "slirp4netns is not installed"
    repo = root / "repo"
    worktree = repo / ".council" / "worktrees" / "s1"
    admin = repo / ".git" / "worktrees" / "s1"
    reach = GitReach(repo, repo / ".council", (admin,), (worktree / ".git",))
    settings = SandboxSettings("bubblewrap", bwrap, uplink=helper)
    home = repo / ".council" / "command-homes" / "s1"
    services = SessionServices({}, workdir=worktree, env={}, log_dir=root / "logs" / "s1",
                               uplink=helper)  # fmt: skip
    await services.open()
    try:
        side = SessionSide(join=services.join, resolv=services.resolv)
        place = CommandPlace(worktree, home, Sandbox(settings, reach), side)
        probe = f"cat /etc/resolv.conf; {sys.executable} -I -S -c '{INSIDE}' {host} {port}"
        done = await run_confined(place, ["sh", "-c", probe], timeout=30)
    finally:
        await services.close()
    return {"code": done.returncode, "output": done.output}


def main() -> None:
    if sys.argv[1] == "reach":
        print(json.dumps(anyio.run(reach, sys.argv[2], int(sys.argv[3]))), flush=True)
    elif sys.argv[1] == "verify":
        root, bwrap, host, port = Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
        print(json.dumps(anyio.run(verify, root, bwrap, host, port)), flush=True)
    else:
        anyio.run(hold)


if __name__ == "__main__":
    main()
