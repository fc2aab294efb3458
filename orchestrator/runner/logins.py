"""The user's own CLI logins, made visible inside a CLI's private HOME.

Each CLI runs with a private HOME so sessions never write into each other's CLI state or the
user's. Their logins live in that state, though (``claude`` logged in with an account,
``codex login``, gemini and qwen OAuth, ``~/.aws``), and most people use exactly those. So each
adapter lists where its CLI keeps a login (``Credential``), and before each start the files the
user has are linked into the private HOME: only those files, never the rest of the CLI's
state. A link holds a path, never the secret, so nothing of a credential is copied into
``.council/`` or a log; a CLI that refreshes a token through the link refreshes the user's own.

``credentials: isolated`` on an adapter removes the links: the CLI sees only what the run gives
it (API keys through ``passthrough_env`` and ``env``).

A CLI that saves its login by writing a new file and renaming it over the old one (qwen
refreshing its OAuth token: ``atomicWriteFile(..., noFollow)``, in the 0.24.4 bundle) replaces
the link with a file of its own: a credential under ``.council/``, and a user's copy whose
refresh token the server may already have rotated. ``settle_credentials`` runs after each CLI
run and puts that file back where the login belongs, over the user's copy when the user's is
unchanged since the run began (``user_copies``), else (the user signed in again meanwhile)
drops it; either way nothing of it stays in the private HOME.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.adapter import Credential
from orchestrator.safety import safe_write

__all__ = [
    "found_credentials",
    "link_credentials",
    "login_summary",
    "settle_credentials",
    "unlink_credentials",
    "user_copies",
]

log = logging.getLogger(__name__)

Signature = tuple[int, int, int, int]  # device, inode, mtime (ns), size


def found_credentials(
    credentials: Sequence[Credential], env: Mapping[str, str] | None = None
) -> list[tuple[Credential, Path]]:
    """The credentials the user has, each with its path (for ``adapters check``)."""
    env = os.environ if env is None else env
    return [(c, c.source(env)) for c in credentials if c.source(env).exists()]


def link_credentials(
    home: Path, credentials: Sequence[Credential], env: Mapping[str, str] | None = None
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
            stale = _inside(home, credential.target)
            if stale.is_symlink():
                safe_write.unlink(home, stale)
            continue
        target = _inside(home, credential.target)
        if target.is_dir() and not target.is_symlink():
            continue  # the CLI made a directory of its own there: not ours to replace
        if _links_to(target, source):
            made.append(target)
            continue
        safe_write.make_dirs(home, target.parent, mode=0o700)
        safe_write.symlink(home, target, str(source))
        made.append(target)
    return made


def unlink_credentials(home: Path, credentials: Sequence[Credential]) -> None:
    """Remove links to the user's credentials from ``home`` (``credentials: isolated``)."""
    for credential in credentials:
        target = _inside(home, credential.target)
        if target.is_symlink():
            safe_write.unlink(home, target)


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
        target = _inside(home, credential.target)
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


def _links_to(target: Path, source: Path) -> bool:
    try:
        return os.readlink(target) == str(source)
    except OSError:
        return False


def _inside(home: Path, relative: str) -> Path:
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
    parts = [f"{c.what}: {_tilde(path, env)}" for c, path in found]
    parts += [f"{name} set" for name in key_names if env.get(name)]
    if isolated:
        parts.append("credentials: isolated (only keys from the run)")
    if keychain:
        parts.append(keychain)
    return "; ".join(parts) if parts else "no login found (a key variable or the CLI's login)"


def _tilde(path: Path, env: Mapping[str, str]) -> str:
    home = env.get("HOME")
    if home and path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)
