"""Dies by a signal it sends itself (FAULT_SIGNAL: KILL or SEGV), after some work."""

import os
import signal
from pathlib import Path

Path("work.txt").write_text("half done\n")
print("about to die", flush=True)
os.kill(os.getpid(), getattr(signal, "SIG" + os.environ.get("FAULT_SIGNAL", "KILL")))
