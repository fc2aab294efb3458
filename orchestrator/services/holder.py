"""The holder of a session's network namespace, run as a program of its own (``python -I -S
holder.py``, importing nothing of the orchestrator): it makes a network namespace (for a user
who is not root, inside a user namespace that maps only them), brings its loopback up, prints
``ready`` and keeps the namespace alive until its standard input ends, which the orchestrator
holds open for the session's life: a kill -9 of the orchestrator ends it too.

Written with ``ctypes`` (``os.unshare`` is Python 3.12's): the process that makes the user
namespace keeps its capabilities in it until it execs, so it can bring ``lo`` up itself,
which ``unshare --map-current-user`` followed by ``ip link`` could not.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def main() -> int:
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNET if uid == 0 else _CLONE_NEWNET | _CLONE_NEWUSER
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        print(f"unshare: {os.strerror(ctypes.get_errno())}", file=sys.stderr, flush=True)
        return 1
    if uid != 0:
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        asked = fcntl.ioctl(probe, _SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0))
        current = struct.unpack("16sh", asked)[1]
        fcntl.ioctl(probe, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", current | _IFF_UP))
    print("ready", flush=True)
    while sys.stdin.buffer.read(4096):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
