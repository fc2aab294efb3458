"""The user's own CLI logins, made visible inside a CLI's private HOME.

Each CLI runs with a private HOME so sessions never write into each other's CLI state or the
user's. Their logins live in that state, though (``claude`` logged in with an account,
``codex login``, gemini's Google login, keys in ``~/.gemini/.env``, ``~/.aws``), and most
people use exactly those. So each adapter lists where its CLI keeps a login (``Credential``),
and before each start the files the user has are linked into the private HOME: only those
files, never the rest of the CLI's state. A link holds a path, never the secret, so nothing
of a credential is copied into ``.council/`` or a log; a CLI that refreshes a token through the
link refreshes the user's own.

``credentials: isolated`` on an adapter removes the links: the CLI sees only what the run gives
it (API keys through ``passthrough_env`` and ``env``).

A login the CLI saved anew goes back to the user: ``login_refresh``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from orchestrator.adapter import Credential
from orchestrator.safety import safe_write

__all__ = [
    "UserPath",
    "found_credentials",
    "inside_home",
    "link_credentials",
    "login_summary",
    "tilde",
    "unlink_credentials",
]

log = logging.getLogger(__name__)


class UserPath(Protocol):
    """A file of the user's a CLI reads in its HOME: a ``Credential`` or a ``UserFile``."""

    def source(self, env: Mapping[str, str]) -> Path: ...

    @property
    def target(self) -> str: ...


def found_credentials(
    credentials: Sequence[Credential], env: Mapping[str, str] | None = None
) -> list[tuple[Credential, Path]]:
    """The credentials the user has, each with its path (for ``adapters check``): a file of
    variables (``Credential.keys``) counts only where it sets one of its keys."""
    env = os.environ if env is None else env
    found: list[tuple[Credential, Path]] = []
    for credential in credentials:
        path = credential.source(env)
        if path.exists() and (not credential.keys or _sets_any(path, credential.keys)):
            found.append((credential, path))
    return found


_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_MAX_ENV_FILE = 1_000_000


def _sets_any(path: Path, keys: Sequence[str]) -> bool:
    """Does the dotenv file at ``path`` give one of ``keys`` a value? Names only are kept."""
    try:
        with path.open("rb") as file:
            text = file.read(_MAX_ENV_FILE).decode("utf-8", "replace")
    except OSError:  # unreadable, or a directory: the CLI could not read it either
        return False
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) in keys and match.group(2).strip().strip("'\"").strip():
            return True
    return False


def link_credentials(
    home: Path, credentials: Sequence[UserPath], env: Mapping[str, str] | None = None
) -> list[Path]:
    """Link each credential the user has into the private ``home``; the links made.

    Blocking; run it in a worker thread. A credential the user does not have is left alone
    (the CLI may have logged in inside its private HOME), except a link to it left by an
    earlier start, which is removed: through a dangling link a CLI would create the file in
    the user's HOME. Whatever stands at a link's place (an older link, a copy the CLI wrote by
    replacing the link) is replaced: the user's file is the login.
    """
    env = os.environ if env is None else env
    made: list[Path] = []
    for credential in credentials:
        source = credential.source(env)
        if not source.exists():
            stale = inside_home(home, credential.target)
            if stale.is_symlink():
                safe_write.unlink(home, stale)
            continue
        target = inside_home(home, credential.target)
        if target.is_dir() and not target.is_symlink():
            continue  # the CLI made a directory of its own there: not ours to replace
        if _links_to(target, source):
            made.append(target)
            continue
        safe_write.make_dirs(home, target.parent, mode=0o700)
        safe_write.symlink(home, target, str(source))
        made.append(target)
    return made


def unlink_credentials(home: Path, credentials: Sequence[UserPath]) -> None:
    """Remove links to the user's credentials from ``home`` (``credentials: isolated``)."""
    for credential in credentials:
        target = inside_home(home, credential.target)
        if target.is_symlink():
            safe_write.unlink(home, target)


def _links_to(target: Path, source: Path) -> bool:
    try:
        return os.readlink(target) == str(source)
    except OSError:
        return False


def inside_home(home: Path, relative: str) -> Path:
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"credential path {relative!r} must stay inside the CLI's HOME")
    return home / path


def login_summary(
    credentials: Sequence[Credential],
    key_names: Sequence[str],
    *,
    isolated: bool = False,
    keychain: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Where a CLI would find its login, in one line: paths and variable names, never values.

    ``key_names`` are the adapter's variables that carry a key or token; ``keychain`` says
    where this CLI keeps a login out of our reach on this system (the macOS keychain), if it
    does.
    """
    env = os.environ if env is None else env
    found = [] if isolated else found_credentials(credentials, env)
    parts = [f"{c.what}: {tilde(path, env)}" for c, path in found]
    parts += [f"{name} set" for name in key_names if env.get(name)]
    if isolated:
        parts.append("credentials: isolated (only keys from the run)")
    if keychain:
        parts.append(keychain)
    return "; ".join(parts) if parts else "no login found (a key variable or the CLI's login)"


def tilde(path: Path, env: Mapping[str, str]) -> str:
    home = env.get("HOME")
    if home and path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)
