"""Does its work, then tries what its network reaches from inside its sandbox and records each
attempt in ``net.json`` (committed with its work), a service's reply being what "reached"
means:

- ``FAULT_MODEL_BASE_URL`` (``http://host:port``): its model's endpoint, straight;
- ``FAULT_LOOPBACK`` (``host:port``): another port of the machine's loopback, straight;
- ``FAULT_UNIX``: a Unix socket in the run's ``TMPDIR``;
- ``FAULT_ALLOWED`` / ``FAULT_REFUSED`` (``host:port``): an HTTP ``CONNECT`` through the proxy
  its ``HTTPS_PROXY`` names (when it has one), and the same address straight (no proxy).
"""

import json
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit


def tcp(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=3) as conn:
        conn.sendall(b"hello\n")
        return conn.recv(64).decode()


def address(value: str) -> tuple[str, int]:
    url = urlsplit(value if "://" in value else f"//{value}")
    assert url.hostname and url.port, value
    return url.hostname, url.port


def unix(path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(3)
        conn.connect(path)
        conn.sendall(b"hello\n")
        return conn.recv(64).decode()


def through_proxy(target: str) -> str:
    """CONNECT through the proxy: the proxy's status line, then the service's reply."""
    proxy = address(os.environ["HTTPS_PROXY"])
    with socket.create_connection(proxy, timeout=3) as conn:
        conn.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        status = head.split(b"\r\n", 1)[0].decode()
        if " 200 " not in status:
            raise ConnectionRefusedError(status)
        rest = head.split(b"\r\n\r\n", 1)[1]  # the service may have answered already
        conn.sendall(b"hello\n")
        return (rest or conn.recv(64)).decode()


tries = {}
if os.environ.get("FAULT_MODEL_BASE_URL"):
    tries["model endpoint"] = lambda: tcp(*address(os.environ["FAULT_MODEL_BASE_URL"]))
if os.environ.get("FAULT_LOOPBACK"):
    tries["other loopback port"] = lambda: tcp(*address(os.environ["FAULT_LOOPBACK"]))
if os.environ.get("FAULT_UNIX"):
    tries["unix socket in TMPDIR"] = lambda: unix(os.environ["FAULT_UNIX"])
for name in ("ALLOWED", "REFUSED"):
    target = os.environ.get(f"FAULT_{name}")
    if target:
        tries[f"{name.lower()} straight"] = lambda t=target: tcp(*address(t))
        if os.environ.get("HTTPS_PROXY"):
            tries[f"{name.lower()} via proxy"] = lambda t=target: through_proxy(t)
seen = {}
for name, attempt in tries.items():
    try:
        seen[name] = {"reached": True, "reply": attempt()}
    except (OSError, AssertionError) as exc:
        seen[name] = {"reached": False, "error": f"{type(exc).__name__}: {exc}"}
seen["proxy"] = os.environ.get("HTTPS_PROXY", "")
Path("work.txt").write_text("honest work\n")
Path("net.json").write_text(json.dumps(seen, indent=1) + "\n")
print("done", flush=True)
