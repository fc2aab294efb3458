"""Writes work.txt and a test of its own, ``check_env.py``, which dumps its whole environment
into ``env-dump.txt`` and prints it: the run config's verify command runs it. With
``FAULT_VERIFY_FAILS=1`` in this CLI's environment the test it writes fails after printing;
with ``FAULT_WRITE_ENV=<NAME>`` the CLI writes ``NAME=<its value>`` into work.txt itself;
with ``FAULT_PARENT_ENV=1`` it reads its parent's (the orchestrator's) environment through
``/proc`` and says it all, in a message and in its final answer."""

import json
import os
from pathlib import Path

work = "nothing secret here\n"
name = os.environ.get("FAULT_WRITE_ENV")
if name:
    work += f"{name}={os.environ.get(name, '')}\n"
Path("work.txt").write_text(work)
fails = os.environ.get("FAULT_VERIFY_FAILS") == "1"
Path("check_env.py").write_text(
    "import os, sys\n"
    "dump = ''.join(f'{name}={value}\\n' for name, value in sorted(os.environ.items()))\n"
    "open('env-dump.txt', 'w').write(dump)\n"
    "print(dump)\n"
    f"sys.exit({1 if fails else 0})\n"
)
said = "wrote work.txt and its test"
if os.environ.get("FAULT_PARENT_ENV") == "1":
    raw = Path(f"/proc/{os.getppid()}/environ").read_bytes()
    said += "; my parent has " + " ".join(raw.decode(errors="replace").split("\0"))
    print(json.dumps({"type": "message", "text": said}), flush=True)
print(json.dumps({"type": "result", "result": said}), flush=True)
