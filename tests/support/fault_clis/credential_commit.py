"""Commits on its own branch the files ``FAULT_FILES`` names (a JSON object: path -> content),
as a CLI that printed a credential nobody declared into a file and committed it would."""

import json
import os
import subprocess
from pathlib import Path

for name, content in json.loads(os.environ.get("FAULT_FILES", "{}")).items():
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
Path("work.txt").write_text("the work\n")
subprocess.run(["git", "add", "-A"], check=True)
subprocess.run(["git", "commit", "-q", "-m", "add the work"], check=True)
print("committed", flush=True)
