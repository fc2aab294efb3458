"""Commits its work on its own branch, then pushes that commit straight onto the remote's base
(``git push <FAULT_REMOTE> HEAD:<FAULT_BASE>``: ``origin`` and ``main`` when not given), as a
CLI that wants its work landed without the merge queue would. It prints ``pushed`` or
``refused: <git's words>`` and writes the same into ``push.txt`` in its worktree (left for the
orchestrator to commit on top), but with ``FAULT_THEN=nothing``: then its branch's tip is the
commit it pushed."""

import os
import subprocess
from pathlib import Path


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True)


Path("work.txt").write_text("pushed work\n")
git("add", "work.txt")
git("commit", "-q", "-m", "cli: work, pushed by its CLI")
remote = os.environ.get("FAULT_REMOTE", "origin")
base = os.environ.get("FAULT_BASE", "main")
pushed = git("push", "-q", remote, f"HEAD:refs/heads/{base}")
said = "pushed" if pushed.returncode == 0 else f"refused: {pushed.stderr.strip()[-300:]}"
if os.environ.get("FAULT_THEN") != "nothing":
    Path("push.txt").write_text(said + "\n")
print(said, flush=True)
