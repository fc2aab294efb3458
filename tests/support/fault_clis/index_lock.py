"""Does its work, then leaves an ``index.lock`` in its worktree's git dir (as a git killed
mid-command would)."""

import subprocess
from pathlib import Path

Path("work.txt").write_text("work, then a crash inside git\n")
lock = subprocess.run(
    ["git", "rev-parse", "--path-format=absolute", "--git-path", "index.lock"],
    capture_output=True, text=True, check=True,
).stdout.strip()  # fmt: skip
Path(lock).write_bytes(b"")
print("done", flush=True)
