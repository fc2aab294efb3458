"""Echoes the secret in FAULT_CANARY_SECRET everywhere it can: stdout, stderr, its messages
and its final JSON result (as is, and JSON-escaped so only a JSON parser sees it whole)."""

import json
import os
import sys
from pathlib import Path

secret = os.environ["FAULT_CANARY_SECRET"]
Path("work.txt").write_text("nothing secret here\n")
print(json.dumps({"type": "message", "text": f"my key is {secret}"}), flush=True)
print(f"stderr: key={secret}", file=sys.stderr, flush=True)
escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
print(json.dumps({"type": "message", "text": f"again: {secret}"}), flush=True)
# Only a JSON parser sees this one whole: the raw line holds the secret \u-escaped.
print('{"type": "result", "result": "done; the key was ' + escaped + '"}', flush=True)
