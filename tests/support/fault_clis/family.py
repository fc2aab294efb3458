"""Starts a family: a child in its own process group and a daemon that left it.

The daemon is double-forked: a child calls ``setsid()``, forks the daemon and exits, so the
daemon's parent is init while this CLI still runs (no ancestry leads back to the CLI). Every
pid (CLI, child, daemon) is appended to FAULT_PIDS. Then FAULT_THEN=hang sleeps forever
(ignoring SIGTERM with FAULT_IGNORE_TERM=1), anything else writes work.txt and exits 0.
"""

import os
import signal
import sys
import time
from pathlib import Path


def sleep_forever() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.closerange(0, 3)  # like a real daemon: the CLI's pipes do not stay open for it
    while True:
        time.sleep(3600)


def note(pid: int) -> None:
    with open(os.environ["FAULT_PIDS"], "a") as handle:
        handle.write(f"{pid}\n")


note(os.getpid())
child = os.fork()
if child == 0:
    sleep_forever()
note(child)
read, write = os.pipe()
middle = os.fork()
if middle == 0:
    os.setsid()
    daemon = os.fork()
    if daemon == 0:
        os.close(read)
        os.write(write, f"{os.getpid()}\n".encode())
        os.close(write)
        sleep_forever()
    os._exit(0)
os.close(write)
note(int(os.read(read, 64)))
os.waitpid(middle, 0)
print("family started", flush=True)
if os.environ.get("FAULT_THEN") == "hang":
    if os.environ.get("FAULT_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)
Path("work.txt").write_text("the family did some work\n")
sys.exit(0)
