# Written by `python -m orchestrator.lazy_stubs` from `_NAMES` in __init__.py: do not edit.
# Type checkers read this stub; at run time each name loads on first use (lazy_names).

from orchestrator.state.changes import (
    ChangeStream,
    RecordChange,
    RecordRef,
)
from orchestrator.state.file.store import (
    FileStateStore,
)
from orchestrator.state.protocol import (
    RecordProblem,
    StateStore,
    TaskInit,
)

__all__ = [
    "ChangeStream",
    "FileStateStore",
    "RecordChange",
    "RecordProblem",
    "RecordRef",
    "StateStore",
    "TaskInit",
]
