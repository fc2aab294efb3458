"""The lines a landing adds, looked at for credentials nobody declared.

``added(calls, tip, base, detector, deadline=...)`` reads ``git diff -U0 base...tip``, from
the merge base of ``base`` and ``tip`` to ``tip`` (what the branch changed since it left the
base: content the base already had, or gained meanwhile, is never the branch's), as git writes
it, in chunks of 1 MiB, and hands each file's added lines, as runs of lines following each
other (bytes, never decoded here: ``Detector.runs``), to ``safety.secret_detect.Detector``:
one git process, the merge base found by it too, whatever the size of the diff, nothing of it
held but a chunk and a batch. A run of added (or deleted) lines is taken whole by bytes
operations, with no Python step per line; only the headers between them are read line by
line. Binary files are not read (git says only that they differ). Time is bounded as the rest
of the gate's (``deadline``, ``time.monotonic``): past it git is killed and the file under way
is named in ``late``; the caller fails the check for it, it never passes.
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
from orchestrator.safety.secret_detect import Detector, Hit, Run

__all__ = ["EMPTY_TREE", "Added", "added"]

_CHUNK = 1 << 20  # read from git at once
_BATCH_BYTES = 1 << 20  # a file's added lines handed to the detector at once
_PLUS, _MINUS, _BACKSLASH = b"+-\\"
_NOT_ADDED = re.compile(rb"\n[^+]")  # where a run of added lines ends
_NOT_DELETED = re.compile(rb"\n[^-]")
_HUNK = re.compile(rb"^@@ -[0-9,]+ \+([0-9]+)(?:,[0-9]+)? @@")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_NO_BASE = "no merge base"  # what git says of ``base...tip`` for unrelated histories


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
    # ``base...tip``: git diffs from their merge base (the first, as ``merge-base`` names it)
    # in the same process. Where it fails having read nothing, ``merge-base`` says whether
    # there is none (unrelated histories: everything ``tip`` holds is added, read from the
    # empty tree) or the diff failed for another reason. No base at all (``EMPTY_TREE``, a
    # push to a remote that has nothing): read from the empty tree at once.
    args: tuple[str, ...] = (EMPTY_TREE, tip) if base == EMPTY_TREE else (f"{base}...{tip}",)
    code, stderr = _read(calls, args, detector, result, deadline)
    if code != 0 and result.late is None and not result.bytes and base != EMPTY_TREE:
        fork = calls.run("merge-base", base, tip, check=False)
        if not (fork.ok and fork.out.strip()):
            args = (EMPTY_TREE, tip)
            code, stderr = _read(calls, args, detector, result, deadline)
    if result.late is None and code != 0:
        raise GitError(_args(args), code, stderr)
    return result


def _args(revisions: tuple[str, ...]) -> tuple[str, ...]:
    return (
        "-c",
        "core.quotePath=false",
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "-U0",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        *revisions,
        "--",
    )


def _read(
    calls: GitCalls,
    revisions: tuple[str, ...],
    detector: Detector,
    result: Added,
    deadline: float | None,
) -> tuple[int, str]:
    """One ``git diff`` streamed into ``result``; git's exit code and its error output."""
    args = _args(revisions)
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
        errors.seek(0)
        return code, errors.read().decode("utf-8", "replace")


class _Reader:
    """The diff read in chunks of ``_CHUNK`` bytes: each run of added lines taken whole by
    bytes operations (no Python step per line), the headers between them line by line."""

    def __init__(self, detector: Detector, result: Added, deadline: float | None) -> None:
        self._detector = detector
        self._result = result
        self._deadline = deadline
        self.path: str | None = None
        self._runs: list[Run] = []
        self._size = 0
        self._in_hunk = False
        self._number = 0
        self._last: tuple[int, bytes] | None = None  # the file's last added line: number, text

    def read(self, out: IO[bytes]) -> None:
        pending: list[bytes] = []  # a line longer than a chunk, so far
        while chunk := out.read(_CHUNK):
            self._result.bytes += len(chunk)
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                pending.append(chunk)
                continue
            whole = b"".join([*pending, chunk[:cut]]) if pending else chunk[:cut]
            pending = [chunk[cut:]] if cut < len(chunk) else []
            if self._lines(whole) or self._late():
                return
        if pending and self._lines(b"".join(pending) + b"\n"):
            return
        self._flush()
        self._late()

    def _lines(self, work: bytes) -> bool:
        """The lines of ``work`` (each ending with a line break); True once late."""
        pos, size = 0, len(work)
        while pos < size:
            lead = work[pos]
            if self._in_hunk and lead == _PLUS:
                match = _NOT_ADDED.search(work, pos)
                end = size - 1 if match is None else match.start()
                self._added(work[pos + 1 : end].replace(b"\n+", b"\n"))
                pos = end + 1
                continue
            if self._in_hunk and lead == _MINUS:
                match = _NOT_DELETED.search(work, pos)
                pos = size if match is None else match.start() + 1
                continue
            end = work.find(b"\n", pos)
            line = work[pos:end]
            pos = end + 1
            if self._in_hunk and lead == _BACKSLASH:  # \ No newline at end of file
                continue
            hunk = _HUNK.match(line)
            if hunk is not None and self.path is not None:
                self._number, self._in_hunk = int(hunk.group(1)), True
            elif line.startswith(b"diff --git "):
                self._flush()
                self.path, self._in_hunk, self._last = None, False, None
            elif line.startswith(b"+++ "):
                self.path = _path(line[4:])
            if self._late():
                return True
        return False

    def _added(self, text: bytes) -> None:
        """Added lines following each other from ``self._number`` (joined by line breaks)."""
        count = text.count(b"\n") + 1
        last = self._last
        before = last[1] if last is not None and last[0] == self._number - 1 else b""
        self._runs.append(Run(self._number, text, before))
        self._last = (self._number + count - 1, text[text.rfind(b"\n") + 1 :])
        self._number += count
        self._size += len(text)
        self._result.lines += count
        if self._size >= _BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._runs and self.path is not None:
            self._result.hits += self._detector.runs(self.path, self._runs)
        self._runs, self._size = [], 0

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
