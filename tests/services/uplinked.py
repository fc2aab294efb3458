"""A session's network namespace with its way out (``SessionNet.open(uplink)``), run as a
program of its own so a test can run it as another user, or kill it:

    python -m tests.services.uplinked reach <host> <port>   # JSON: the route, what was read
    python -m tests.services.uplinked hold                  # JSON: the pids, then waits
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anyio

from orchestrator.sandbox.network import find
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


def main() -> None:
    if sys.argv[1] == "reach":
        print(json.dumps(anyio.run(reach, sys.argv[2], int(sys.argv[3]))), flush=True)
    else:
        anyio.run(hold)


if __name__ == "__main__":
    main()
