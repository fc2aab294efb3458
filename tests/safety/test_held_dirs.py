"""The state store's held directory descriptors (``orchestrator.safety.held_dirs``): a
directory reached once, each use checked, never a link followed, never an fd closed in use."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import PathEscapeError
from orchestrator.models import KeyedRecord
from orchestrator.safety.held_dirs import HeldDirs
from orchestrator.state.file.fsops import FileOps, durable_write


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[FileOps]:
    fs = FileOps()
    fs.confine(tmp_path / "root")
    yield fs
    fs.close_dirs()


def _dir_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``os.open`` of a directory from now on (its path or name)."""
    seen: list[str] = []
    real = os.open

    def counting(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_DIRECTORY:
            seen.append(os.fspath(path))  # type: ignore[arg-type]
        return real(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting)
    return seen


async def test_a_record_written_again_and_again_reaches_its_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.state.file.store import FileStateStore

    async with FileStateStore.for_repo(tmp_path) as store:
        await store.put_record("ns", "k", {"n": 0})
        opens = _dir_opens(monkeypatch)
        for n in range(1, 21):
            await store.put_record("ns", "k", {"n": n})
        record = await store.get_record("ns", "k")
    assert isinstance(record, KeyedRecord) and record.data == {"n": 20}
    # Each write is a lock, a temp file, a history link, a rename and a directory fsync:
    # reached afresh, that was five opens of the record's directory per write (100 here).
    record_dir = [p for p in opens if p.endswith(os.path.join("ns", "k")) or p == "k"]
    assert record_dir == [], opens


def test_a_link_put_in_place_of_a_held_directory_is_refused_at_the_next_write(
    tmp_path: Path, ops: FileOps
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    record = tmp_path / "root" / "tasks" / "t1"
    ops.makedirs(record)
    durable_write(record / "current.json", b"one", ops)
    # A writer the sandbox did not hold moves the directory aside and leaves a link.
    record.rename(record.with_name("aside"))
    record.symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError) as refused:
        durable_write(record / "current.json", b"two", ops)
    assert refused.value.errno == errno.ELOOP
    assert "'t1' on the way is a symbolic link" in str(refused.value)
    assert list(outside.iterdir()) == []
    assert (record.with_name("aside") / "current.json").read_bytes() == b"one"


def test_a_link_put_in_place_of_a_parent_of_a_held_directory_is_refused(
    tmp_path: Path, ops: FileOps
) -> None:
    outside = tmp_path / "outside"
    (outside / "t1").mkdir(parents=True)
    kind = tmp_path / "root" / "tasks"
    ops.makedirs(kind / "t1")
    durable_write(kind / "t1" / "current.json", b"one", ops)
    kind.rename(kind.with_name("aside"))
    kind.symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError) as refused:
        durable_write(kind / "t1" / "current.json", b"two", ops)
    assert refused.value.errno == errno.ELOOP and "'tasks' on the way" in str(refused.value)
    assert list((outside / "t1").iterdir()) == []


def test_a_held_directory_removed_and_made_again_elsewhere_gets_the_write(
    tmp_path: Path, ops: FileOps
) -> None:
    record = tmp_path / "root" / "records" / "ns" / "k"
    ops.makedirs(record)
    durable_write(record / "current.json", b"one", ops)
    # Another process deletes the record and writes it afresh: a new directory, same path.
    other = FileOps()
    other.confine(tmp_path / "root")
    other.unlink(record / "current.json")
    other.rmdir(record)
    other.makedirs(record)
    other.close_dirs()
    durable_write(record / "current.json", b"two", ops)
    assert (record / "current.json").read_bytes() == b"two"


def test_a_directory_in_use_is_never_closed_by_holding_others(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("a", "b", "c", "d"):
        (root / name).mkdir(parents=True)
    dirs = HeldDirs(lambda _: str(root), capacity=1)

    def inner(fd_a: int) -> list[str]:
        # Holding three more while "a" is in use pushes "a" out of the one place kept.
        for name in ("b", "c", "d"):
            dirs.run(str(root / name), False, os.fsync)
        os.close(os.open("x", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd_a))
        return sorted(os.listdir(fd_a))

    assert dirs.run(str(root / "a"), False, inner) == ["x"]
    assert len(dirs) == 1
    dirs.close()
    assert len(dirs) == 0


def test_close_lets_every_descriptor_go(tmp_path: Path, ops: FileOps) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for n in range(10):
        ops.makedirs(tmp_path / "root" / "tasks" / f"t{n}")
    assert len(os.listdir("/proc/self/fd")) > before
    ops.close_dirs()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_directory_outside_every_root_is_refused(tmp_path: Path, ops: FileOps) -> None:
    with pytest.raises(OSError) as refused:
        ops.makedirs(tmp_path / "elsewhere")
    assert refused.value.errno == errno.EPERM
    dirs = HeldDirs(lambda _: str(tmp_path / "root"))
    with pytest.raises(PathEscapeError):
        dirs.run(str(tmp_path / "root" / ".." / "elsewhere"), True, os.fsync)
    assert not (tmp_path / "elsewhere").exists()
