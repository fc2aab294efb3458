"""Issue 48: every command block of the README and the manual (``docs/*.md``) that a user can
run offline says so with an HTML comment on the line before it, ``<!-- run-offline -->``, and
runs here as the page says: from a fresh directory holding a copy of the checkout's
``configs/`` (the pages say "from the root of a checkout"), ``council`` on the PATH, each
block one ``bash -e`` script that must exit 0. A marker before anything but a ``bash``, ``sh``
or ``console`` block fails, so a marked block is never silently skipped."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.timing import patience

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- run-offline -->"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"<!-- run-offline -->\n```(\w*)\n(.*?)^```", re.S | re.M)


def _marked() -> list[tuple[str, str, str]]:
    """(page and block number, fence language, body) of every marked block."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for number, match in enumerate(_BLOCK.finditer(text), 1):
            found.append((f"{page.relative_to(ROOT)}#{number}", match[1], match[2]))
    return found


def _script(language: str, body: str) -> str:
    """The commands of a block: a console block's are its ``$ `` lines, the rest its output."""
    if language == "console":
        return "".join(line[2:] + "\n" for line in body.splitlines() if line.startswith("$ "))
    return body


BLOCKS = _marked()


def test_every_marker_stands_before_a_command_block() -> None:
    markers = sum(page.read_text().count(MARK) for page in PAGES)
    assert markers == len(BLOCKS), "a marker not directly before a fenced block"
    assert {language for _, language, _ in BLOCKS} <= {"bash", "sh", "console"}, BLOCKS
    assert len(BLOCKS) >= 4, BLOCKS  # --help, config validate, config schema, adapters check


@pytest.mark.parametrize(("where", "language", "body"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_an_offline_command_block_runs_as_the_page_says(
    tmp_path: Path, where: str, language: str, body: str
) -> None:
    script = _script(language, body)
    assert script.strip(), f"{where}: no command in the block"
    work = tmp_path / "checkout"
    shutil.copytree(ROOT / "configs", work / "configs")
    bin_dir = tmp_path / "bin"  # `council` as installed: this checkout's code
    bin_dir.mkdir()
    council = bin_dir / "council"
    council.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m orchestrator.cli.app "$@"\n')
    council.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HOME": str(tmp_path / "home"),  # nothing of the user's own read or written
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    before = set(work.rglob("*"))
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=patience(25),
    )
    assert done.returncode == 0, f"{where}:\n{script}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    made = set(work.rglob("*")) - before  # `council config schema > FILE` prints into FILE
    assert done.stdout.strip() or any(path.stat().st_size for path in made), f"{where}: no output"


def test_the_readme_is_one_screen_and_its_links_reach_the_manual() -> None:
    """The README is outside the site mkdocs checks: its own links are checked here."""
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 8 * 1024
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in local), targets
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, missing
    # Every page of the manual is reachable from the README or from its home page.
    index = (ROOT / "docs" / "index.md").read_text()
    linked = {Path(target).name for target in local} | set(re.findall(r"\]\(([\w.-]+\.md)", index))
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert pages - linked <= {"index.md"}, pages - linked
