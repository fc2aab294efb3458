"""Does its work, then tries the machine's services from inside its sandbox and records each
attempt in ``net.json`` (committed with its work): a TCP service on the machine's loopback
(``FAULT_LOOPBACK``, ``host:port``), the same port through the network helper's gateway
(``10.0.2.2``), a Unix socket in the run's ``TMPDIR`` (``FAULT_UNIX``), and a service on the
machine's own non-loopback address (``FAULT_PUBLIC``, when there is one: the way out that must
stay open). A reply of the service is what "reached" means."""

import json
import os
import socket
from pathlib import Path


def tcp(address: str) -> str:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as conn:
        conn.sendall(b"hello\n")
        return conn.recv(64).decode()


def unix(path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(3)
        conn.connect(path)
        conn.sendall(b"hello\n")
        return conn.recv(64).decode()


tries = {"loopback tcp": lambda: tcp(os.environ["FAULT_LOOPBACK"])}
port = os.environ["FAULT_LOOPBACK"].rsplit(":", 1)[1]
tries["gateway to loopback"] = lambda: tcp(f"10.0.2.2:{port}")
if os.environ.get("FAULT_UNIX"):
    tries["unix socket in TMPDIR"] = lambda: unix(os.environ["FAULT_UNIX"])
if os.environ.get("FAULT_PUBLIC"):
    tries["public tcp"] = lambda: tcp(os.environ["FAULT_PUBLIC"])
seen = {}
for name, attempt in tries.items():
    try:
        seen[name] = {"reached": True, "reply": attempt()}
    except OSError as exc:
        seen[name] = {"reached": False, "error": f"{type(exc).__name__}: {exc}"}
Path("work.txt").write_text("honest work\n")
Path("net.json").write_text(json.dumps(seen, indent=1) + "\n")
print("done", flush=True)
