"""An update of a session takes the version this store wrote last as it is, when the file
holds exactly it (``FileSessions``' ``_wrote``, ``RecordKind.load``'s ``known``): a session of
10,000 tasks holds megabytes of options, parsed again on every update before. A version
written by anyone else, or a copy its caller changed, is read as the file says."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.models import SessionStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.record_files.records import RecordKind

pytestmark = pytest.mark.anyio


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the records parsed from now on."""
    parsed: list[str] = []
    parse = RecordKind.parse

    def counted(self: RecordKind[object], key: str, raw: bytes) -> object:
        parsed.append(self.name)
        return parse(self, key, raw)

    monkeypatch.setattr(RecordKind, "parse", counted)
    return parsed


async def test_an_update_after_this_stores_own_takes_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        session = await store.create_session({"big": list(range(1000))}, ["a"])
        sid = session.session_id
        await store.update_session(sid, {"metadata": {"n": 1}}, metrics=False)
        parsed = counting(monkeypatch)
        second = await store.update_session(sid, {"metadata": {"n": 2}}, metrics=False)
        assert "sessions" not in parsed  # the version it wrote, not parsed again
        assert second.metadata == {"n": 2} and second.version == session.version + 2
        assert second.options == {"big": list(range(1000))}


async def test_a_version_written_by_another_store_is_read_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "state"
    async with FileStateStore(root) as store, FileStateStore(root) as other:
        sid = (await store.create_session({}, ["a"])).session_id
        await store.update_session(sid, {"metadata": {"n": 1}}, metrics=False)
        await other.update_session(sid, {"options": {"from": "other"}}, metrics=False)
        parsed = counting(monkeypatch)
        stopped = {"status": SessionStatus.INTERRUPTED}
        after = await store.update_session(sid, stopped, metrics=False)
        assert "sessions" in parsed
        assert after.options == {"from": "other"} and after.metadata == {"n": 1}
        assert after.status == SessionStatus.INTERRUPTED


async def test_a_returned_version_its_caller_changed_is_not_taken(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        sid = (await store.create_session({}, ["a"])).session_id
        first = await store.update_session(sid, {"metadata": {"n": 1}}, metrics=False)
        first.metadata["n"] = 99  # the caller's own copy, changed in place, never written
        stopped = {"status": SessionStatus.INTERRUPTED}
        after = await store.update_session(sid, stopped, metrics=False)
        assert after.metadata == {"n": 1}  # as the file says
