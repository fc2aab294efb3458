"""Commits on its own branch (as aider does) with the value of the variable ``FAULT_LEAK_NAME``
written where ``FAULT_LEAK_IN`` says (comma-separated): ``file`` (in a file's content),
``path`` (in a file's name), ``message`` (in the commit message), ``base64`` (base64-encoded
in a file), ``author`` (as the author's email), ``wrapped`` (in a file, split over two lines),
``base64wrapped`` (base64-encoded in a file, wrapped every 8 characters). With none of them it
commits clean work."""

import base64
import os
import subprocess
from pathlib import Path

value = os.environ.get(os.environ.get("FAULT_LEAK_NAME", ""), "")
places = {place for place in os.environ.get("FAULT_LEAK_IN", "").split(",") if place}
Path("work.txt").write_text("nothing secret here\n")
if "file" in places:
    Path("settings.env").write_text(f"API_KEY={value}\n")
if "path" in places:
    Path("keys").mkdir(exist_ok=True)
    Path("keys", f"{value}.pem").write_text("a key file\n")
if "base64" in places:
    Path("docker.json").write_text(f'{{"auth": "{base64.b64encode(value.encode()).decode()}"}}\n')
if "wrapped" in places:
    half = len(value) // 2
    Path("wrapped.txt").write_text(f"token = {value[:half]}\n    {value[half:]}\n")
if "base64wrapped" in places:
    encoded = base64.b64encode(value.encode()).decode()
    lines = [encoded[start : start + 8] for start in range(0, len(encoded), 8)]
    Path("blob.b64").write_text("\n".join(lines) + "\n")
message = f"add the work with {value}" if "message" in places else "add the work"
env = dict(os.environ)
if "author" in places:
    env["GIT_AUTHOR_EMAIL"] = f"{value}@example.com"
subprocess.run(["git", "add", "-A"], check=True)
subprocess.run(["git", "commit", "-q", "-m", message], check=True, env=env)
print("committed", flush=True)
