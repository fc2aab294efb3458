"""The lines a landing adds, looked at for credentials nobody declared.

``added(calls, tip, base, detector, deadline=...)`` reads ``git diff -U0`` from the merge base
of ``base`` and ``tip`` to ``tip`` (what the branch changed since it left the base: content
the base already had, or gained meanwhile, is never the branch's), as git writes it, and hands
each file's added lines, in batches, to ``safety.secret_detect.Detector``: one git process,
whatever the size of the diff, nothing of it held but a batch. Binary files are not read (git
says only that they differ). Time is bounded as the rest of the gate's (``deadline``,
``time.monotonic``): past it git is killed and the file under way is named in ``late``; the
caller fails the check for it, it never passes.
"""

from __future__ import annotations

import codecs
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO

from orchestrator.errors import GitError
from orchestrator.git.merge_tree import GitCalls
from orchestrator.safety.secret_detect import Detector, Hit

__all__ = ["Added", "added"]

_BATCH_LINES = 4096
_BATCH_BYTES = 1 << 20
_HUNK = re.compile(rb"^@@ -[0-9,]+ \+([0-9]+)(?:,[0-9]+)? @@")
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass
class Added:
    hits: list[Hit] = field(default_factory=list)
    late: str | None = None  # the file being read when the deadline passed
    lines: int = 0  # added lines looked at
    bytes: int = 0  # of the diff read


def added(
    calls: GitCalls,
    tip: str,
    base: str,
    detector: Detector,
    *,
    deadline: float | None = None,
) -> Added:
    """The credentials in the lines ``tip`` adds over ``base`` (module doc)."""
    result = Added()
    fork = calls.run("merge-base", base, tip, check=False)
    start = fork.out.strip() if fork.ok and fork.out.strip() else _EMPTY_TREE
    if start == tip:
        return result
    args = (
        "-c",
        "core.quotePath=false",
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "-U0",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        start,
        tip,
        "--",
    )
    calls.count += 1
    with tempfile.TemporaryFile() as errors:
        git = calls.git.piped_sync(*args, stderr=errors)
        assert git.stdin is not None and git.stdout is not None
        git.stdin.close()
        killed = threading.Event()

        def stop() -> None:
            killed.set()
            git.kill()

        timer: threading.Timer | None = None
        if deadline is not None:
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop)
            timer.daemon = True
            timer.start()
        reader = _Reader(detector, result, deadline)
        try:
            reader.read(git.stdout)
        finally:
            if timer is not None:
                timer.cancel()
            if result.late is not None:
                git.kill()
            git.stdout.close()
            code = git.wait()
        if killed.is_set() and result.late is None:
            result.late = reader.path or "the diff"
        if result.late is None and code != 0:
            errors.seek(0)
            raise GitError(args, code, errors.read().decode("utf-8", "replace"))
    return result


class _Reader:
    def __init__(self, detector: Detector, result: Added, deadline: float | None) -> None:
        self._detector = detector
        self._result = result
        self._deadline = deadline
        self.path: str | None = None
        self._batch: list[tuple[int, str]] = []
        self._size = 0

    def read(self, out: IO[bytes]) -> None:
        number, in_hunk = 0, False
        for raw in out:
            self._result.bytes += len(raw)
            line = raw.rstrip(b"\n")
            if in_hunk and line.startswith(b"+"):
                self._add(number, line[1:])
                number += 1
                continue
            if in_hunk and line.startswith((b"-", b"\\")):
                continue
            hunk = _HUNK.match(line)
            if hunk is not None and self.path is not None:
                number, in_hunk = int(hunk.group(1)), True
            elif line.startswith(b"diff --git "):
                self._flush()
                self.path, in_hunk = None, False
            elif line.startswith(b"+++ "):
                self.path = _path(line[4:])
            if self._late():
                return
        self._flush()
        self._late()

    def _add(self, number: int, text: bytes) -> None:
        self._batch.append((number, text.decode("utf-8", "replace")))
        self._size += len(text)
        self._result.lines += 1
        if len(self._batch) >= _BATCH_LINES or self._size >= _BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._batch and self.path is not None:
            self._result.hits += self._detector.lines(self.path, self._batch)
        self._batch, self._size = [], 0

    def _late(self) -> bool:
        if self._deadline is not None and time.monotonic() > self._deadline:
            self._result.late = self.path or "the diff"
            return True
        return False


def _path(header: bytes) -> str | None:
    """The path of a ``+++ b/<path>`` header (None for ``/dev/null``: a deleted file)."""
    if header.startswith(b'"') and header.endswith(b'"'):
        header = codecs.escape_decode(header[1:-1])[0]
    if not header.startswith(b"b/"):
        return None
    return header[2:].decode("utf-8", "replace")
