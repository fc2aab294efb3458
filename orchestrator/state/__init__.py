"""State: the store protocol, its file backend, and the monitor that keeps it healthy.

Names are loaded on first use: a light part (``state.file.layout``, which ``council status``'s
quick look reads) does not import the whole store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.state.changes import ChangeStream, RecordChange, RecordRef
    from orchestrator.state.file.store import FileStateStore
    from orchestrator.state.protocol import RecordProblem, StateStore, TaskInit

__all__ = [
    "ChangeStream",
    "FileStateStore",
    "RecordChange",
    "RecordProblem",
    "RecordRef",
    "StateStore",
    "TaskInit",
]

_WHERE = {
    "ChangeStream": "orchestrator.state.changes",
    "RecordChange": "orchestrator.state.changes",
    "RecordRef": "orchestrator.state.changes",
    "FileStateStore": "orchestrator.state.file.store",
    "RecordProblem": "orchestrator.state.protocol",
    "StateStore": "orchestrator.state.protocol",
    "TaskInit": "orchestrator.state.protocol",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'orchestrator.state' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
