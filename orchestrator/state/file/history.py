"""Every version of any record of the file backend, the compressed archive included
(``record_history``)."""

from __future__ import annotations

from typing import Any

from orchestrator.ids import check_id
from orchestrator.state.file.core import FileCore
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.history_kinds import parse_kind

__all__ = ["FileHistory"]


class FileHistory:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    def kind(self, kind: str) -> RecordKind[Any]:
        name, namespace = parse_kind(kind)
        core = self._core
        if namespace is not None:
            return core.namespace(namespace)
        kinds: dict[str, RecordKind[Any]] = {
            "tasks": core.tasks,
            "sessions": core.sessions,
            "counters": core.counters,
        }
        return kinds[name]

    async def record_history(
        self,
        kind: str,
        key: str,
        *,
        limit: int | None = None,
        before_version: int | None = None,
    ) -> list[dict[str, Any]]:
        records = self.kind(kind)
        check_id(key, f"{records.name} key")
        # Shared: no version moves between the window, the waiting files and the archive
        # while they are read. Never written: [] (taking its lock would make its directory).
        return await self._core.locked_call(
            records,
            key,
            lambda _: records.version_docs(key, limit=limit, before_version=before_version),
            shared=True,
            absent=list,
        )
