"""Floods stdout: FAULT_FLOOD=lines (FAULT_BYTES of 64 KiB lines), line (FAULT_BYTES in one
line without a newline), binary (FAULT_BYTES of invalid UTF-8 in 64 KiB lines) or answer
(a final JSON result of FAULT_BYTES characters, for ``output: jsonl``)."""

import json
import os
import sys
from pathlib import Path

Path("work.txt").write_text("written before the flood\n")
kind = os.environ.get("FAULT_FLOOD", "lines")
total = int(os.environ.get("FAULT_BYTES", str(1 << 30)))
if kind == "answer":
    print(json.dumps({"type": "result", "result": "the answer is " + "A" * total}), flush=True)
    sys.exit(0)
size = 1 << 16
if kind == "line":
    chunk = b"x" * (1 << 20)
elif kind == "binary":
    chunk = (b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x82" * (size // 8))[: size - 1] + b"\n"
else:
    chunk = b"y" * (size - 1) + b"\n"
block = chunk * max(1, (1 << 20) // len(chunk))  # about 1 MiB per write
out = sys.stdout.buffer
written = 0
while written < total:
    out.write(block)
    written += len(block)
out.flush()
sys.exit(0)
