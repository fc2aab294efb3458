"""The user's own configuration of a CLI, carried into its private HOME (see
``orchestrator.adapter.user_files`` for what an adapter declares).

Before each start: every ``ConfigFile`` of the command is written merged with the user's file
(``config_merge``), and every other ``UserFile`` the user has is linked, as logins are
(``logins.link_credentials``); the sandbox shows the linked ones read-only. What was carried,
and which of the user's keys the run's own replaced, is said in the CLI's log. The config
files are removed when the CLI ends (``forget``; the next start writes them anew): the user's
settings and the run's MCP servers may hold tokens, and none stays under ``.council/``. The
secrets found in the user's files are masked from then on, each named by its file and key.

``user_config: ignore`` carries nothing and removes what an earlier start linked.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.adapter import AdapterRequest, CommandSpec, ConfigFile, UserFile
from orchestrator.runner.config_merge import dotted, dump, merge_config, parse, secret_values
from orchestrator.runner.logins import (
    inside_home,
    link_credentials,
    tilde,
    unlink_credentials,
)
from orchestrator.safety import safe_write, secret_mask

__all__ = ["MAX_USER_FILE", "Carried", "carry_user_config", "forget"]

log = logging.getLogger(__name__)

MAX_USER_FILE = 1 << 20  # a settings file is a page or two; larger ones are not carried


@dataclass
class Carried:
    """What one start carried of the user's configuration."""

    notes: list[str] = field(default_factory=list)  # for the CLI's log
    readable: list[Path] = field(default_factory=list)  # user paths linked in (read-only)
    written: list[Path] = field(default_factory=list)  # the config files written
    copies: list[str] = field(default_factory=list)  # globs of the CLI's own copies of them


def carry_user_config(
    home: Path,
    spec: CommandSpec,
    user_files: Sequence[UserFile],
    request: AdapterRequest,
    env: Mapping[str, str] | None = None,
) -> Carried:
    """Write ``spec.config_files`` merged with the user's and link the rest (blocking)."""
    env = os.environ if env is None else env
    carried = Carried()
    by_path = {user_file.home_path: user_file for user_file in user_files}
    merged_in = {config.user or path for path, config in spec.config_files.items()}
    for path, config in spec.config_files.items():
        user_file = by_path.get(config.user or path)
        _write_merged(home, path, config, user_file, request, env, carried)
    linked = [f for f in user_files if f.home_path not in merged_in]
    if not request.user_config:
        unlink_credentials(home, linked)
        if user_files:
            carried.notes.append("user config: ignored (user_config: ignore)")
        return carried
    made = {str(target) for target in link_credentials(home, linked, env)}
    for user_file in linked:
        if str(inside_home(home, user_file.home_path)) in made:
            source = user_file.source(env)
            carried.readable.append(source)
            carried.notes.append(f"user config: {user_file.what} {tilde(source, env)} linked")
    return carried


def forget(home: Path, carried: Carried) -> None:
    """Remove the files that held the user's settings, and the copies the CLI made of them
    (blocking; after the CLI ended)."""
    copies = [path for pattern in carried.copies for path in sorted(home.glob(pattern))]
    for path in [*carried.written, *copies]:
        try:
            safe_write.unlink(home, path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s, which holds the user's settings: %s", path, exc)


def _write_merged(
    home: Path,
    path: str,
    config: ConfigFile,
    user_file: UserFile | None,
    request: AdapterRequest,
    env: Mapping[str, str],
    carried: Carried,
) -> None:
    user: dict[str, Any] | None = None
    source: Path | None = None
    if request.user_config and user_file is not None:
        source = user_file.source(env)
        try:
            user = _read(source, config.format, tilde(source, env))
        except ValueError as exc:
            log.warning("%s: not carried: %s", request.phase, exc)
            carried.notes.append(f"user config: {user_file.what} not carried: {exc}")
    merged = merge_config(config, user, logins=request.share_credentials)
    target = inside_home(home, path)
    if not merged.data:  # nothing to say: the CLI's own defaults, as without the file
        if target.is_file() and not target.is_symlink():
            safe_write.unlink(home, target)  # an earlier start's, should its end not have come
        return
    safe_write.make_dirs(home, target.parent, mode=0o700)
    safe_write.write_atomic(home, target, dump(merged.data, config.format).encode(), mode=0o600)
    carried.written.append(target)
    if user is None or source is None or user_file is None:
        return
    carried.copies.extend(config.copies)
    where = tilde(source, env)
    secret_mask.remember_named(
        {f"{where}: {key}": value for key, value in secret_values(user, config.logins).items()}
    )
    note = f"user config: {user_file.what} {where} merged into ~/{path}"
    if merged.overridden:
        keys = ", ".join(dotted(key) for key in merged.overridden)
        note += f"; the run's own value replaced the user's for: {keys}"
    carried.notes.append(note)


def _read(source: Path, form: str, name: str) -> dict[str, Any] | None:
    """The user's file parsed, or None where they have none; ``ValueError`` if unreadable."""
    try:
        info = source.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{name} is not a regular file")
    try:
        with source.open("rb") as handle:
            raw = handle.read(MAX_USER_FILE + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror}") from None
    if len(raw) > MAX_USER_FILE:
        raise ValueError(f"{name} is over {MAX_USER_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text") from None
    return parse(text, form, name)
