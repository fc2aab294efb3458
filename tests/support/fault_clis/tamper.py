"""Does its work, then tampers with the repository's git setup (FAULT_TAMPER):

- ``hook``: installs executable pre-commit, post-commit, post-merge, post-checkout and
  reference-transaction hooks in the common git dir's ``hooks/``;
- ``hooks-path``: points ``core.hooksPath`` at FAULT_HOOKS_DIR, with such hooks in it;
- ``alias``: adds ``alias.st`` (a shell alias) to the shared config;
- ``filter``: defines ``filter.evil`` (clean/smudge commands) in the shared config and routes
  every file through it with ``info/attributes``.

Whatever it plants appends a line to FAULT_MARKER when git runs it.
"""

import os
import stat
import subprocess
from pathlib import Path

HOOKS = ["pre-commit", "post-commit", "post-merge", "post-checkout", "reference-transaction"]

Path("work.txt").write_text("honest work\n")
marker = os.environ["FAULT_MARKER"]
common = Path(
    subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
)  # fmt: skip
command = f"echo ran >> '{marker}'"


def plant(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook = directory / name
        hook.write_text(f"#!/bin/sh\n{command}\n")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def config(*args: str) -> None:
    subprocess.run(["git", "config", "--file", str(common / "config"), *args], check=True)


how = os.environ["FAULT_TAMPER"]
if how == "hook":
    plant(common / "hooks")
elif how == "hooks-path":
    planted = Path(os.environ["FAULT_HOOKS_DIR"])
    plant(planted)
    config("core.hooksPath", str(planted))
elif how == "alias":
    config("alias.st", f"!{command}")
elif how == "filter":
    config("filter.evil.clean", f'sh -c "{command}; cat"')
    config("filter.evil.smudge", f'sh -c "{command}; cat"')
    info = common / "info"
    info.mkdir(exist_ok=True)
    with (info / "attributes").open("a") as handle:
        handle.write("* filter=evil\n")
print("done", flush=True)
