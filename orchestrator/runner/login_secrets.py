"""The secrets in the user's login files, known by name: masked wherever stored, and found by
the secret gate in anything a task would land (``merge.secret_gate``).

A CLI sees its user's logins (``runner.logins`` links them into its private HOME), so it can
read a token there and write it into its work, a commit message, a path. The run knows those
values too, as it knows the keys in its environment: before each CLI start the login files
its adapter names are read (small regular files only, at most ``_FILES`` below a login
directory) and every value under a secret-sounding key is remembered under a name a report may
say, never the value (``secret_mask.remember_named``):

- JSON (``~/.claude/.credentials.json``, ``~/.codex/auth.json``, gemini's OAuth): every string
  under a key whose name says key, token, secret, password or credential, at any depth:
  ``login 'account login' (.credentials.json: claudeAiOauth.accessToken)``;
- lines of ``name = value``, ``name: value`` or ``export NAME=value`` (``~/.aws/credentials``,
  ``~/.env``, aider's ``oauth-keys.env``) whose name says so.

What a file holds is read once per change (its size and mtime), and nothing read here is
written anywhere: only kept in this process's memory, as the environment's keys are.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.adapter import Credential
from orchestrator.safety.redaction import is_sensitive

__all__ = ["login_secrets"]

_LIMIT = 256 * 1024
_FILES = 20  # files read below one login directory (~/.aws: credentials, config, ...)
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]\s*(.+?)\s*$")
_seen: dict[tuple[str, int, int], dict[str, str]] = {}


def login_secrets(
    credentials: Sequence[Credential], env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """name -> value of every secret in the user's login files of ``credentials`` (blocking)."""
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    for credential in credentials:
        source = credential.source(env)
        for path in _files(source):
            label = path.name if path == source else str(path.relative_to(source))
            for key, value in _read(path).items():
                found[f"login {credential.what!r} ({label}: {key})"] = value
    return found


def _files(source: Path) -> Iterator[Path]:
    if source.is_file():
        yield source
        return
    if not source.is_dir():
        return
    # At most _FILES of them, looked for lazily: this runs at every CLI start, and a login
    # directory (~/.config/gcloud) can hold logs and caches beside the login itself.
    yield from itertools.islice((p for p in source.rglob("*") if p.is_file()), _FILES)


def _read(path: Path) -> dict[str, str]:
    try:
        info = os.stat(path)
        if info.st_size > _LIMIT:
            return {}
        key = (str(path), info.st_size, info.st_mtime_ns)
        if key in _seen:
            return _seen[key]
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    try:
        found = dict(_in_json(json.loads(text), ""))
    except ValueError:
        found = _in_lines(text)
    _seen[key] = found
    return found


def _in_json(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(item, str) and is_sensitive(str(key)):
                yield path, item
            else:
                yield from _in_json(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _in_json(item, f"{where}[{index}]")


def _in_lines(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and is_sensitive(match.group(1)):
            found[match.group(1)] = match.group(2).strip().strip("'\"")
    return found
