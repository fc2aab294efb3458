"""No secret is ever committed: the values of the keys this process knows are taken out of a
worktree's changed files before the orchestrator commits them.

A CLI is given its API key, and a CLI (or what it runs) can write it into a file: a config it
generates, a test fixture, a dump of its environment. Whatever the orchestrator commits ends
up in git objects, on a task branch or a rescue ref, and from there on the base and in every
clone. So every commit the orchestrator makes (``worktrees.commits``: the phases' commits and
every rescue) first replaces each known secret (``secret_mask.known``, the values masked in
everything stored) in the changed files with ``***``, and says which files it changed: the
attempt that wrote them fails, naming them, so a person looks before anything lands.

Only regular files of the worktree (no links, nothing over ``_LIMIT``) are read: a larger
file is named as unchecked rather than read whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from orchestrator.safety import secret_mask
from orchestrator.safety.redaction import MASK

__all__ = ["scrub_sync"]

_LIMIT = 64 * 1024 * 1024


def scrub_sync(root: Path, paths: Sequence[str]) -> list[str]:
    """Mask every known secret in the files ``paths`` (relative to ``root``); the paths
    changed, each with the names of the secrets found in it (``settings.env (OPENAI_API_KEY)``:
    the name a report may say, never the value). Blocking."""
    secrets = sorted(
        (value.encode() for value in secret_mask.known() if secret_mask.storable(value)),
        key=len,
        reverse=True,
    )
    if not secrets:
        return []
    names = secret_mask.names()
    changed = []
    for relative in paths:
        path = root / relative
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > _LIMIT:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        scrubbed = data
        found: list[str] = []
        for secret in secrets:
            if secret in scrubbed:
                scrubbed = scrubbed.replace(secret, MASK.encode())
                found.append(names.get(secret.decode(), secret_mask.UNNAMED))
        if scrubbed != data:
            _rewrite(path, scrubbed)
            changed.append(f"{relative} ({', '.join(sorted(set(found)))})")
    return changed


def _rewrite(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o7777
    flags = os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
