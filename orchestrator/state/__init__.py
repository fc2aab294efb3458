"""State: the store protocol, its file backend, and the monitor that keeps it healthy."""

from orchestrator.state.file.store import FileStateStore
from orchestrator.state.protocol import RecordProblem, StateStore, TaskInit

__all__ = ["FileStateStore", "RecordProblem", "StateStore", "TaskInit"]
