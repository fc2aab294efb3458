"""The fixes ``council init`` and ``council doctor`` print: the install lines pin the releases
the real-CLI tier tests (``.ci/cli-versions.txt``), and git's version is read as git says it
on each system."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.git.version import parse_git_version
from orchestrator.run.setup.cli_fixes import PINNED, install_fix, login_fix

PINS = Path(__file__).parents[2] / ".ci" / "cli-versions.txt"


def test_the_install_lines_pin_the_releases_the_ci_installs() -> None:
    pins = {}
    for line in PINS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, registry, package, version = line.split()
            pins[name] = (registry, package, version)
    assert {name: (p.registry, p.package, p.version) for name, p in PINNED.items()} == pins


def test_install_and_login_lines() -> None:
    assert install_fix("codex", "codex") == "install codex: npm i -g @openai/codex@0.169.0"
    assert install_fix("aider", "aider", "adapters.aider.executable") == (
        "install aider: pipx install aider-chat==0.86.2, or set adapters.aider.executable"
    )
    assert install_fix("ollama", "ollama") == "install ollama: see https://ollama.com/download"
    assert install_fix("mycli", "mycli") == "install mycli and put it on PATH"
    assert login_fix("claude_code", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"]) == (
        "log in: run `claude` and type /login, or set ANTHROPIC_API_KEY"
    )
    assert login_fix("mycli", ["MYCLI_TOKEN"]) == "log in: set MYCLI_TOKEN"
    assert login_fix("mycli", []) == "log in: see the CLI's documentation"


@pytest.mark.parametrize(
    ("said", "numbers", "recent"),
    [
        ("git version 2.39.5\n", (2, 39, 5), True),
        ("git version 2.38.0", (2, 38, 0), True),
        ("git version 2.37.1 (Apple Git-137.1)", (2, 37, 1), False),
        ("git version 2.45.2.windows.1", (2, 45, 2), True),
        ("git version 3.0", (3, 0, 0), True),
    ],
)
def test_git_versions_as_each_system_says_them(
    said: str, numbers: tuple[int, int, int], recent: bool
) -> None:
    version = parse_git_version(said)
    assert version is not None
    assert version.numbers == numbers and version.recent_enough is recent
    assert version.text == said.strip()


@pytest.mark.parametrize("said", ["", "bash: git: command not found", "version 2.39"])
def test_anything_else_is_not_a_git_version(said: str) -> None:
    assert parse_git_version(said) is None
