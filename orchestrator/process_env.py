"""The environment a CLI runs in: an allow-list, a private HOME, and redaction of secrets.

A CLI never inherits the orchestrator's environment wholesale. It gets, in this order (later
wins): the allow-listed variables of the parent (``PATH``, locale, ``TERM``, ``TZ``, CA bundles,
proxies, ``USER``/``SHELL``), the variables its adapter declares in ``passthrough_env`` (API keys,
base URLs), the adapter's own overlay (``CommandSpec.env``), the run config's ``env``, and last
the private directories, which nothing overrides::

    HOME=<home>  XDG_CONFIG_HOME=<home>/.config  XDG_DATA_HOME=<home>/.local/share
    XDG_CACHE_HOME=<home>/.cache  XDG_STATE_HOME=<home>/.local/state
    CODEX_HOME=<home>/.codex  TMPDIR=<home>/tmp

Every other child the orchestrator starts (setup and verify commands, ``command_env``) gets the
same allow-list, with the user's own ``HOME`` (their toolchains and caches live there) and the
names the run config's ``worktrees.passthrough_env`` lists, never the orchestrator's whole
environment: a test a CLI wrote runs as a verify command, and what it can read it can print or
write into the worktree.

Secrets are the values of variables whose names contain KEY, TOKEN, SECRET, PASSWORD, PASSWD
or CREDENTIAL (wherever they came from) plus ``CommandSpec.secrets``; ``Redactor`` replaces
them with ``***``, as written and as a JSON string would escape them (a quote, a backslash or
a slash in a key), in raw output lines and again in what the adapter parsed out of them
(``Redactor.deep``): a parser decodes escapes a line-level mask cannot see. Values shorter
than 4 characters are not treated as secrets: masking them would mask ordinary text everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator import safe_write
from orchestrator.errors import PathEscapeError

__all__ = [
    "ALLOWED_NAMES",
    "ALLOWED_PREFIXES",
    "MASK",
    "Redactor",
    "child_env",
    "command_env",
    "home_ready",
    "is_sensitive",
    "prepare_home",
    "private_dirs",
]

ALLOWED_NAMES = frozenset(
    {
        "PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
        "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
        "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    }
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_", "SSL_CERT_")
MASK = "***"
_SENSITIVE = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_MIN_SECRET = 4
_LAST_DIR = "tmp"  # created last by prepare_home, so its presence means the home is complete


def is_sensitive(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _SENSITIVE)


def private_dirs(home: Path) -> dict[str, str]:
    root = str(home)  # string joins: this runs for every CLI start
    return {
        "HOME": root,
        "XDG_CONFIG_HOME": f"{root}/.config",
        "XDG_DATA_HOME": f"{root}/.local/share",
        "XDG_CACHE_HOME": f"{root}/.cache",
        "XDG_STATE_HOME": f"{root}/.local/state",
        "CODEX_HOME": f"{root}/.codex",
        "TMPDIR": f"{root}/{_LAST_DIR}",
    }


def child_env(
    passthrough: Iterable[str],
    overlay: Mapping[str, str],
    config_env: Mapping[str, str],
    home: Path,
    parent: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The CLI's environment, and the secret values in it (to redact)."""
    parent = os.environ if parent is None else parent
    # Names first, values only for the few kept: os.environ decodes each value it hands out.
    env = {
        name: parent[name]
        for name in parent
        if name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)
    }
    secrets: list[str] = []
    for name in passthrough:
        value = parent.get(name)
        if value is not None:
            env[name] = value
            if is_sensitive(name):
                secrets.append(value)
    for extra in (overlay, config_env):
        env.update(extra)
        secrets.extend(value for name, value in extra.items() if is_sensitive(name))
    env.update(private_dirs(home))
    return env, secrets


def command_env(
    passthrough: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    parent: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The environment of a child that is not a CLI (a setup or verify command), and the
    secret values in it: the allow-list, ``HOME``, the ``passthrough`` names, then ``extra``."""
    parent = os.environ if parent is None else parent
    env = {
        name: parent[name]
        for name in parent
        if name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES) or name == "HOME"
    }
    secrets: list[str] = []
    for name in passthrough:
        value = parent.get(name)
        if value is not None:
            env[name] = value
            if is_sensitive(name):
                secrets.append(value)
    for name, value in (extra or {}).items():
        env[name] = value
        if is_sensitive(name):
            secrets.append(value)
    return env, secrets


def home_ready(home: Path) -> bool:
    return os.path.isdir(f"{home}/{_LAST_DIR}")  # per CLI start: no pathlib objects


def prepare_home(home: Path, files: Mapping[str, str]) -> None:
    """Create the private directories and write ``files`` (HOME-relative paths) below ``home``.

    Blocking; run it in a worker thread. Files are private (0600): they often hold API keys.
    The CLI owns its HOME, so nothing here follows a link it left there: a link at a file is
    replaced, a link in place of a directory on the way is refused (``safe_write``).
    """
    for directory in private_dirs(home).values():
        safe_write.make_dirs(home, Path(directory), mode=0o700)
    for relative, content in files.items():
        target = _inside(home, relative)
        safe_write.write_atomic(home, target, content.encode("utf-8"), mode=0o600)


def _inside(root: Path, relative: str) -> Path:
    path = PurePosixPath(relative)
    if not relative or "\0" in relative or path.is_absolute() or ".." in path.parts:
        raise PathEscapeError(f"home file {relative!r} must be a relative path below HOME")
    target = root / path
    if os.path.normpath(target) == os.path.normpath(root):
        raise PathEscapeError(f"home file {relative!r} is HOME itself, not a file in it")
    return target


class Redactor:
    """Replaces every secret in a text with ``***``; falsy when there is nothing to hide."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # A secret spanning lines (a PEM key) is hidden line by line, since output is.
        pieces = {part for secret in secrets for part in secret.splitlines()}
        pieces |= {escaped for piece in pieces for escaped in _json_forms(piece)}
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = tuple(
            sorted((p for p in pieces if len(p) >= _MIN_SECRET), key=len, reverse=True)
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds any secret (as written or JSON-escaped)."""
        return any(secret in text for secret in self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def deep(self, value: Any) -> Any:
        """``value`` with every string in it (nested in dicts and lists) redacted; the very
        same object when nothing in it needed hiding."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            items = {key: self.deep(item) for key, item in value.items()}
            changed = any(items[key] is not item for key, item in value.items())
            return items if changed else value
        if isinstance(value, list | tuple):
            parts = [self.deep(item) for item in value]
            changed = any(new is not old for new, old in zip(parts, value, strict=True))
            return type(value)(parts) if changed else value
        return value

    def cut_partial(self, text: str) -> str:
        """Drop a secret's beginning from the end of a line that was cut short."""
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), 0, -1):
                if text.endswith(secret[:size]):
                    return text[:-size] + MASK
        return text


def _json_forms(secret: str) -> set[str]:
    """How JSON encoders may write ``secret`` inside a string: escaped quotes, backslashes,
    control and non-ASCII characters, and slashes as ``\\/``."""
    ascii_form = json.dumps(secret)[1:-1]
    forms = {ascii_form, json.dumps(secret, ensure_ascii=False)[1:-1]}
    forms |= {form.replace("/", "\\/") for form in forms}
    forms.discard(secret)
    return forms
