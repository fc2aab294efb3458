"""``council demo``: the offline demo from the config shipped in the package, written to
``--dir`` (default ``.council-demo``) and run as ``council run`` runs it; piped, in a terminal
at 80 and 160 columns, and with ``--json``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

from orchestrator.run.demo_config import shipped_demo_config
from tests.support.cli_process_helpers import COUNCIL, ENV
from tests.support.timing import patience
from tests.support.worktree_helpers import git

ROOT = Path(__file__).resolve().parents[2]
TASKS = 7
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def council(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """``council ARGS`` with its output piped."""
    return subprocess.run(
        [*COUNCIL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**ENV, "COLUMNS": str(columns)},
        timeout=patience(240),
    )


def in_terminal(*args: str, cwd: Path, columns: int) -> tuple[int, str]:
    """``council ARGS`` in a pseudo-terminal ``columns`` wide: its exit code and what it
    showed (stdout and stderr together, escape sequences removed)."""
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**ENV, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    with subprocess.Popen([*COUNCIL, *args], cwd=cwd, stdout=sub, stderr=sub, env=env) as process:
        os.close(sub)
        shown = bytearray()
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side closed with the process
                break
            if not chunk:
                break
            shown += chunk
        os.close(main)
        code = process.wait(timeout=patience(60))
    return code, _ESCAPES.sub("", shown.decode(errors="replace")).replace("\r", "")


def test_the_shipped_config_is_configs_demo_yaml_but_for_its_repository() -> None:
    checkout = (ROOT / "configs" / "demo.yaml").read_bytes()
    shipped = shipped_demo_config()
    assert shipped == (ROOT / "orchestrator" / "run" / "demo.yaml").read_bytes()
    assert b"\nrepo: repo\n" in shipped
    assert checkout.replace(b"\nrepo: ../.council-demo/repo\n", b"\nrepo: repo\n") == shipped


def test_the_demo_runs_every_task_in_the_directory_it_is_given(tmp_path: Path) -> None:
    # A directory name with a space: the commands the demo prints must still work pasted.
    first = council("demo", "--dir", "my demo", cwd=tmp_path, columns=80)

    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert lines[0] == "offline demo: my demo/demo.yaml (sample repository my demo/repo)"
    assert any(re.match(r"\d\d:\d\d:\d\d add-cli: landed on main", line) for line in lines)
    # The review that asks for a test sends write-tests back, and the line stream says so.
    sent_back = "write-tests: review sent the work back: build again (round 2)"
    assert any(line.endswith(sent_back) for line in lines), lines
    assert f"completed, {TASKS}/{TASKS} done, 0 failed" in first.stdout
    assert lines[-1] == "what landed: git -C 'my demo/repo' log --oneline --graph main"
    assert (tmp_path / "my demo" / "demo.yaml").read_bytes() == shipped_demo_config()
    repo = tmp_path / "my demo" / "repo"
    trailers = git(repo, "log", "--first-parent", "--format=%(trailers:key=Council-Task)", "main")
    assert trailers.count("Council-Task:") == TASKS
    assert not (tmp_path / ".council-demo").exists()

    # Again: every task is already done; --json keeps stdout the report alone.
    again = council("demo", "--dir", "my demo", "--json", cwd=tmp_path, columns=160)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert [t["status"] for t in report["tasks"]] == ["done"] * TASKS
    assert "offline demo: my demo/demo.yaml" in again.stderr
    assert "what landed" not in again.stdout + again.stderr

    piped = council("demo", "--dir", "my demo", cwd=tmp_path, columns=160)
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert piped.stdout.splitlines()[-1].startswith("what landed: git -C 'my demo/repo' log")
    for columns in (80, 160):
        code, shown = in_terminal("demo", "--dir", "my demo", cwd=tmp_path, columns=columns)
        assert code == 0, shown[-3000:]
        assert "offline demo: my demo/demo.yaml (sample repository my demo/repo)\n" in shown
        assert f"{TASKS}/{TASKS} done" in shown
        assert "what landed: git -C 'my demo/repo' log --oneline --graph main\n" in shown


def test_a_demo_config_someone_edited_is_never_overwritten(tmp_path: Path) -> None:
    config = tmp_path / ".council-demo" / "demo.yaml"  # the default --dir
    config.parent.mkdir()
    edited = shipped_demo_config().replace(b"sessions: 3", b"sessions: 1")
    config.write_bytes(edited)

    for columns in (80, 160):
        refused = council("demo", cwd=tmp_path, columns=columns)

        assert refused.returncode == 2
        assert refused.stdout == ""
        assert refused.stderr.splitlines() == [
            "error: .council-demo/demo.yaml is not this version's demo config (edited, or "
            "written by another version): run it as it is with `council run "
            ".council-demo/demo.yaml`, or remove it and run `council demo`"
        ]
    assert config.read_bytes() == edited
    assert sorted(p.name for p in config.parent.iterdir()) == ["demo.yaml"]


def test_a_directory_that_cannot_be_made_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a directory\n")

    refused = council("demo", "--dir", "taken/demo", cwd=tmp_path)

    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: cannot make the demo's directory taken/demo: Not a directory"
    ]
    assert (tmp_path / "taken").read_text() == "a file, not a directory\n"


def test_the_help_names_the_command_its_options_and_exit_codes(tmp_path: Path) -> None:
    for columns in (80, 160):
        listed = council("--help", cwd=tmp_path, columns=columns)
        assert listed.returncode == 0
        assert re.search(r"^│ demo +Run the offline demo", listed.stdout, re.MULTILINE)

        helped = council("demo", "-h", cwd=tmp_path, columns=columns)
        assert helped.returncode == 0
        assert all(len(line) <= columns for line in helped.stdout.splitlines())
        said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", helped.stdout).split())
        assert "--dir" in said and "Where the demo's config and sample repository go." in said
        assert "[default: .council-demo]" in said
        assert "--json" in said and "Print the report as JSON." in said
        assert (
            "Exit codes: 0 all done, 1 some task did not land, 2 usage or config error,"
            " 130 interrupted." in said
        )
