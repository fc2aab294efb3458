"""A file layer that kills its own process at a chosen file operation, for crash tests that
need a real death: no ``finally``, no cleanup, the kernel closing the files and dropping the
locks, as when the machine's OOM killer or an operator's ``kill -9`` strikes.

``KillingFileOps(op, nth, match)`` behaves as ``FileOps`` until the ``nth`` call of ``op``
(``replace`` or ``unlink``) whose destination path contains ``match``, and sends the process
SIGKILL just before that call does anything. A test runs a child process whose store uses it
(``FileStateStore(root, file_ops=...)``) and then looks at the disk with a fresh store::

    ops = KillingFileOps("replace", nth=2, match="current.json")  # between two record writes
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from orchestrator.state.file.fsops import FileOps

__all__ = ["KillingFileOps"]


class KillingFileOps(FileOps):
    """``FileOps`` that SIGKILLs the process at one chosen call (module doc)."""

    def __init__(self, op: str, nth: int, match: str) -> None:
        if op not in ("replace", "unlink"):
            raise ValueError(f"cannot kill at {op!r}: replace or unlink")
        self.op, self.nth, self.match = op, nth, match
        self.seen = 0

    def _maybe_die(self, op: str, path: Path) -> None:
        if op == self.op and self.match in str(path):
            self.seen += 1
            if self.seen == self.nth:
                os.kill(os.getpid(), signal.SIGKILL)

    def replace(self, src: Path, dst: Path) -> None:
        self._maybe_die("replace", dst)
        super().replace(src, dst)

    def unlink(self, path: Path) -> None:
        self._maybe_die("unlink", path)
        super().unlink(path)
