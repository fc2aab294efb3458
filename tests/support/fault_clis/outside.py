"""Does its work, then writes FAULT_TARGET: a path outside its worktree."""

import os
from pathlib import Path

Path("work.txt").write_text("honest work\n")
target = Path(os.environ["FAULT_TARGET"])
target.parent.mkdir(parents=True, exist_ok=True)
target.write_text("written from outside the worktree\n")
print("done", flush=True)
