"""Plants symbolic links where the orchestrator writes next, then does its work and exits 0.

FAULT_OUTSIDE is a directory outside the repository (holding a file ``victim``).
FAULT_LINKS says where the link goes:

- ``temp``: the temp name the orchestrator once wrote this phase's handoff through
  (``.council/handoff/build.json.tmp``), a link to a file there; ``file``: the handoff file
  itself (``build.json``); ``dir``: the ``.council/handoff`` directory, a link to
  FAULT_OUTSIDE;
- ``merge-lock``: the repository's merge lock file (``.council/locks/merge.lock``), whose
  bytes hold the merge's fencing counter, a link to ``victim``;
- ``record-dir``: this task's state record directory (``.council/state/tasks/<task>``),
  moved aside and replaced by a link to FAULT_OUTSIDE;
- ``hooks``: git's ``hooks`` directory, moved aside and replaced by a link to FAULT_OUTSIDE
  (the tamper guard then puts back what it finds changed there).
"""

import os
import subprocess
import sys
from pathlib import Path

outside = Path(os.environ["FAULT_OUTSIDE"])
where = os.environ.get("FAULT_LINKS")
repo = Path.cwd().parents[2]  # the worktree is <repo>/.council/worktrees/<session>


def replace_with_link(path: Path, target: Path) -> None:
    """``path`` (a directory) moved aside, and a link to ``target`` in its place (again if
    the orchestrator made the directory anew in between, as taking a lock in it does)."""
    for attempt in range(100):
        if path.is_symlink():
            return
        if path.exists():
            path.rename(path.with_name(f".{path.name}-aside-{attempt}"))
        try:
            path.symlink_to(target, target_is_directory=True)
            return
        except FileExistsError:
            continue
    raise SystemExit(f"could not put a link at {path}")


handoff = Path(".council", "handoff")
if where == "dir":
    handoff.parent.mkdir(parents=True, exist_ok=True)
    if handoff.is_dir() and not handoff.is_symlink():
        for leftover in handoff.iterdir():
            leftover.unlink()
        handoff.rmdir()
    handoff.symlink_to(outside, target_is_directory=True)
elif where in ("temp", "file"):
    handoff.mkdir(parents=True, exist_ok=True)
    name = "build.json.tmp" if where == "temp" else "build.json"
    (handoff / name).unlink(missing_ok=True)
    (handoff / name).symlink_to(outside / f"victim-{name}")
elif where == "merge-lock":
    lock = repo / ".council" / "locks" / "merge.lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(outside / "victim")
elif where == "record-dir":
    replace_with_link(repo / ".council" / "state" / "tasks" / os.environ["FAULT_TASK"], outside)
elif where == "hooks":
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    replace_with_link(Path(common) / "hooks", outside)
Path("work.txt").write_text("work next to a trap\n")
print("done", flush=True)
sys.exit(0)
