"""Makes refs and files git keeps beside its own branch, for the blame tests (FAULT_STRAY).

It writes its work (``work.txt``), waits (up to 20 s, with ``FAULT_WAIT=1``) for a sibling
session (another worktree's admin directory) so the sessions overlap, then, from its worktree,
with real git:

- ``own``: ``git branch council/<its task>/99`` and ``council/<its task>/wip/x``: extra
  branches in its own ref directory (writable under the sandbox: its own branch lives there);
- ``sibling``: ``git branch council/<FAULT_SIBLING>/99``, a branch in the sibling task's
  namespace (only possible without a sandbox);
- ``sibling-packed``: the same ref written straight into ``packed-refs`` (only possible without a
  sandbox, where git's lock is the only thing in the way);
- ``reflog``: a line of garbage and an entry naming a missing object appended to its own
  branch's reflog, and a reflog for a ref that does not exist, in its own reflog directory;
- ``admin``: ``ORIG_HEAD`` (the sibling's branch tip) and a stray file into its own worktree's
  admin directory (its own reach: ``MERGE_HEAD`` and the like are the commit's to ignore).

Each step's outcome (done, or git's or the OS's error) is one line of ``stray.json`` in its
worktree. With ``FAULT_MARKER`` it does it the first time only (the marker is written then).
Then it sleeps FAULT_SLEEP seconds.
"""

import json
import os
import subprocess
import time
from pathlib import Path

results = []


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-300:])
    return done.stdout.strip()


def attempt(name, action):
    try:
        action()
    except Exception as exc:  # git, or the OS, said no
        results.append({"name": name, "done": False, "error": f"{type(exc).__name__}: {exc}"})
    else:
        results.append({"name": name, "done": True, "error": ""})


def first_time() -> bool:
    marker = os.environ.get("FAULT_MARKER")
    if not marker:
        return True
    if Path(marker).exists():
        return False
    Path(marker).write_text("done\n")
    return True


def wait_for_sibling(common: Path) -> None:
    """Until another worktree's admin directory is there (its worktree itself may be hidden)."""
    own = Path(git("rev-parse", "--path-format=absolute", "--git-dir"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(admin != own for admin in (common / "worktrees").iterdir()):
            return
        time.sleep(0.05)


def append(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


Path("work.txt").write_text("honest work\n")
how = os.environ["FAULT_STRAY"]
common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir"))
admin = Path(git("rev-parse", "--path-format=absolute", "--git-dir"))
own = git("symbolic-ref", "HEAD")  # refs/heads/council/<task>/<n>
task = own.split("/")[3]
if os.environ.get("FAULT_WAIT") == "1":
    wait_for_sibling(common)
sibling = os.environ.get("FAULT_SIBLING", "sibling")
head = git("rev-parse", "HEAD")
missing = "1" * 40

if first_time():
    if how == "own":
        attempt("own 99", lambda: git("branch", f"council/{task}/99"))
        attempt("own wip/x", lambda: git("branch", f"council/{task}/wip/x"))
    elif how == "sibling":
        attempt("sibling 99", lambda: git("branch", f"council/{sibling}/99"))
    elif how == "sibling-packed":
        line = f"{head} refs/heads/council/{sibling}/99\n"
        attempt("sibling packed", lambda: append(common / "packed-refs", line))
    elif how == "reflog":
        log = common / "logs" / own
        entry = f"{head} {missing} Someone <x@y> 1700000000 +0000\tforged\n"
        attempt("garbage line", lambda: append(log, "garbage\n"))
        attempt("missing object", lambda: append(log, entry))
        attempt("log of no ref", lambda: append(log.with_name("ghost"), entry))
    elif how == "admin":
        tip = git("rev-parse", f"refs/heads/council/{sibling}/1")
        attempt("ORIG_HEAD", lambda: (admin / "ORIG_HEAD").write_text(tip + "\n"))
        attempt("stray file", lambda: (admin / "stray").write_text("x\n"))
Path("stray.json").write_text("".join(json.dumps(r) + "\n" for r in results))
time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))
print("done", flush=True)
