"""Does its work and writes a test of its own, ``check_escape.py``, that tries to reach beyond
the worktree when the orchestrator runs it as a verify command: write ``~/.ssh/x``, read
``~/.aws/credentials``, add a filter to ``.git/config``, plant a hook, write the user's
checkout. It prints each attempt and exits 1 when any got through. The user's HOME
(``FAULT_USER_HOME``) is written into the test as a path: the test's own ``HOME`` is the
session's private one."""

import os
from pathlib import Path

user_home = os.environ["FAULT_USER_HOME"]

Path("work.txt").write_text("honest work\n")
Path("check_escape.py").write_text(
    """import os
import subprocess
from pathlib import Path

home = Path(USER_HOME)
repo = Path(subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True,
                           text=True, check=True).stdout.strip()).resolve().parent
tries = {
    "write ~/.ssh/x": lambda: (home / ".ssh" / "x").write_text("escaped"),
    "read ~/.aws/credentials": lambda: (home / ".aws" / "credentials").read_text(),
    "write .git/config": lambda: open(repo / ".git" / "config", "a").write("[x]\\\\n"),
    "plant a hook": lambda: (repo / ".git" / "hooks" / "post-merge").write_text("#!/bin/sh"),
    "write the user's checkout": lambda: (repo / "planted.txt").write_text("escaped"),
    "write ~/.bashrc": lambda: open(home / ".bashrc", "a").write("# escaped"),
}
got = []
for name, attempt in tries.items():
    try:
        attempt()
    except OSError as exc:
        print(f"refused: {name}: {type(exc).__name__}")
    else:
        print(f"escaped: {name}")
        got.append(name)
raise SystemExit(1 if got else 0)
""".replace("USER_HOME", repr(user_home))
)
print("done", flush=True)
