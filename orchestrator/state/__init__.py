"""State: the store protocol, its file backend, and the monitor that keeps it healthy.

Names are loaded on first use: a light part (``state.file.layout``, which ``council status``'s
quick look reads) does not import the whole store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator import lazy_names

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


__getattr__, __dir__ = lazy_names.exports(__name__, _WHERE, __all__)
