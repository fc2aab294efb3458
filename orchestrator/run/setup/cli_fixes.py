"""What to do about a CLI that is missing or has no login: one line each, for ``council init``
and ``council doctor``.

The install lines pin the releases the project's real-CLI tests run against
(``.ci/cli-versions.txt``, which is not shipped in the package; a test keeps the two the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PINNED", "Pinned", "install_fix", "login_fix"]


@dataclass(frozen=True)
class Pinned:
    """One CLI release: its command's name, the registry and package it comes from."""

    binary: str
    registry: str  # npm | pypi
    package: str
    version: str

    @property
    def install(self) -> str:
        if self.registry == "npm":
            return f"npm i -g {self.package}@{self.version}"
        return f"pipx install {self.package}=={self.version}"


PINNED: dict[str, Pinned] = {
    pin.binary: pin
    for pin in (
        Pinned("claude", "npm", "@anthropic-ai/claude-code", "2.1.332"),
        Pinned("codex", "npm", "@openai/codex", "0.169.0"),
        Pinned("gemini", "npm", "@google/gemini-cli", "0.61.0"),
        Pinned("qwen", "npm", "@qwen-code/qwen-code", "0.24.4"),
        Pinned("opencode", "npm", "opencode-ai", "1.18.33"),
        Pinned("aider", "pypi", "aider-chat", "0.86.2"),
    )
}

# How each built-in CLI is logged in, in its own words; the key variables come from the
# adapter, so a plugin's CLI gets a useful line too.
_LOGINS = {
    "claude_code": "run `claude` and type /login",
    "codex": "run `codex login`",
    "gemini": "run `gemini` and choose Login with Google",
    "qwen": "put the key in ~/.qwen/.env",  # its OAuth free tier was discontinued (2026-04-15)
    "opencode": "run `opencode auth login`",
    "aider": "put the key in ~/.env",
}
_OTHER_INSTALLS = {"ollama": "see https://ollama.com/download"}


def install_fix(adapter_type: str, binary: str, setting: str | None = None) -> str:
    """How to get ``binary`` onto PATH; ``setting`` names the config key that could point at
    it instead (``adapters.<name>.executable``)."""
    pin = PINNED.get(binary)
    how = pin.install if pin else _OTHER_INSTALLS.get(adapter_type)
    line = f"install {binary}: {how}" if how else f"install {binary} and put it on PATH"
    return f"{line}, or set {setting}" if setting else line


def login_fix(adapter_type: str, key_names: Sequence[str]) -> str:
    """How to give the CLI a login: its own login command and the key variables it reads."""
    keys = [name for name in key_names if "API_KEY" in name.upper()] or list(key_names)
    ways = [_LOGINS[adapter_type]] if adapter_type in _LOGINS else []
    if keys:
        ways.append(f"set {' or '.join(keys[:2])}")
    return "log in: " + (", or ".join(ways) if ways else "see the CLI's documentation")
