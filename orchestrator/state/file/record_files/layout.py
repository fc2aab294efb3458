"""Where a file store keeps its records, and a record file's identity, without opening the store.

Each record is ``<root>/<kind>/<key>/current.json`` (``tasks``, ``sessions``; ``RecordKind``
keeps its history beside it), and every write replaces that file whole, so its identity
(inode, size, modification and change times) changes with any write by any process: equal
identities mean the record is unchanged, known without reading it. Light on purpose (``os``
alone): ``council status``'s quick look (``run.reports.report_cache``) reads identities before it
knows whether it needs the store at all, and the store's lock-free read without the store
(``peek_read``) finds its records here.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.ids import is_safe_id

__all__ = [
    "BATCHES",
    "CURRENT",
    "INTENTS",
    "RECORDS",
    "SESSIONS",
    "TASKS",
    "Identity",
    "events_log",
    "file_writer_alive",
    "identities_of",
    "identity_of",
    "process_alive",
    "session_identities",
    "stat_identity",
    "subdirectories",
    "task_identities",
]

CURRENT = "current.json"
TASKS = "tasks"
SESSIONS = "sessions"
RECORDS = "records"  # keyed records: ``records/<namespace>/<key>/``
INTENTS = "transactions"  # the intent log of transactions (``intents``)
BATCHES = "batches"  # under it, the intents of batches of new records (``task_batches``)

Identity = tuple[int, int, int, int]


def events_log(repo: Path) -> Path:
    """The event log of a run on ``repo`` (what a file store's watchers follow)."""
    return repo / ".council" / "events.jsonl"


def identity_of(path: Path | str) -> Identity | None:
    """The identity of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return stat_identity(st)


def stat_identity(st: os.stat_result) -> Identity:
    """The identity of the file ``st`` describes."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def identities_of(
    root: Path, kind: str, keys: list[str] | None = None
) -> dict[str, Identity | None]:
    """Key -> identity of the current record file of each of ``keys`` of ``kind`` (None:
    every record there is now). A key that is no safe id has no record."""
    base = os.path.join(root, kind)
    if keys is None:
        keys = subdirectories(base)
    return {
        key: identity_of(os.path.join(base, key, CURRENT)) if is_safe_id(key) else None
        for key in keys
    }


def session_identities(root: Path) -> dict[str, Identity | None]:
    """Session id -> identity of the current file of every session record there is now."""
    return identities_of(root, SESSIONS)


def task_identities(root: Path, keys: list[str]) -> dict[str, Identity | None]:
    """Task id -> identity of the current file of each of ``keys``' task records."""
    return identities_of(root, TASKS, keys)


def subdirectories(directory: Path | str) -> list[str]:
    """The names of the record directories in ``directory`` (hidden ones left out), sorted;
    none when it does not exist."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def file_writer_alive(name: str) -> bool:
    """Whether the process that writes or wrote the store's file ``name`` still runs: an
    intent (``<time>-<pid>-<hex>.json``) or a temp file (``durable_write``:
    ``.<name>.<pid>.<hex>.tmp``) holds its writer's pid."""
    if name.startswith(".") and name.endswith(".tmp"):
        parts = name.split(".")
        text = parts[-3] if len(parts) >= 3 else ""
    else:
        words = name.split("-")
        text = words[1] if len(words) >= 2 else ""
    try:
        return process_alive(int(text))
    except ValueError:
        return False


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one of another user's counts: it cannot be signalled)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
