"""Versioned records on disk: one directory per record, its history beside it.

::

    <root>/<kind>/<key>/current.json     the record (see ``codec`` for the format)
    <root>/<kind>/<key>/v000000000007.json  earlier versions, the newest ``history_limit`` kept
    <root>/<kind>/<key>/a000000000003.json  older ones waiting to be archived (``archive``)
    <root>/<kind>/<key>/history.jsonl.gz    all older ones, compressed (``history_archive``)
    <root>/<kind>/<key>/                 its directory's own descriptor is the record's
                                         reader/writer lock (``filelock``, ``directory``)
    <root>/quarantine/<kind>/<key>.<digest>.json  damaged records, moved aside intact

History entries are hard links to the previous ``current.json`` made just before it is replaced,
so archiving costs a link rather than a second durable write, and the one directory fsync that
follows the replace makes both durable. A record that fails its checksum or its model is moved
to quarantine and the newest valid history version takes its place, under a version number
higher than any this record has had, so versions only ever increase.

Everything here is synchronous and expects the caller to hold the record's lock (``lock_path``,
taken with ``directory=True``): shared to read, exclusive to write or recover. The lock is the
record's directory rather than a ``.lock`` file in it: the directory is made for the record
anyway, and a file per record was an inode made and freed for nothing (a run's every task makes
several records). A ``.lock`` file an earlier version left is unused, and goes with the record.
The async store runs it in worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from orchestrator.errors import StateCorrupted
from orchestrator.ids import check_id
from orchestrator.safety.secret_mask import masked_with_json
from orchestrator.state.file.fsops import (
    FileOperations,
    NotSynced,
    durable_write,
    write_error,
)
from orchestrator.state.file.record_files.archive import RecordArchive, read_doc
from orchestrator.state.file.record_files.codec import RecordDamaged, encode
from orchestrator.state.file.record_files.layout import CURRENT, Identity, stat_identity
from orchestrator.state.file.record_files.peek_read import parse_record
from orchestrator.state.file.record_files.recovery import Recovery, recover
from orchestrator.state.file.record_files.stamps import Stamps
from orchestrator.state.history_archive import ARCHIVE_BATCH, window

__all__ = ["RecordKind", "Recovery", "as_file"]

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")

_CURRENT = CURRENT  # ``layout``: where a record is, known without the store
# Records whose paths and last bytes are kept per kind: enough for the ones in use at once
# (a run's tasks in flight, their locks and ledger lines), not one per record ever written,
# which a run of 1,024 tasks made megabytes that outlived the tasks. The oldest kept goes
# first: a record in use is soon kept again, and the memory stays the same whatever the
# number of tasks (512 a kind cost a run of 512 tasks over 10 KiB a task: three paths and
# the bytes of each record of half a dozen kinds, all long ended).
_CACHE_SIZE = 64


class RecordKind(Generic[M]):
    """All records of one model (tasks, sessions, ...) under ``<root>/<name>/``."""

    def __init__(
        self,
        root: Path,
        name: str,
        model: type[M],
        key_field: str,
        ops: FileOperations,
        history_limit: int = 10,
    ) -> None:
        self.root = root
        self.name = name
        self.model = model
        self.key_field = key_field
        self.ops = ops
        self.history_limit = history_limit
        self.base = root / name
        self._base = os.fspath(self.base)
        self.quarantine_dir = root / "quarantine" / name
        self._path_cache: OrderedDict[str, tuple[Path, Path, Path]] = OrderedDict()
        self.archive = RecordArchive(self.dir_for, ops)
        # The body a batch's intent gives a new record of this kind (``batch_records``).
        self.unborn: Callable[[str], dict[str, Any] | None] | None = None
        # The bytes of each record as last read or written here, keyed by the file's identity
        # (inode, size, mtime, ctime): any write to the file, by us or anyone, changes the
        # ctime, so a match means the bytes on disk are these. Parsing still happens on every
        # load, so callers never share a model instance.
        self._bytes_cache: OrderedDict[str, tuple[Identity, bytes]] = OrderedDict()
        # What was last seen of the records some caller tracks, by their file's identity: a
        # stat tells whether one is unchanged, with no read (``stamps``). None: not kept.
        self.stamps: Stamps[M] | None = None

    # -- paths ------------------------------------------------------------------------------

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        paths = self._path_cache.get(key)
        if paths is None:
            directory = self.base / check_id(key, f"{self.name} id")
            paths = (directory, directory / _CURRENT, directory)
            _keep(self._path_cache, key, paths)
        return paths

    def dir_for(self, key: str) -> Path:
        return self._paths(key)[0]

    def current_path(self, key: str) -> Path:
        return self._paths(key)[1]

    def lock_path(self, key: str) -> Path:
        """The record's lock: its directory, locked with ``directory=True``."""
        return self._paths(key)[2]

    def current_file(self, key: str) -> str:
        """``current_path`` as a string (the key checked): no ``Path`` objects, which a read of
        10,000 records would make 10,000 of."""
        return os.path.join(self._base, check_id(key, f"{self.name} id"), _CURRENT)

    def keys(self) -> list[str]:
        return sorted(self.names())

    def names(self) -> set[str]:
        """The keys of the records on disk, in no order: one listing of the kind's directory
        (a name counts as ``dir_for(key).exists()`` counts it, without a stat per key)."""
        try:
            entries = os.scandir(self.base)
        except FileNotFoundError:
            return set()
        with entries:
            return {e.name for e in entries if e.is_dir() and not e.name.startswith(".")}

    # -- reading ----------------------------------------------------------------------------

    def parse(self, key: str, raw: bytes) -> M:
        """Bytes → model, or RecordDamaged saying why."""
        return parse_record(self.model, self.key_field, key, raw)

    def load(
        self, key: str, *, remember: bool = True, track: bool = False, known: M | None = None
    ) -> M | None:
        """The current record, None if there never was one; RecordDamaged if it is damaged.
        ``remember`` False: its bytes are not kept (a read of every record would only push
        out the ones in use). ``track``: its stamp is kept from now on (``stamps``).
        ``known``: the record as the caller holds it, given back as it is, not parsed again,
        when the file's bytes are exactly its JSON framed (``as_file``): a file another
        process wrote since, or a copy the caller lightened, reads as the file says."""
        path = self.current_file(key)
        try:
            identity, raw = self._read_current(key, path, remember)
        except FileNotFoundError:
            self._bytes_cache.pop(key, None)
            if self.history_versions(key):
                raise RecordDamaged("current version missing but history exists") from None
            return None
        except OSError as exc:
            raise _unreadable(Path(path), f"{self.name} record {key!r}", exc) from exc
        if known is not None and getattr(known, self.key_field) == key and raw == as_file(known):
            record = known  # what ``parse`` would make of these bytes, checks included
        else:
            record = self.parse(key, raw)
        if self.stamps is not None:
            self.stamps.saw(key, identity, record, track=track)
        return record

    def _read_current(self, key: str, path: str, remember: bool) -> tuple[Identity, bytes]:
        """The identity of the file at ``path`` (taken before its bytes were read, so a file
        that grew meanwhile gives an identity it no longer has) and its bytes."""
        cached = self._bytes_cache.get(key)
        if cached is not None and stat_identity(os.stat(path)) == cached[0]:
            return cached
        # The descriptor's own calls: a buffered ``open`` adds a seek, a terminal check and
        # a second look at the size to every record read (10,000 at a stop, twice).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            status = os.fstat(fd)
            identity = stat_identity(status)
            raw = _read_all(fd, status.st_size)
        finally:
            os.close(fd)
        if remember:
            self._remember(key, identity, raw)
        return identity, raw

    def _remember(self, key: str, identity: Identity, raw: bytes) -> None:
        _keep(self._bytes_cache, key, (identity, raw))

    def history_versions(self, key: str) -> list[int]:
        """Versions kept in history, oldest first."""
        try:  # a string path: no ``Path`` objects for a look at a record that is not there
            entries = os.scandir(os.path.join(self._base, check_id(key, f"{self.name} id")))
        except FileNotFoundError:
            return []
        versions = []
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("v") and name.endswith(".json") and name[1:-5].isdigit():
                    versions.append(int(name[1:-5]))
        return sorted(versions)

    def history_path(self, key: str, version: int) -> Path:
        return self.dir_for(key) / f"v{version:012d}.json"

    def load_version(self, key: str, version: int) -> M:
        return self.parse(key, self.history_path(key, version).read_bytes())

    def iter_history(self, key: str) -> Iterator[M]:
        """Valid history versions, newest first (damaged ones are skipped)."""
        for version in reversed(self.history_versions(key)):
            with contextlib.suppress(RecordDamaged, OSError):
                yield self.load_version(key, version)

    def version_docs(
        self, key: str, *, limit: int | None = None, before_version: int | None = None
    ) -> list[dict[str, Any]]:
        """Every version of the record as stored (JSON-shaped), the current one first, then
        its window, the versions waiting for the archive and the archive itself, which is
        only opened when the others do not fill ``limit``. Damaged files are skipped."""
        paths = [self.current_path(key)]
        paths += [self.history_path(key, v) for v in reversed(self.history_versions(key))]
        archive = self.archive
        paths += [archive.pending_path(key, v) for v in reversed(archive.pending_versions(key))]
        recent = []
        for path in paths:
            with contextlib.suppress(RecordDamaged, OSError, ValueError):
                recent.append(read_doc(path))
        found = window(recent, limit=limit, before_version=before_version)
        if limit is not None and len(found) >= limit:
            return found
        older = archive.archived_docs(key)
        return window([*recent, *older], limit=limit, before_version=before_version)

    # -- writing (exclusive lock held) ------------------------------------------------------

    def write(
        self,
        key: str,
        record: M,
        previous_version: int | None,
        *,
        durable: bool = True,
        remember: bool = True,
    ) -> M:
        """Make ``record`` current, archiving ``previous_version`` (if any) into history;
        ``remember`` False: its bytes are not kept (a batch of new records, not in use yet).
        Returns the record as stored: ``record`` itself, or, where it held a known secret's
        value, its masked copy (``secret_mask``), so no caller holds more than the file does.

        A refused write raises ``StateWriteError`` naming the file; the record is then
        unchanged, unless only the directory fsync failed after the replace (``applied``).
        """
        try:
            return self._write_file(key, record, previous_version, durable, remember)
        except NotSynced as exc:
            current = self.current_path(key)
            what = f"{self.name} record {key!r}"
            version = getattr(record, "version", "?")
            raise write_error(
                current,
                exc,
                f"{what} is at version {version} now, but its directory could not be synced, "
                "so a machine crash could bring back the version before",
            ) from exc
        except OSError as exc:
            current = self.current_path(key)
            what = f"{self.name} record {key!r}"
            unchanged = (
                f"{what} was not created"
                if previous_version is None
                else f"{what} is unchanged (still version {previous_version})"
            )
            raise write_error(current, exc, unchanged) from exc

    def _write_file(
        self, key: str, record: M, previous_version: int | None, durable: bool, remember: bool
    ) -> M:
        """``write`` without the translation of OSError."""
        directory, current, _ = self._paths(key)
        stored, text = masked_with_json(record)  # no secret is ever stored (``secret_mask``)
        data = encode(text)

        def archive_previous() -> None:
            if previous_version is None:
                return
            # A link left by an earlier attempt that crashed before its replace is the same
            # file, so an existing entry is fine.
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                self.ops.link(current, self.history_path(key, previous_version))

        self._bytes_cache.pop(key, None)
        if previous_version is None:
            self.ops.makedirs(directory)
        durable_write(current, data, self.ops, before_replace=archive_previous, sync=durable)
        stamps = self.stamps
        if remember or (stamps is not None and key in stamps):
            with contextlib.suppress(OSError):  # the write stands; only what is kept of it lost
                identity = stat_identity(os.stat(current))  # the lock held: no other writer
                if remember:
                    self._remember(key, identity, data)
                if stamps is not None:
                    stamps.saw(key, identity, stored)
        if previous_version is not None:
            # Only the version that just fell off the end; strays a crash left between two
            # steps (or an unlink the disk refused) are removed by ``prune_history`` during
            # upkeep. The write itself has succeeded by now, so nothing here may fail it.
            dropped = previous_version - self.history_limit
            if dropped > 0:
                victim = self.history_path(key, dropped)
                with contextlib.suppress(OSError):
                    if victim.exists():
                        self.ops.replace(victim, self.archive.pending_path(key, dropped))
                    else:
                        # A recovery skipped version numbers, so the oldest kept version is
                        # another one: find it (rare, and only until the gap has passed).
                        self.prune_history(key)
                    if dropped % ARCHIVE_BATCH == 0:
                        self.archive.compact(key, sync=durable)
        return stored

    def prune_history(self, key: str) -> int:
        """Move history beyond the newest ``history_limit`` versions to the archive (it is
        packed there once a batch is waiting); return how many moved."""
        versions = self.history_versions(key)
        excess = versions[: max(0, len(versions) - self.history_limit)]
        for version in excess:
            self.ops.replace(
                self.history_path(key, version), self.archive.pending_path(key, version)
            )
        if len(self.archive.pending_versions(key)) >= ARCHIVE_BATCH:
            self.archive.compact(key)
        return len(excess)

    def delete(self, key: str) -> None:
        """Remove every file of the record (an earlier version's ``.lock`` file too: nothing
        locks it now); its directory, the lock, the caller removes last (``unlink_and_release``)."""
        directory = self.dir_for(key)
        self._bytes_cache.pop(key, None)
        if self.stamps is not None:
            self.stamps.forget(key)
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return
        # The current version last: a crash part way leaves the record whole with less history,
        # never history without a current version (read as damage, and recovered: the deleted
        # record would come back).
        current = self.current_path(key).name
        for entry in sorted(entries, key=lambda e: e.name == current):
            self.ops.unlink(Path(entry.path))

    def remove_dir_if_empty(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.ops.rmdir(self.dir_for(key))

    # -- integrity (exclusive lock held) ----------------------------------------------------

    def load_or_recover(self, key: str) -> tuple[M | None, Recovery | None]:
        """Like ``load``, but a damaged record is quarantined and replaced from history."""
        try:
            return self.load(key), None
        except RecordDamaged as damage:
            return recover(self, key, str(damage))

    def verify(self, key: str) -> str | None:
        """Why the current record is damaged, or None when it is intact (or absent)."""
        try:
            self.load(key)
        except RecordDamaged as damage:
            return str(damage)
        return None


def as_file(record: BaseModel) -> bytes:
    """A record file holding exactly ``record``: its JSON framed (``codec``). Not masked: a
    file equal to it holds this very JSON, masked or not when it was written (a held record
    with a secret the file holds masked differs, and is parsed from the file)."""
    return encode(record.model_dump_json().encode())


def _unreadable(path: Path, what: str, exc: OSError) -> StateCorrupted:
    """The error for a record file that is not a readable file (a directory in its place, a
    file in place of its directory, no permission), with what to move or fix."""
    if exc.errno == errno.EACCES:
        way_out = f"make {path} readable for this user, then `council resume`"
    else:
        blocker = path
        if exc.errno == errno.ENOTDIR:
            blocker = next((p for p in reversed(path.parents) if p.is_file()), path)
        way_out = (
            f"move {blocker} away (the record is then recovered from its history or "
            "started afresh), then `council resume`"
        )
    return StateCorrupted(path, f"{what} cannot be read ({exc.strerror or exc})", way_out)


def _read_all(fd: int, size: int) -> bytes:
    """Every byte of the file open at ``fd`` (``size``: what it held a moment ago; it may
    have grown since: read until the end)."""
    chunks = [os.read(fd, max(size, 1) + 1)]
    while chunks[-1]:
        chunks.append(os.read(fd, 1 << 16))
    return b"".join(chunks)


def _keep(cache: OrderedDict[str, V], key: str, value: V) -> None:
    """Keep ``value`` for ``key`` in ``cache``, the oldest kept dropped once it holds
    ``_CACHE_SIZE``. Worker threads of one store share the caches: each step here is one
    call the GIL keeps whole (iterating the dict while another thread adds to it is not)."""
    if key not in cache and len(cache) >= _CACHE_SIZE:
        with contextlib.suppress(KeyError):  # emptied by another thread meanwhile
            cache.popitem(last=False)
    cache[key] = value
