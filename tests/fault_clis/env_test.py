"""Writes work.txt and a test of its own, ``check_env.py``, which dumps its whole environment
into ``env-dump.txt`` and prints it: the run config's verify command runs it. With
``FAULT_VERIFY_FAILS=1`` in this CLI's environment the test it writes fails after printing;
with ``FAULT_WRITE_ENV=<NAME>`` the CLI writes ``NAME=<its value>`` into work.txt itself."""

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
print('{"type": "result", "result": "wrote work.txt and its test"}', flush=True)
