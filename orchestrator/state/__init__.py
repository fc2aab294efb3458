"""State: the store protocol, its file backend, and the monitor that keeps it healthy."""

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
