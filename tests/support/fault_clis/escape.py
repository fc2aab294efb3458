"""Tries every way out of its worktree, records what happened, then does honest work.

Each attempt is one line of ``escapes.json`` in its worktree (committed with its work):
``{"name": ..., "done": true|false, "error": "..."}``. ``FAULT_USER_HOME`` is the user's real
HOME (the CLI's own HOME is a private one), ``FAULT_REMOTE`` a remote to push to. It waits (up
to 20 s) for a sibling session, found through git's admin dirs, and aims at it. With
``FAULT_COMMIT=1`` it also commits its work on its own branch itself (as aider does)."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

results = []
user_home = Path(os.environ["FAULT_USER_HOME"])
here = Path.cwd()
council = here.parent.parent  # <repo>/.council/worktrees/<me> -> <repo>/.council
repo = council.parent
git_dir = repo / ".git"
admin = Path((here / ".git").read_text().removeprefix("gitdir: ").strip())


def attempt(name, action):
    try:
        action()
    except Exception as exc:  # the OS, or git, said no
        results.append({"name": name, "done": False, "error": f"{type(exc).__name__}: {exc}"})
    else:
        results.append({"name": name, "done": True, "error": ""})


def git(*args):
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-300:])
    return done.stdout


def write(path, text="escaped\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


attempt("write ~/.ssh/x", lambda: write(user_home / ".ssh" / "x"))
attempt("read ~/.aws/credentials", lambda: (user_home / ".aws" / "credentials").read_text())
attempt("write .git/config", lambda: git("config", "--local", "filter.x.clean", "cat"))


def append(path, text):
    with open(path, "a") as handle:
        handle.write(text)


attempt("append .git/config", lambda: append(git_dir / "config", "[x]\n\ty = 1\n"))
attempt("plant a hook", lambda: write(git_dir / "hooks" / "pre-commit", "#!/bin/sh\n"))
attempt("write info/attributes", lambda: write(git_dir / "info" / "attributes", "* filter=x\n"))
deadline = time.monotonic() + 20
while True:
    others = [d for d in os.listdir(git_dir / "worktrees") if d != admin.name]
    if others or time.monotonic() > deadline:
        break
    time.sleep(0.05)
sibling_admin = git_dir / "worktrees" / (others[0] if others else "none")
sibling_tree = Path((sibling_admin / "gitdir").read_text().strip()).parent if others else here
sibling_branch = (
    (sibling_admin / "HEAD").read_text().strip().removeprefix("ref: ") if others else "none"
)
results.append({"name": "found a sibling", "done": bool(others), "error": str(sibling_tree)})
attempt("write a sibling's worktree", lambda: write(sibling_tree / "x.txt"))
attempt("delete a sibling's admin dir", lambda: shutil.rmtree(sibling_admin))
attempt("write the user's checkout", lambda: write(repo / "planted.txt"))
attempt("redirect its .git file", lambda: (here / ".git").write_text("gitdir: /tmp/evil\n"))
attempt(
    "point its admin dir elsewhere",
    lambda: (admin / "commondir").write_text("/tmp/evil\n"),
)
attempt("move the base", lambda: git("update-ref", "refs/heads/main", "HEAD"))
attempt("move a sibling's branch", lambda: git("update-ref", sibling_branch, "HEAD"))
attempt("read the orchestrator's state", lambda: os.listdir(council / "state"))


def shared_object():
    for fanout in sorted(os.listdir(git_dir / "objects")):
        if len(fanout) == 2:
            return next((git_dir / "objects" / fanout).iterdir())
    return next((git_dir / "objects" / "pack").iterdir())


attempt("delete a shared object", lambda: shared_object().unlink())
attempt(
    "plant an object in the shared store", lambda: write(git_dir / "objects" / "ab" / ("c" * 38))
)
if os.environ.get("FAULT_REMOTE"):
    attempt("git push", lambda: git("push", os.environ["FAULT_REMOTE"], "HEAD:refs/heads/main"))

Path("work.txt").write_text("honest work\n")
Path("escapes.json").write_text("".join(json.dumps(r) + "\n" for r in results))
if os.environ.get("FAULT_COMMIT") == "1":
    attempt("commit on its own branch", lambda: (git("add", "-A"), git("commit", "-qm", "mine")))
    Path("escapes.json").write_text("".join(json.dumps(r) + "\n" for r in results))
    git("add", "-A")
    git("commit", "-qm", "the report")
print("done", flush=True)
