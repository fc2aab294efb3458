"""Hangs: one line of output, then nothing, forever; FAULT_IGNORE_TERM=1 ignores SIGTERM."""

import os
import signal
import sys
import time

if os.environ.get("FAULT_IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("working on it", flush=True)
sys.stdout.flush()
while True:
    time.sleep(3600)
