"""A known secret a real CLI prints wrapped over lines (a terminal's wrap, ``base64 -w 12``, a
message whose text breaks inside it), on stdout and stderr, lands nowhere: no byte of any file
under ``.council/`` (logs, events, records, handoffs, checkpoints) nor the run's report holds
it in any form of ``secret_forms``, whitespace inserted or not. The scripted CLI
(``adapters/scripted_cli.py``) prints it, through a whole ``Council`` run, file backend."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_stream import squeeze
from tests.support.fault_helpers import FaultRun

PRINTS = (
    "PRINT_ENV MY_TOKEN width=20\n"
    "PRINT_ENV MY_TOKEN width=12 base64\n"
    "PRINT_ENV MY_TOKEN width=16 stderr\n"
    "PRINT_ENV MY_TOKEN width=12 base64 stderr\n"
    "PRINT_ENV MY_TOKEN width=24 say\n"
    "WRITE notes.txt nothing secret here\n"
)


def found(data: bytes, value: str) -> list[bytes]:
    """The forms of ``value`` in ``data``, its whitespace (and JSON's escaped line breaks)
    taken out."""
    flat = squeeze(data.replace(b"\\n", b"").replace(b"\\r", b"").replace(b"\\t", b""))
    return [form.needle for form in forms(value) if squeeze(form.needle) in flat]


async def test_a_wrapped_token_printed_by_a_real_cli_is_in_no_stored_byte(
    tmp_path: Path,
) -> None:
    value = f"wrapped{secrets.token_hex(20)}"
    run = FaultRun(tmp_path, "secret_commit.py")
    config = run.config()
    config["adapters"]["fault"] = {
        "type": "scripted",
        "options": {"delay": 0},
        "env": {"MY_TOKEN": value},
    }
    config["tasks"][0]["prompt"] = PRINTS
    run.config_path.write_text(json.dumps(config, indent=2))

    report = await run.run_here()

    assert report["tasks"][0]["status"] == "done", report["tasks"]
    assert not found(json.dumps(report).encode(), value)
    logs = run.logs()
    assert logs and b"***" in b"".join(log.read_bytes() for log in logs)
    stored = 0
    for path in run.files():
        data = path.read_bytes()
        stored += len(data)
        assert not found(data + str(path).encode(), value), path
    assert stored > 0
