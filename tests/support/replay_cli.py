"""A stand-in CLI that prints one recorded run of a real CLI and exits with its code.

Which run: ``REPLAY_DIR`` (a ``tests/support/transcripts/...`` directory) and ``REPLAY_CASE``
from the environment (the run config's adapter ``env``). Its arguments are ignored: the built-in
adapter in front of it builds the real CLI's command, then parses what that CLI printed.
"""

import json
import os
import sys
from pathlib import Path

base = Path(os.environ["REPLAY_DIR"]) / os.environ["REPLAY_CASE"]
meta = json.loads(base.with_name(f"{base.name}.meta.json").read_text(encoding="utf-8"))
sys.stdout.write(base.with_name(f"{base.name}.stdout.txt").read_text(encoding="utf-8"))
sys.stderr.write(base.with_name(f"{base.name}.stderr.txt").read_text(encoding="utf-8"))
sys.exit(int(meta["rc"]))
