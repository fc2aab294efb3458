"""Takes what it can of the machine, then stops at a bound it was not given, and says how far
it got on stdout (``hog: <what> <how many> <error>``), then exits 1 (its attempt failed):
``FAULT_HOG=fork`` forks sleeping children until a fork is refused (or ``FAULT_MAX`` of them:
the sandbox's limit did not hold), ``file`` writes one file of up to ``FAULT_BYTES`` in its
worktree, ``memory`` allocates up to ``FAULT_BYTES`` in one process."""

import os
import signal
import sys
import time

what = os.environ["FAULT_HOG"]
error = ""
if what == "fork":
    children = []
    for _ in range(int(os.environ.get("FAULT_MAX", "400"))):
        try:
            pid = os.fork()
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    count = len(children)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
elif what == "file":
    count = 0
    chunk = b"x" * (1 << 20)
    with open("big.bin", "wb", buffering=0) as handle:
        while count < int(os.environ["FAULT_BYTES"]):
            try:
                count += handle.write(chunk)
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
elif what == "memory":
    count = 0
    held = []
    while count < int(os.environ["FAULT_BYTES"]):
        try:
            held.append(bytearray(1 << 24))  # 16 MiB, touched (zeroed)
        except MemoryError as exc:
            error = f"MemoryError: {exc}"
            break
        count += 1 << 24
    del held
print(f"hog: {what} {count} {error or 'not refused'}", flush=True)
sys.exit(1)
