"""Which run ``council status`` means when it is given no config.

``council run`` and ``council resume`` remember, before they start, the config they run: one
small JSON record per directory, kept under the user's state directory
(``$XDG_STATE_HOME/cli-council/runs/``, ``~/.local/state/cli-council/runs/`` when it is unset)
and named by a hash of the directory's path, for the directory the command was started from
and for the run's repository. Nothing is written into the user's checkout, a run started again
from the same place replaces its record, and two runs never write the same file unless they
start from the same directory (then the later one is the run meant). Each run forgets the
records whose directory or config file is gone (``forget_gone``), so they are not kept for ever.
It looks at ``_SWEPT`` records at most, picked at random: a run's start does not grow with every
run ever remembered, and as a run adds at most two records, the gone ones cannot pile up (with
most of them gone, a run forgets about eight).

``find_run(start)`` walks up from ``start`` the way git looks for its repository: in each
directory, first the run remembered for it (its config: a team run's PostgreSQL store is found
as ``council status FILE`` would find it), then a ``council.yaml`` in it (the directory's own
config, as ``council init`` writes it: before, a run remembered for a directory above was
shown instead), then a ``.council/state`` in it (the repository one stands in, from any of its
subdirectories or worktrees). The nearest one found wins, so after
``council run configs/demo.yaml`` from a checkout, ``council status`` there shows the demo
run, and inside the demo's repository it shows that repository's own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.state.file.record_files.layout import events_log

__all__ = ["FoundRun", "find_config", "find_run", "forget_gone", "remember_run", "runs_dir"]

log = logging.getLogger(__name__)

_STATE = Path(".council") / "state"
# Records a run looks at to forget the gone ones: each run adds at most two, so looking at eight
# keeps the gone ones from piling up, at a cost that does not grow with the records kept (at
# 1,000 records, reading them all was 25 ms of every run's start).
_SWEPT = 8
OWN_CONFIG = "council.yaml"  # what `council init` writes, and `council doctor` looks for


@dataclass(frozen=True)
class FoundRun:
    """A run found for a directory: its config (a remembered run) or its state directory."""

    config: Path | None
    state_dir: Path | None
    how: str  # what was found where, for the user
    events: Path | None = None  # the run's event log, with ``state_dir`` (status --watch)


def runs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the records are kept (the XDG base directory rule for state)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or ""
    home = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return home / "cli-council" / "runs"


def _record_path(directory: Path, environ: Mapping[str, str] | None = None) -> Path:
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:32]
    return runs_dir(environ) / f"{digest}.json"


def remember_run(
    config_file: Path,
    repo: Path,
    started_in: Path | None = None,
    state_dir: Path | None = None,
) -> None:
    """Remember that the run of ``config_file`` (on ``repo``, its state in ``state_dir`` when
    it keeps it in files) was started from ``started_in`` (the current directory by default).
    A record that cannot be written is a warning: the run matters more than finding it
    later."""
    from orchestrator.models import utcnow  # pydantic's models: not on status's path
    from orchestrator.safety import safe_write  # only a run writes what status reads

    config = config_file.resolve()
    places = {(started_in or Path.cwd()).resolve(), repo.resolve()}
    for directory in sorted(places):
        record = {
            "directory": str(directory),
            "config": str(config),
            "repo": str(repo.resolve()),
            # A file store is read from here without reading the config again (status stays
            # quick); a database's run is found through its config.
            "state_dir": str(state_dir.resolve()) if state_dir is not None else None,
            "recorded_at": utcnow().isoformat(),
        }
        path = _record_path(directory)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            safe_write.write_atomic(path.parent, path, json.dumps(record).encode())
        except OSError as exc:
            log.warning("cannot remember this run for `council status` in %s: %s", path, exc)
    forget_gone(runs_dir())


def forget_gone(where: Path, most: int | None = None) -> int:
    """Remove the records in ``where`` whose directory or config file is gone (a checkout or a
    temporary directory deleted since): they could never be found again, and would be kept
    for ever. ``most``: look at that many records at most (``_SWEPT`` by default), picked at
    random (module doc). How many went; a record that cannot be read or removed is left as it
    is."""
    gone = 0
    try:
        names = [entry for entry in os.scandir(where) if entry.name.endswith(".json")]
    except OSError:
        return 0
    most = _SWEPT if most is None else most
    if len(names) > most:
        names = random.sample(names, most)
    for entry in names:
        try:
            record = json.loads(Path(entry.path).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        places = [record.get("directory"), record.get("config")]
        if all(isinstance(p, str) for p in places) and all(Path(str(p)).exists() for p in places):
            continue
        try:
            os.unlink(entry.path)
            gone += 1
        except OSError:
            continue
    return gone


def _record(directory: Path) -> tuple[dict[str, object], str] | None:
    """The record remembered for ``directory`` and its config, while that file is there."""
    try:
        record = json.loads(_record_path(directory).read_text())
    except (OSError, ValueError):
        return None  # none, or unreadable: as good as none
    if not isinstance(record, dict) or record.get("directory") != str(directory):
        return None
    config = record.get("config")
    if not isinstance(config, str) or not Path(config).is_file():
        return None
    return record, config


def _remembered(directory: Path) -> FoundRun | None:
    """The run remembered for ``directory``, while its config file is still there."""
    found = _record(directory)
    if found is None:
        return None
    record, config = found
    how = f"the run of {config}, started from {directory}"
    state = record.get("state_dir")
    if isinstance(state, str) and Path(state).is_dir():
        repo = record.get("repo")
        events = events_log(Path(repo)) if isinstance(repo, str) else None
        return FoundRun(None, Path(state), how, events)
    return FoundRun(Path(config), None, how)


def find_config(start: Path, command: str) -> tuple[Path, str]:
    """The run config meant from ``start`` for ``council COMMAND`` given no FILE, found as
    ``find_run`` finds a run (module doc), and what was found where; ``UsageError`` naming
    where it looked, or the state directory found whose config no directory remembers."""
    start = start.resolve()
    for directory in (start, *start.parents):
        remembered = _record(directory)
        if remembered is not None:
            return Path(remembered[1]), f"{remembered[1]}, run from {directory}"
        own = directory / OWN_CONFIG
        if own.is_file():
            return own, str(own)
        state = directory / _STATE
        if state.is_dir():
            raise UsageError(
                f"the run kept in {state} was started from a config no directory here "
                f"remembers; pass it: council {command} <config>"
            )
    raise UsageError(
        f"no run config found from {start}: no `council run` was started there or in a "
        f"directory above it, and none has a {OWN_CONFIG}; pass it: council {command} <config>"
    )


def find_run(start: Path) -> FoundRun:
    """The run meant from ``start`` (module doc); ``UsageError`` naming where it looked."""
    start = start.resolve()
    for directory in (start, *start.parents):
        remembered = _remembered(directory)
        if remembered is not None:
            return remembered
        own = directory / OWN_CONFIG
        if own.is_file():  # the config `council init` writes there: its run, wherever it ran
            return FoundRun(own, None, f"the run of {own}")
        state = directory / _STATE
        if state.is_dir():
            return FoundRun(None, state, f"the run kept in {state}", events_log(directory))
    raise UsageError(
        f"no run found from {start}: no `council run` was started there or in a directory "
        f"above it, and none of them has a {_STATE}; pass the run config: "
        "council status <config>"
    )
