"""Writes work.txt and a test of its own, ``check_env.py``, which dumps its whole environment
into ``env-dump.txt`` and prints it: the verify command of the run config runs it. With
``FAULT_VERIFY_FAILS=1`` in this CLI's environment the test it writes fails after printing."""

import os
from pathlib import Path

Path("work.txt").write_text("nothing secret here\n")
fails = os.environ.get("FAULT_VERIFY_FAILS") == "1"
Path("check_env.py").write_text(
    "import os, sys\n"
    "dump = ''.join(f'{name}={value}\\n' for name, value in sorted(os.environ.items()))\n"
    "open('env-dump.txt', 'w').write(dump)\n"
    "print(dump)\n"
    f"sys.exit({1 if fails else 0})\n"
)
print('{"type": "result", "result": "wrote work.txt and its test"}', flush=True)
