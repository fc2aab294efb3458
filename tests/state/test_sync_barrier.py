"""The file store's barrier for a batch of records (``FileOps.sync_all``) is ``syncfs`` of the
file system that holds the store on Linux, not ``sync`` of every file system of the machine,
and a failure of it is the caller's ``OSError``, never passed over."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.state.file import fsops


def test_the_barrier_is_the_stores_file_system_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []
    monkeypatch.setattr(os, "sync", lambda: called.append("sync"))
    ops = fsops.FileOps()
    ops.confine(tmp_path)
    (tmp_path / "tasks").mkdir()
    ops.sync_all(tmp_path / "tasks")
    # syncfs did it on Linux; elsewhere there is none, and sync is the barrier.
    assert called == ([] if sys.platform.startswith("linux") else ["sync"])


def test_a_failed_barrier_is_an_error_naming_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def failing(fd: int) -> int:
        import ctypes

        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(fsops, "_SYNCFS", [failing])
    ops = fsops.FileOps()
    ops.confine(tmp_path)
    with pytest.raises(OSError) as raised:
        ops.sync_all(tmp_path)
    assert raised.value.errno == errno.EIO and raised.value.filename == str(tmp_path)


def test_a_directory_outside_the_store_is_refused(tmp_path: Path) -> None:
    ops = fsops.FileOps()
    ops.confine(tmp_path / "store")
    with pytest.raises(OSError):
        ops.sync_all(tmp_path / "elsewhere")
