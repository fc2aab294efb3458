"""Does its work (``work.txt``), then runs real git against the repository's shared state
(FAULT_REFS), from its worktree:

- ``gc``: ``git gc`` and ``git pack-refs --all`` in the user's main checkout: git's own
  housekeeping, which changes no ref's value (not tampering);
- ``move-base``: commits ``evil.txt`` on top of the base (``commit-tree``) and moves the base
  ref there with ``git update-ref``;
- ``delete-others``: ``git branch -D`` of every ``council/*`` branch but its own, and
  ``git update-ref -d`` of every ref under ``refs/council/``;
- ``add-base``: ``git worktree add --force FAULT_DIR <base>`` (past the
  check that the base is checked out already), then changes
  ``README.md`` there without committing;
- ``honest``: nothing more, after sleeping FAULT_SLEEP seconds;
- ``switch-base``: switches its own worktree to the base (``git switch
  --ignore-other-worktrees``) and leaves ``switched.txt`` uncommitted there.

FAULT_BASE names the base branch (``main`` when not given).
"""

import os
import subprocess
import time
from pathlib import Path


def git(*args: str, cwd: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


Path("work.txt").write_text("honest work\n")
base = os.environ.get("FAULT_BASE", "main")
how = os.environ["FAULT_REFS"]
common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir"))
own = git("symbolic-ref", "HEAD")

if how == "honest":
    time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))
elif how == "gc":
    main = str(common.parent)
    git("gc", "--quiet", cwd=main)
    git("pack-refs", "--all", cwd=main)
elif how == "move-base":
    tree = git("mktree", "--missing")  # an empty tree: a commit that deletes everything
    evil = git("commit-tree", tree, "-p", f"refs/heads/{base}", "-m", "evil")
    git("update-ref", f"refs/heads/{base}", evil)
elif how == "delete-others":
    for ref in git("for-each-ref", "--format=%(refname)", "refs/heads/council").split():
        if ref != own:
            git("branch", "-D", ref.removeprefix("refs/heads/"))
    for ref in git("for-each-ref", "--format=%(refname)", "refs/council").split():
        git("update-ref", "-d", ref)
elif how == "add-base":
    where = os.environ["FAULT_DIR"]
    git("worktree", "add", "--quiet", "--force", where, base)  # git's --ignore-other-worktrees
    with open(os.path.join(where, "README.md"), "a") as handle:
        handle.write("changed in a checkout of the base\n")
elif how == "switch-base":
    git("switch", "--quiet", "--ignore-other-worktrees", base)
    Path("switched.txt").write_text("left on the base\n")
print("done", flush=True)
