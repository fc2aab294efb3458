"""Stands in for any CLI (an adapter's ``executable:``) and reports how its prompt reached it:
its arguments, all of stdin (read to the end when stdin is not a terminal), and the content of
the file after ``--message-file`` (aider's way in), as JSON into ``PROMPT_PROBE_OUT``. Then
it says one line of Claude-like stream-json, so a parser has something to read."""

import json
import os
import sys
from pathlib import Path

args = sys.argv[1:]
stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
message_file = None
if "--message-file" in args:
    message_file = Path(args[args.index("--message-file") + 1]).read_text(encoding="utf-8")
report = {"argv": args, "stdin": stdin, "message_file": message_file}
Path(os.environ["PROMPT_PROBE_OUT"]).write_text(json.dumps(report), encoding="utf-8")
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "read"}))
