"""Plants symbolic links where the orchestrator writes next, then does its work and exits 0.

FAULT_OUTSIDE is a directory outside the repository. FAULT_LINKS=temp makes the temp name
the orchestrator once wrote this phase's handoff through (``.council/handoff/build.json.tmp``)
a link to a file there; ``file`` the handoff file itself (``build.json``); ``dir`` the
``.council/handoff`` directory, a link to FAULT_OUTSIDE.
"""

import os
import sys
from pathlib import Path

outside = Path(os.environ["FAULT_OUTSIDE"])
handoff = Path(".council", "handoff")
if os.environ.get("FAULT_LINKS") == "dir":
    handoff.parent.mkdir(parents=True, exist_ok=True)
    if handoff.is_dir() and not handoff.is_symlink():
        for leftover in handoff.iterdir():
            leftover.unlink()
        handoff.rmdir()
    handoff.symlink_to(outside, target_is_directory=True)
else:
    handoff.mkdir(parents=True, exist_ok=True)
    name = "build.json.tmp" if os.environ.get("FAULT_LINKS") == "temp" else "build.json"
    (handoff / name).unlink(missing_ok=True)
    (handoff / name).symlink_to(outside / f"victim-{name}")
Path("work.txt").write_text("work next to a trap\n")
print("done", flush=True)
sys.exit(0)
