"""Looks for a way to push as the user, from inside its session, and writes what it found into
``creds.json`` in its worktree (committed with its work): what ``git credential fill`` answers
for ``FAULT_URL`` (an https remote), whether ``SSH_AUTH_SOCK`` is set and its socket reachable,
and whether the user's ``~/.git-credentials``, ``~/.ssh/id_ed25519`` and ``~/.gitconfig`` (under
``FAULT_USER_HOME``) can be read. It never prints a credential: only whether one was there."""

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

url = urlsplit(os.environ["FAULT_URL"])
asked = f"protocol={url.scheme}\nhost={url.hostname}\npath={url.path.lstrip('/')}\n\n"
env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
filled = subprocess.run(
    ["git", "credential", "fill"], input=asked, capture_output=True, text=True, env=env
)
found = {
    "credential": "password=" in filled.stdout,
    "credential_error": filled.stderr.strip()[-200:],
    "ssh_agent_env": "SSH_AUTH_SOCK" in os.environ,
    "ssh_agent_socket": os.path.exists(os.environ.get("FAULT_AGENT", "/nonexistent")),
}
home = Path(os.environ["FAULT_USER_HOME"])
for name in (".git-credentials", ".ssh/id_ed25519", ".gitconfig"):
    try:
        (home / name).read_bytes()
        found[name] = True
    except OSError:
        found[name] = False
Path("creds.json").write_text(json.dumps(found, sort_keys=True) + "\n")
print("looked", flush=True)
