"""Echoes the secret in FAULT_CANARY_SECRET everywhere it can: stdout, stderr, its messages
and its final JSON result (as is, and JSON-escaped so only a JSON parser sees it whole).

With ``FAULT_CANARY_NAMES=A,B`` it echoes the values of A and B instead, and writes the SHA-256
of each (never the value) into ``canary-seen.txt`` in its worktree, so a test can tell the
CLI got them."""

import hashlib
import json
import os
import sys
from pathlib import Path

names = os.environ.get("FAULT_CANARY_NAMES", "FAULT_CANARY_SECRET").split(",")
values = [os.environ[name] for name in names]
secret = " ".join(values)
Path("work.txt").write_text("nothing secret here\n")
if "FAULT_CANARY_NAMES" in os.environ:
    digests = [hashlib.sha256(value.encode()).hexdigest() for value in values]
    seen = "".join(f"{name}={digest}\n" for name, digest in zip(names, digests, strict=True))
    Path("canary-seen.txt").write_text(seen)
print(json.dumps({"type": "message", "text": f"my key is {secret}"}), flush=True)
print(f"stderr: key={secret}", file=sys.stderr, flush=True)
escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
print(json.dumps({"type": "message", "text": f"again: {secret}"}), flush=True)
# Only a JSON parser sees this one whole: the raw line holds the secret \u-escaped.
print('{"type": "result", "result": "done; the key was ' + escaped + '"}', flush=True)
