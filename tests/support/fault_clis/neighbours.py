"""A CLI running beside another session (FAULT_DOES), for the blame tests. It writes its work
(FAULT_WORK, ``work.txt`` when not given), waits (up to 20 s) until another worktree holds
``FAULT_WAIT_FOR`` when that is given (so the sessions overlap), then:

- ``commit``: commits that work on its own session branch (``git add`` + ``git commit``),
  as aider does by default;
- ``switch-base``: switches its own worktree to the base branch (``main``);
- ``config-once``: adds an alias to the repository's shared ``.git/config``, the first time
  only (FAULT_MARKER is written then);
- ``delete-admin``: deletes the admin directory (``.git/worktrees/<name>``) of the worktree
  holding ``FAULT_WAIT_FOR``, the first time only (FAULT_MARKER);
- ``fail-once``: exits 1, the first time only (FAULT_MARKER), its work left behind;
- ``work``: nothing more.

Then it sleeps FAULT_SLEEP seconds (0 when not given), so its session overlaps the others.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def first_time() -> bool:
    marker = Path(os.environ["FAULT_MARKER"])
    if marker.exists():
        return False
    marker.write_text("done\n")
    return True


def other_holding(name: str) -> Path | None:
    """The admin directory of another worktree holding ``name``, waited for up to 20 s."""
    own = Path(git("rev-parse", "--path-format=absolute", "--git-dir"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for admin in sorted((common / "worktrees").iterdir()):
            gitdir = admin / "gitdir"
            if admin == own or not gitdir.is_file():
                continue
            if (Path(gitdir.read_text().strip()).parent / name).exists():
                return admin
        time.sleep(0.05)
    return None


work = os.environ.get("FAULT_WORK", "work.txt")
Path(work).write_text(f"{work}: honest work\n")
does = os.environ["FAULT_DOES"]
common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir"))
waits = os.environ.get("FAULT_WAIT_FOR")
once = does in ("config-once", "delete-admin", "fail-once")
if once and not first_time():
    does = "work"
other = other_holding(waits) if waits and does != "work" else None
if does == "commit":
    git("add", work)
    git("commit", "-q", "-m", f"aider: {work}")
elif does == "switch-base":
    git("switch", "--quiet", "--ignore-other-worktrees", "main")
elif does == "config-once":
    with open(common / "config", "a") as handle:
        handle.write("[alias]\n\tst = status\n")
elif does == "delete-admin" and other is not None:
    shutil.rmtree(other)
elif does == "fail-once":
    print("failed, this once", flush=True)
    sys.exit(1)
time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))
print("done", flush=True)
