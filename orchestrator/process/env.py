"""The environment a CLI runs in: an allow-list, a private HOME, and redaction of secrets.

A CLI never inherits the orchestrator's environment wholesale. It gets, in this order (later
wins): the allow-listed variables of the parent (``PATH``, locale, ``TERM``, ``TZ``, CA bundles,
proxies, ``USER``/``SHELL``), the variables its adapter declares in ``passthrough_env`` (API keys,
base URLs), the adapter's own overlay (``CommandSpec.env``), the run config's ``env``, and last
the private directories, which nothing overrides::

    HOME=<home>  XDG_CONFIG_HOME=<home>/.config  XDG_DATA_HOME=<home>/.local/share
    XDG_CACHE_HOME=<home>/.cache  XDG_STATE_HOME=<home>/.local/state
    CODEX_HOME=<home>/.codex  TMPDIR=<home>/tmp

Every other child the orchestrator starts (``command_env``) gets the same allow-list, with the
user's own ``HOME`` (the orchestrator's own tools, ``gh``, ``git``, find their settings there)
and the names a caller passes through, never the orchestrator's whole environment. The setup
and verify commands, which run code CLIs wrote, get that allow-list with ``private_dirs`` of
the session's command HOME laid over it, never the user's HOME (``sandbox.commands``).

Which values are secrets, and how they are hidden: ``orchestrator.safety.redaction``.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from orchestrator.errors import PathEscapeError
from orchestrator.safety import safe_write
from orchestrator.safety.redaction import is_sensitive

__all__ = [
    "ALLOWED_NAMES",
    "ALLOWED_PREFIXES",
    "child_env",
    "command_env",
    "home_ready",
    "prepare_home",
    "private_dirs",
    "program",
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
_LAST_DIR = "tmp"  # created last by prepare_home, so its presence means the home is complete


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


def prepare_home(home: Path, files: Mapping[str, str], to_stderr: Iterable[str] = ()) -> None:
    """Create the private directories and write ``files`` (HOME-relative paths) below ``home``;
    each path of ``to_stderr`` becomes a link to ``/dev/stderr`` (``CommandSpec.stderr_files``).

    Blocking; run it in a worker thread. Files are private (0600): they often hold API keys.
    The CLI owns its HOME, so nothing here follows a link it left there: a link at a file is
    replaced, a link in place of a directory on the way is refused (``safe_write``).
    """
    for directory in private_dirs(home).values():
        safe_write.make_dirs(home, Path(directory), mode=0o700)
    for relative, content in files.items():
        target = _inside(home, relative)
        safe_write.write_atomic(home, target, content.encode("utf-8"), mode=0o600)
    for relative in to_stderr:
        safe_write.symlink(home, _inside(home, relative), "/dev/stderr")


def _inside(root: Path, relative: str) -> Path:
    path = PurePosixPath(relative)
    if not relative or "\0" in relative or path.is_absolute() or ".." in path.parts:
        raise PathEscapeError(f"home file {relative!r} must be a relative path below HOME")
    target = root / path
    if os.path.normpath(target) == os.path.normpath(root):
        raise PathEscapeError(f"home file {relative!r} is HOME itself, not a file in it")
    return target


def program(name: str, path: str | None = None) -> str | None:
    """Where the program ``name`` is on ``path`` (this process's PATH when None), as
    ``shutil.which`` says, asked once per process and PATH: the sandbox's helpers (``bwrap``,
    ``slirp4netns``, ``unshare``, ``prlimit``) are looked for at every launch, on the event
    loop, and a program that comes or goes mid-run must not change how the run's CLIs are
    confined (whether bubblewrap works is probed once per process too)."""
    return _program(name, os.environ.get("PATH") if path is None else path)


@functools.lru_cache(maxsize=64)
def _program(name: str, path: str | None) -> str | None:
    return shutil.which(name, path=path)
