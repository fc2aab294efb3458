"""Leaves a fully detached daemon behind and exits 0, as a careless tool a CLI runs might.

The daemon is double-forked with ``setsid()``, then re-executes itself with an EMPTY
environment (``env -i``: no run mark), moves to ``/`` and closes every descriptor (nothing
ties it to the worktree at a glance), and every 0.1 s appends a line to ``daemon.txt`` in the
worktree it came from, opening and closing the file each time. Its pid goes to FAULT_PIDS
(an absolute path, passed on as an argument). The CLI then writes work.txt and exits 0.
"""

import os
import sys
import time
from pathlib import Path

if len(sys.argv) > 2 and sys.argv[1] == "--daemon":
    worktree, pids = sys.argv[2], sys.argv[3]
    os.chdir("/")
    with open(pids, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    os.closerange(0, 256)
    while True:
        try:
            with open(os.path.join(worktree, "daemon.txt"), "a") as out:
                out.write("still here\n")
        except OSError:
            pass  # the worktree is gone: a daemon lives on regardless
        time.sleep(0.1)

middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        here, pids = os.getcwd(), os.environ["FAULT_PIDS"]
        os.execve(sys.executable, [sys.executable, "-S", __file__, "--daemon", here, pids], {})
    os._exit(0)
os.waitpid(middle, 0)
time.sleep(0.3)  # the daemon has written its pid
Path("work.txt").write_text("the CLI did its work\n")
print("done; a daemon runs on", flush=True)
sys.exit(0)
