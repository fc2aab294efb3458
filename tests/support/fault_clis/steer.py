"""A CLI that tries to steer what the orchestrator takes from it (FAULT_STEER), beyond its files:

- ``pack-name``: builds a valid one-object pack in its own object store and names it like the
  repository's newest pack (readable through the common dir), so a take-in by name would
  replace that pack, and main's history with it;
- ``pack-link``: its store's ``pack/`` is a link to the repository's ``objects/pack`` (and a
  fan-out directory a link to the repository's), so a clean-up that follows links deletes the
  repository's objects;
- ``merge-head``: waits until its sibling landed (``main`` holds ``work.txt``), then writes
  ``MERGE_HEAD`` naming main's tip into its worktree's git dir, so a ``git commit`` would
  conclude that merge with a tree that lacks the sibling's file;
- ``cli-merge``: waits for the sibling the same way, then merges main into its branch itself,
  deletes the sibling's ``work.txt`` and commits;
- ``assume-unchanged``: stages ``staged`` for ``steer.txt``, marks it ``assume-unchanged`` and
  leaves ``worktree`` in the file, so git's index and the file a reviewer reads differ.

Every mode writes ``steer.txt`` (its work) and leaves it uncommitted but for ``cli-merge``.
"""

import os
import subprocess
import time
from pathlib import Path


def git(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, input=stdin)
    return done.stdout.strip()


def wait_for_sibling() -> str:
    """main's tip once it holds the sibling's work (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = subprocess.run(["git", "cat-file", "-e", "main:work.txt"], capture_output=True)
        if shown.returncode == 0:
            return git("rev-parse", "main")
        time.sleep(0.1)
    raise SystemExit("the sibling never landed")


how = os.environ["FAULT_STEER"]
common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir"))
admin = Path(git("rev-parse", "--path-format=absolute", "--git-dir"))
own = Path(os.environ.get("GIT_OBJECT_DIRECTORY", common / "objects"))
shared = common / "objects"
Path("steer.txt").write_text("worktree\n")

if how == "pack-name":
    packs = sorted((shared / "pack").glob("*.pack"), key=lambda p: p.stat().st_mtime)
    blob = git("hash-object", "-w", "--stdin", stdin="a blob of the CLI's\n")
    (own / "pack").mkdir(parents=True, exist_ok=True)
    made = git("pack-objects", str(own / "pack" / "made"), stdin=blob + "\n")
    for suffix in (".pack", ".idx"):
        os.replace(own / "pack" / f"made-{made}{suffix}", own / "pack" / (packs[-1].stem + suffix))
elif how == "pack-link":
    git("hash-object", "-w", "--stdin", stdin="another blob of the CLI's\n")
    if (own / "pack").is_dir():
        os.rmdir(own / "pack")
    os.symlink(shared / "pack", own / "pack")
    fanouts = sorted(p.name for p in shared.iterdir() if len(p.name) == 2 and p.is_dir())
    for fanout in fanouts:
        if not (own / fanout).exists():
            os.symlink(shared / fanout, own / fanout)
elif how == "merge-head":
    tip = wait_for_sibling()
    (admin / "MERGE_HEAD").write_text(tip + "\n")
    (admin / "MERGE_MSG").write_text("Merge the sibling\n")
elif how == "cli-merge":
    wait_for_sibling()
    git("-c", "user.name=cli", "-c", "user.email=cli@x", "merge", "-q", "--no-edit", "main")
    os.unlink("work.txt")
    git("add", "-A")
    git("-c", "user.name=cli", "-c", "user.email=cli@x", "commit", "-q", "-m", "mine")
elif how == "assume-unchanged":
    Path("steer.txt").write_text("staged\n")
    git("add", "steer.txt")
    git("update-index", "--assume-unchanged", "steer.txt")
    Path("steer.txt").write_text("worktree\n")
else:
    raise SystemExit(f"unknown FAULT_STEER {how}")
print("done")
