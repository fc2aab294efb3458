"""State: the store protocol, its file backend, and the monitor that keeps it healthy.

Names are loaded on first use: a light part (``state.file.record_files.layout``, which
``council status``'s quick look reads) does not import the whole store. Each name is written
once, in ``_NAMES`` below; type checkers read ``__init__.pyi``, written from it
(``orchestrator.lazy_stubs``).
"""

from __future__ import annotations

from orchestrator import lazy_names

# the module that defines them -> the names exported
_NAMES: dict[str, tuple[str, ...]] = {
    "orchestrator.state.protocol": (
        "RecordProblem",
        "StateStore",
        "TaskInit",
    ),
    "orchestrator.state.changes": (
        "ChangeStream",
        "RecordChange",
        "RecordRef",
    ),
    "orchestrator.state.file.store": ("FileStateStore",),
}

__all__, __getattr__, __dir__ = lazy_names.exports(__name__, _NAMES)
