"""No secret is ever committed: the values of the keys this process knows are taken out of a
worktree's changed files before the orchestrator commits them.

A CLI is given its API key, and a CLI (or what it runs) can write it into a file: a config it
generates, a test fixture, a dump of its environment. Whatever the orchestrator commits ends
up in git objects, on a task branch or a rescue ref, and from there on the base and in every
clone. So every commit the orchestrator makes (``worktrees.commits``: the phases' commits and
every rescue) first replaces each known secret (``secret_mask.known``, the values masked in
everything stored) in the changed files with ``***``, and says which files it changed: the
attempt that wrote them fails, naming them, so a person looks before anything lands.

Only regular files of the worktree are read (never through a link), whatever their size:
each is streamed (``secret_stream.Finder``, ``CHUNK`` bytes at a time) for every known secret
in every form (``secret_forms``: as is, URL-encoded, JSON-escaped, hex, base64) with
whitespace inserted anywhere in it (a token wrapped over two lines, base64 at any width); a
file found holding one is read whole and masked (``secret_stream.mask``). Time is bounded,
not size: past ``budget`` seconds for the whole scrub (``secret_stream.budget_seconds``:
``COUNCIL_SECRET_SCAN_SECONDS``, 120 by default), the file under way and every one not reached are
named ``(too large to check in time: not masked)``: the attempt then fails as for a secret
found, and the landing's gate reads what was committed again.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.safety import secret_mask
from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_stream import CHUNK, Finder, Hit, budget_seconds, mask, squeeze

__all__ = ["LATE", "scrub_sync"]

LATE = "too large to check in time: not masked"


def scrub_sync(root: Path, paths: Sequence[str], budget: float | None = None) -> list[str]:
    """Mask every known secret in the files ``paths`` (relative to ``root``); the paths
    changed, each with the names of the secrets found in it (``settings.env (OPENAI_API_KEY)``:
    the name a report may say, never the value), and those not read in time (module doc).
    Blocking."""
    names = secret_mask.names()
    values = sorted((v for v in secret_mask.known() if secret_mask.storable(v)), key=len)
    needles: list[bytes] = []
    owners: list[str] = []
    for value in reversed(values):
        for form in forms(value):
            if form.needle not in needles and squeeze(form.needle):
                needles.append(form.needle)
                owners.append(names.get(value, secret_mask.UNNAMED))
    if not needles:
        return []
    deadline = time.monotonic() + budget_seconds(budget, "the scrub's budget")
    changed = []
    for at, relative in enumerate(paths):
        path = root / relative
        try:
            found = _search(path, needles, deadline)
        except TimeoutError:
            changed += [f"{late} ({LATE})" for late in paths[at:]]
            break
        except OSError:
            continue
        if found is None:
            continue
        try:
            data = _read(path)
        except OSError:
            continue
        scrubbed = mask(data, needles)
        if scrubbed is not data:
            _rewrite(path, scrubbed)
            flat = squeeze(data)
            hits = {owners[i] for i, needle in enumerate(needles) if squeeze(needle) in flat}
            changed.append(f"{relative} ({', '.join(sorted(hits))})")
    return changed


def _search(path: Path, needles: Sequence[bytes], deadline: float) -> Hit | None:
    """The first needle ``path`` holds (streamed); None for none, or for what is not a
    regular file; ``TimeoutError`` past ``deadline``."""
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        finder = Finder(needles)
        while finder.hit is None:
            if time.monotonic() > deadline:
                raise TimeoutError(path)
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            finder.feed(chunk)
    finally:
        os.close(fd)
    return finder.hit


def _open_regular(path: Path) -> int | None:
    """``path`` opened for reading when it is a regular file (never through a link, never
    waiting on a FIFO); None for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    return None


def _read(path: Path) -> bytes:
    """``path``'s bytes, opened as ``_search`` opened it: a file swapped meanwhile for a link,
    a FIFO or a device is not read (``OSError``, the file then left as it is)."""
    fd = _open_regular(path)
    if fd is None:
        raise OSError(f"{path} is no longer a regular file")
    try:
        parts = []
        while chunk := os.read(fd, CHUNK * 8):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


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
