"""A stand-in for claude (its stream-json result line) that reports what it finds of the
user's logins in its HOME: for each HOME-relative path given in LOGIN_PROBE_PATHS, whether it
is a link, where to, and whether it can be read through it (never the content). It writes
the report into its worktree as ``logins-seen.json`` (the change the build lands), with the
login variables it got. With LOGIN_PROBE_RESAVE set to a path, it saves that login anew the
way qwen does: a new file renamed over the link."""

import json
import os
import sys
from pathlib import Path

home = Path(os.environ["HOME"])
seen = {}
for relative in filter(None, os.environ.get("LOGIN_PROBE_PATHS", "").split(":")):
    path = home / relative
    entry = {"link": path.is_symlink(), "exists": path.exists()}
    if entry["link"]:
        entry["target"] = os.readlink(path)
    if path.is_file():
        entry["readable"] = len(path.read_bytes()) > 0
    seen[relative] = entry
variables = {name: name in os.environ for name in ("AWS_PROFILE", "CLAUDE_CODE_OAUTH_TOKEN")}
Path("logins-seen.json").write_text(json.dumps({"paths": seen, "variables": variables}, indent=2))
leak = os.environ.get("LOGIN_PROBE_LEAK")
if leak:  # copies a login it can read into its work, as a careless CLI might
    Path("leaked.json").write_text((home / leak).read_text())

resave = os.environ.get("LOGIN_PROBE_RESAVE")
if resave:
    target = home / resave
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(os.environ["LOGIN_PROBE_NEW_CONTENT"])
    os.replace(temporary, target)

print(json.dumps({"type": "system", "subtype": "init", "session_id": "probe-session"}), flush=True)
result = {"type": "result", "subtype": "success", "is_error": False, "result": "looked"}
print(json.dumps({**result, "session_id": "probe-session"}), flush=True)
sys.exit(0)
