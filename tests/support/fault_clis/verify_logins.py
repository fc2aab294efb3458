"""Does its work and writes a test of its own, ``check_logins.py``, which the orchestrator runs
as a verify command: it tries to read each login ``FAULT_LOGINS`` lists (HOME-relative,
``:``-separated) in the user's HOME (``FAULT_USER_HOME``, written into the test as a path) and
in whatever ``HOME`` it is given (that one first), printing what it read; it tries to write
``.cache/x`` in both. What it read and wrote where (names only, never a content) and its
environment's HOME and XDG directories go into ``result.json`` in that ``HOME``. It exits 1
when it read or wrote anything of the user's, or always with ``FAULT_VERIFY_FAILS=1``."""

import os
from pathlib import Path

user_home = os.environ["FAULT_USER_HOME"]
logins = os.environ["FAULT_LOGINS"].split(":")
fails = os.environ.get("FAULT_VERIFY_FAILS") == "1"
Path("work.txt").write_text("honest work\n")
Path("check_logins.py").write_text(
    f"""import json, os, sys
from pathlib import Path

USER_HOME = Path({user_home!r})
LOGINS = {logins!r}
home = Path(os.environ.get("HOME", "/nonexistent"))
result = {{"read": [], "wrote": [], "env": {{}}}}
for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "TMPDIR"):
    result["env"][name] = os.environ.get(name)
for base, where in ((home, "given"), (USER_HOME, "user")):
    for login in LOGINS:
        try:
            text = (base / login).read_text()
        except OSError as exc:
            print(f"refused: read {{where}} ~/{{login}}: {{type(exc).__name__}}")
        else:
            print(f"read {{where}} ~/{{login}}:")
            print(text)
            result["read"].append(f"{{where}}:{{login}}")
    try:
        (base / ".cache").mkdir(exist_ok=True)
        (base / ".cache" / "x").write_text("escaped")
    except OSError as exc:
        print(f"refused: write {{where}} ~/.cache/x: {{type(exc).__name__}}")
    else:
        result["wrote"].append(f"{{where}}:.cache/x")
(home / "result.json").write_text(json.dumps(result))
escaped = any(entry.startswith("user:") for entry in result["read"] + result["wrote"])
sys.exit(1 if {fails!r} or escaped else 0)
"""
)
print("done", flush=True)
