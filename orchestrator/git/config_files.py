"""The git config files a git process of the orchestrator reads, read without a process, for a
caller that only needs to know a setting is absent (``git.loose_objects``, ``git.index_files``):
the system file (unless ``GIT_CONFIG_NOSYSTEM``), the user's (``GIT_CONFIG_GLOBAL``, or the XDG
file and ``~/.gitconfig``), the repository's ``config`` and ``config.worktree``. A file that
includes another, or cannot be read, makes the answer None (the caller then runs git).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["plain_config"]


def plain_config(common: Path, env: Mapping[str, str]) -> str | None:
    """The text of every config file a git process started with ``env`` in the repository of
    git common dir ``common`` reads, lower-cased and joined, for a caller that only needs to
    know a setting is absent; None when one cannot be read or includes another."""
    texts: list[str] = []
    for path in _config_files(common, env):
        try:
            text = path.read_text(encoding="utf-8").lower()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            return None
        if "include" in text:
            return None
        texts.append(text)
    return "\n".join(texts)


def _config_files(common: Path, env: Mapping[str, str]) -> list[Path]:
    """The config files a git process started with ``env`` reads, in git's order."""
    files: list[Path] = []
    if not env.get("GIT_CONFIG_NOSYSTEM", os.environ.get("GIT_CONFIG_NOSYSTEM")):
        system = env.get("GIT_CONFIG_SYSTEM", os.environ.get("GIT_CONFIG_SYSTEM"))
        files.append(Path(system or "/etc/gitconfig"))
    configured = env.get("GIT_CONFIG_GLOBAL", os.environ.get("GIT_CONFIG_GLOBAL"))
    if configured is not None:
        files.append(Path(configured))
    else:
        home = env.get("HOME", os.environ.get("HOME"))
        xdg = env.get("XDG_CONFIG_HOME", os.environ.get("XDG_CONFIG_HOME"))
        if xdg:
            files.append(Path(xdg) / "git" / "config")
        elif home:
            files.append(Path(home) / ".config" / "git" / "config")
        if home:
            files.append(Path(home) / ".gitconfig")
    files += [common / "config", common / "config.worktree"]
    return files
