"""A login the CLI saved anew goes back where it belongs.

A CLI that saves its login by writing a new file and renaming it over the old one (qwen
refreshing its OAuth token) replaces the link in its private HOME with a file of its own: a
credential under ``.council/``, and a user's copy whose refresh token the server may already
have rotated. ``settle_credentials`` runs after each CLI run and puts that file back over the
user's copy when the user's is unchanged since the run began (``user_copies``), else (the user
signed in again meanwhile) drops it; either way nothing of it stays in the private HOME."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.adapter import Credential
from orchestrator.runner.logins import inside_home
from orchestrator.safety import safe_write

__all__ = ["settle_credentials", "user_copies"]

log = logging.getLogger(__name__)

Signature = tuple[int, int, int, int]  # device, inode, mtime (ns), size


def user_copies(
    credentials: Sequence[Credential], env: Mapping[str, str] | None = None
) -> dict[Path, Signature]:
    """The user's credential files now (what ``settle_credentials`` compares against)."""
    env = os.environ if env is None else env
    copies: dict[Path, Signature] = {}
    for credential in credentials:
        source = credential.source(env)
        signature = _signature(source)
        if signature is not None:
            copies[source] = signature
    return copies


def settle_credentials(
    home: Path,
    credentials: Sequence[Credential],
    before: Mapping[Path, Signature],
    env: Mapping[str, str] | None = None,
) -> None:
    """After a run: a login file the CLI saved in place of its link goes back over the user's
    copy (``before`` holds the user's copies as the run began: unchanged since) or is dropped.
    A file where the user had none is the CLI's own login, made inside: it stays. Blocking."""
    env = os.environ if env is None else env
    for credential in credentials:
        source = credential.source(env)
        if source not in before:
            continue
        target = inside_home(home, credential.target)
        try:
            found = os.lstat(target)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(found.st_mode):
            continue  # still our link, or a directory of the CLI's own
        if _signature(source) == before[source]:
            try:
                _return(home, target, source)
                log.info("%s: the CLI saved its login anew; moved over %s", target, source)
                continue
            except OSError as exc:
                log.warning("%s: could not move the login back to %s: %s", target, source, exc)
        else:
            log.warning(
                "%s: saved anew by the CLI, but %s changed meanwhile: dropped", target, source
            )
        with contextlib.suppress(OSError):
            safe_write.unlink(home, target)


def _return(home: Path, target: Path, source: Path) -> None:
    """The content of ``target`` in place of the user's ``source`` (a new file renamed over
    it, next to the real file: a reader never sees half of it), then ``target`` removed."""
    fd = safe_write.open_file(home, target, os.O_RDONLY)
    with os.fdopen(fd, "rb") as file:
        data = file.read()
    real = Path(os.path.realpath(source))  # the user's copy may itself be a link (dotfiles)
    temporary = real.with_name(f".{real.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(temporary, flags, stat.S_IMODE(os.stat(real).st_mode))
    try:
        with os.fdopen(out, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    safe_write.unlink(home, target)


def _signature(path: Path) -> Signature | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None  # a directory (~/.aws): a CLI never replaces one by a rename
    return (found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size)
