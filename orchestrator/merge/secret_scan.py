"""Reading every object a landing would bring and looking for the secrets the run knows.

``scan(calls, tips, exclude, needles, deadline=...)`` lists the objects reachable from
``tips`` and not from ``exclude`` (``rev-list --objects``: the commits, the trees, the blobs a
landing adds to the base), then reads their types and bytes as git writes them (``cat-file
--batch``, read in chunks as it comes): two git processes, whatever the number of commits and
whatever the size of the files. Given the repository's git common dir, an object stored loose
there (what a session's commits, trees and files are) is read from its file instead, the same
bytes inflated in chunks as they come, never through a link, and ``cat-file`` is started only
for the others: one process where every object is loose. In each:

- a commit: its message, its author and its committer (the raw object holds them as written;
  the ``tree``/``parent`` lines are hex ids, which a secret is not);
- a tree: the names of its entries (a path name holding a secret);
- a blob: its content, whatever its size, streamed through ``safety.secret_stream.Finder``
  (``CHUNK`` bytes at a time, a needle across two chunks found): nothing of a large file is
  held, and the search stops at its first hit (the rest of it is read past).

Each is searched for every needle (``safety.secret_forms``: the value as is, URL-encoded,
JSON-escaped, hex, base64 at its 3 alignments), with whitespace inserted anywhere in it
(``secret_stream``: a token wrapped over two lines, base64 at any wrap width). A finding
names the place (commit short id and field, the path and the line of a file) and the
secret's *name*, never its value.

Time is bounded, not size: past ``deadline`` (``time.monotonic``) git is killed and the object
being read is named in ``late``, with each object never reached that has a path (how many
were never reached in ``unread``); the caller fails
the check for it, it never passes. The bytes of commits and trees are kept (``contents``) for
``secret_rewrite``, which masks what was found; of the blobs only one found holding a secret
and read in one chunk is kept (``secret_rewrite`` reads a larger one again).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from orchestrator.errors import GitError, PathEscapeError
from orchestrator.git.merge_tree import GitCalls
from orchestrator.safety import safe_write, secret_stream
from orchestrator.safety.secret_forms import forms
from orchestrator.safety.secret_stream import CHUNK, Finder

__all__ = [
    "Finding",
    "Needle",
    "Scan",
    "commit_fields",
    "masked",
    "masked_text",
    "needles_for",
    "scan",
    "tree_entries",
]

_LOOSE_ID = re.compile(r"[0-9a-f]{40}")
_RAW = 64 * 1024  # compressed bytes read from a loose object at a time
_LISTED = re.compile(rb"^([0-9a-f]{40,64})(?: (.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Needle:
    needle: bytes
    name: str  # the secret's name (``secret_mask.names``)
    encoding: str  # plain, url, json, hex, base64, base64url


@dataclass(frozen=True)
class Finding:
    where: str  # "commit 1a2b3c4d5e message", "file src/x.py", "path name a/b"
    name: str
    encoding: str
    object_id: str
    line: int | None = None  # of a file, where the value starts

    def describe(self) -> str:
        how = "" if self.encoding == "plain" else f" ({self.encoding}-encoded)"
        at = "" if self.line is None else f" at line {self.line}"
        return f"{self.where} holds the value of {self.name}{how}{at}"


@dataclass
class Scan:
    findings: list[Finding] = field(default_factory=list)
    # Not read whole before the deadline: the object under way ("file big.bin"), then each
    # never reached that has a path.
    late: list[str] = field(default_factory=list)
    unread: int = 0  # objects never reached before the deadline
    commits: list[str] = field(default_factory=list)  # the commits read
    kinds: dict[str, str] = field(default_factory=dict)  # object id -> type
    contents: dict[str, bytes] = field(default_factory=dict)  # object id -> bytes kept
    paths: dict[str, str] = field(default_factory=dict)  # object id -> a path it is at

    @property
    def hit(self) -> frozenset[str]:
        """The objects that hold a secret themselves."""
        return frozenset(finding.object_id for finding in self.findings)


def needles_for(names: Mapping[str, str]) -> list[Needle]:
    """The needles of every secret of ``names`` (value -> name), longest first."""
    found: dict[bytes, Needle] = {}
    for value, name in sorted(names.items()):
        for form in forms(value):
            if secret_stream.squeeze(form.needle):
                found.setdefault(form.needle, Needle(form.needle, name, form.encoding))
    return sorted(found.values(), key=lambda n: len(n.needle), reverse=True)


def scan(
    calls: GitCalls,
    tips: Sequence[str],
    exclude: Sequence[str],
    needles: Sequence[Needle],
    *,
    deadline: float | None = None,
    common: Path | None = None,
) -> Scan:
    """Every object of ``tips`` not reachable from ``exclude``, searched (module doc). With
    ``common`` (the repository's git common dir) the objects stored loose there are read from
    their files, and ``cat-file`` is started only for the others (module doc)."""
    result = Scan()
    if not tips or not needles:
        return result
    listed = calls.run("rev-list", "--objects", *tips, "--not", *exclude, "--").stdout
    order = _listed(listed.encode("utf-8", "surrogateescape"), result)
    if order and common is not None:
        order = _read_loose_all(common, order, result, needles, deadline)
    if order:
        _read_all(calls, order, result, needles, deadline)
    result.commits = [oid for oid in order if result.kinds.get(oid) == "commit"]
    return result


def commit_fields(data: bytes) -> tuple[list[bytes], bytes]:
    """A raw commit's header lines (continuation lines joined to theirs) and its message."""
    head, _, message = data.partition(b"\n\n")
    lines: list[bytes] = []
    for line in head.split(b"\n"):
        if line.startswith(b" ") and lines:
            lines[-1] += b"\n" + line
        else:
            lines.append(line)
    return lines, message


def tree_entries(data: bytes) -> list[tuple[bytes, bytes, str]]:
    """A raw tree's entries: (mode, name, object id)."""
    entries, at, size = [], 0, len(data)
    width = 20 if size == 0 or _sha1_tree(data) else 32
    while at < size:
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        oid = data[nul + 1 : nul + 1 + width].hex()
        entries.append((data[at:space], data[space + 1 : nul], oid))
        at = nul + 1 + width
    return entries


def _sha1_tree(data: bytes) -> bool:
    # Walk with 20-byte ids: a SHA-1 tree ends exactly at the end of its bytes.
    at, size = 0, len(data)
    while at < size:
        nul = data.find(b"\0", at)
        if nul < 0 or b" " not in data[at:nul]:
            return False
        at = nul + 21
    return at == size


def _listed(out: bytes, result: Scan) -> list[str]:
    """``rev-list --objects`` output: the ids in order, each object's path kept. A path
    holding a newline continues on the next line (no id of its own starts it)."""
    order: list[str] = []
    last: str | None = None
    for line in out.split(b"\n"):
        match = _LISTED.match(line)
        if match is None:
            if last is not None and line:
                result.paths[last] = result.paths.get(last, "") + "\n" + _text(line)
            continue
        last = match.group(1).decode("ascii")
        order.append(last)
        if match.group(2) is not None:
            result.paths.setdefault(last, _text(match.group(2)))
    return order


class _Late(Exception):
    """The deadline passed (or git ended) while an object was read."""


def _read_all(
    calls: GitCalls,
    order: list[str],
    result: Scan,
    needles: Sequence[Needle],
    deadline: float | None,
) -> None:
    """Read each object of ``order`` from one ``cat-file --batch``, searched as it comes;
    git killed at ``deadline``, the object then under way named in ``result.late``."""
    calls.count += 1
    with tempfile.TemporaryFile() as errors:
        git = calls.git.piped_sync("cat-file", "--batch", stderr=errors)
        assert git.stdin is not None and git.stdout is not None
        feeder = threading.Thread(target=_feed, args=(git.stdin, order), daemon=True)
        feeder.start()
        timer: threading.Timer | None = None
        killed = threading.Event()

        def stop() -> None:
            killed.set()
            git.kill()

        if deadline is not None:
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop)
            timer.daemon = True
            timer.start()
        reached, ended = 0, False
        try:
            for reached, oid in enumerate(order):  # noqa: B007 (``reached`` read after)
                _read_one(git.stdout, oid, result, needles, deadline)
            reached = len(order)
        except _Late:
            # git's output ended early: killed at the deadline, or git failed by itself
            ended = not killed.is_set() and (deadline is None or time.monotonic() < deadline)
            result.late.append(_place(order[reached], result, needles))
            rest = order[reached + 1 :]
            result.late += [_place(oid, result, needles) for oid in rest if result.paths.get(oid)]
            result.unread = len(rest)
        finally:
            if timer is not None:
                timer.cancel()
            if reached < len(order):
                git.kill()
            git.stdout.close()
            code = git.wait()
            feeder.join()
        if ended or (reached == len(order) and code != 0):
            errors.seek(0)
            text = errors.read().decode("utf-8", "replace")
            raise GitError(("cat-file", "--batch"), code, text)


def _read_loose_all(
    common: Path,
    order: list[str],
    result: Scan,
    needles: Sequence[Needle],
    deadline: float | None,
) -> list[str]:
    """Read and search each object of ``order`` stored loose under ``common``, in order, as
    ``cat-file`` would give it (the same bytes: a loose object is its type, size and bytes,
    compressed); the others, left for ``cat-file``. Past ``deadline`` the object under way is
    named in ``result.late`` with each never reached that has a path (as ``_read_all`` does),
    and nothing is left to read."""
    rest: list[str] = []
    for at, oid in enumerate(order):
        try:
            read = _read_loose(common, oid, result, needles, deadline)
        except _Late:
            result.late.append(_place(oid, result, needles))
            unread = order[at + 1 :]
            result.late += [_place(o, result, needles) for o in unread if result.paths.get(o)]
            result.unread = len(unread)
            return []
        if not read:
            rest.append(oid)
    return rest


def _read_loose(
    common: Path, oid: str, result: Scan, needles: Sequence[Needle], deadline: float | None
) -> bool:
    """``oid`` read from its loose file and searched, as ``_read_one`` reads it from
    ``cat-file``; False (nothing kept) when it is no loose object this can open (a link is never
    followed) or its bytes do not hash to its name: ``cat-file`` reads it as git does (a pack
    first), so a file planted at an object's path hides nothing. Damaged: as ``cat-file``."""
    if not _LOOSE_ID.fullmatch(oid):
        return False
    path = common / "objects" / oid[:2] / oid[2:]
    try:
        fd = safe_write.open_file(common, path, os.O_RDONLY)
    except (OSError, PathEscapeError):
        return False
    named = hashlib.sha1(usedforsecurity=False)  # what the bytes hash to, as they come
    with os.fdopen(fd, "rb") as file:
        chunks = _hashed(_inflated(file, zlib.decompressobj()), named.update)
        try:
            head = b""
            while b"\0" not in head and len(head) < 64:
                head += next(chunks, b"") or b"\0\0"
            kind_size, _, first = head.partition(b"\0")
            kind_word, _, size_word = kind_size.partition(b" ")
            kind, size = kind_word.decode("ascii"), int(size_word)
        except (ValueError, UnicodeDecodeError, zlib.error):
            raise _damaged(oid) from None
        if kind not in ("blob", "tree", "commit", "tag"):
            raise _damaged(oid)
        try:
            keep = _search_loose(oid, kind, size, first, chunks, result, needles, deadline)
        except zlib.error:
            raise _damaged(oid) from None
    if named.hexdigest() != oid:
        return False  # not what its name says: git's own read decides
    result.kinds[oid] = kind
    keep()
    return True


def _search_loose(
    oid: str,
    kind: str,
    size: int,
    first: bytes,
    chunks: Iterator[bytes],
    result: Scan,
    needles: Sequence[Needle],
    deadline: float | None,
) -> Callable[[], None]:
    """Read the rest of ``oid`` and search it: what it found, to be kept into ``result`` once
    the object is known to be what its name says."""
    if kind != "blob":
        data = first + b"".join(chunks)
        if len(data) != size:
            raise _damaged(oid)
        _in_time(deadline)

        def keep_whole() -> None:
            result.contents[oid] = data
            result.findings += _search(oid, kind, data, result, needles)

        return keep_whole
    finder = Finder([n.needle for n in needles])
    whole, seen, kept = size <= CHUNK, 0, []
    for piece in itertools.chain([first] if first else [], chunks):
        seen += len(piece)
        if seen > size:
            raise _damaged(oid)
        finder.feed(piece)
        if whole:
            kept.append(piece)
        _in_time(deadline)
    if seen != size:
        raise _damaged(oid)
    hit = finder.hit

    def keep_found() -> None:
        if hit is not None:
            needle = needles[hit.index]
            where = masked_text(f"file {result.paths.get(oid, oid)}", needles)
            result.findings.append(Finding(where, needle.name, needle.encoding, oid, hit.line))
            if whole:
                result.contents[oid] = b"".join(kept)

    return keep_found


def _hashed(chunks: Iterator[bytes], update: Callable[[bytes], None]) -> Iterator[bytes]:
    """``chunks`` as they come, each also given to ``update`` (a hash's)."""
    for piece in chunks:
        update(piece)
        yield piece


def _damaged(oid: str) -> GitError:
    return GitError(("cat-file", "--batch"), None, f"loose object {oid} is damaged")


def _inflated(file: IO[bytes], inflate: zlib._Decompress) -> Iterator[bytes]:
    """The bytes of a zlib stream read from ``file``, at most ``CHUNK`` at a time."""
    pending = b""
    while True:
        if not pending:
            pending = file.read(_RAW)
            if not pending:
                tail = inflate.flush()
                if tail:
                    yield tail
                if not inflate.eof:
                    raise zlib.error("the stream ends early")
                return
        out = inflate.decompress(pending, CHUNK)
        pending = inflate.unconsumed_tail
        if out:
            yield out
        if inflate.eof:
            return


def _feed(stdin: IO[bytes], order: list[str]) -> None:
    try:
        for at in range(0, len(order), 1024):
            stdin.write(b"".join(oid.encode() + b"\n" for oid in order[at : at + 1024]))
        stdin.close()
    except (BrokenPipeError, ValueError, OSError):
        pass  # git was killed (the deadline) or ended: the reader says what it read


def _read_one(
    out: IO[bytes], oid: str, result: Scan, needles: Sequence[Needle], deadline: float | None
) -> None:
    header = out.readline()
    if not header.endswith(b"\n"):
        raise _Late
    fields = header.split()
    if len(fields) != 3:
        return  # "<id> missing": an object git no longer has
    kind, size = fields[1].decode("ascii"), int(fields[2])
    result.kinds[oid] = kind
    if kind != "blob":
        data = _exactly(out, size + 1)[:size]
        result.contents[oid] = data
        result.findings += _search(oid, kind, data, result, needles)
        _in_time(deadline)
        return
    finder = Finder([n.needle for n in needles])
    left, whole = size, size <= CHUNK
    piece = b""
    while left:
        piece = out.read(min(CHUNK, left))
        if not piece:
            raise _Late
        left -= len(piece)
        finder.feed(piece)
        _in_time(deadline)
    if _exactly(out, 1) != b"\n":
        raise _Late
    hit = finder.hit
    if hit is not None:
        needle = needles[hit.index]
        where = masked_text(f"file {result.paths.get(oid, oid)}", needles)
        result.findings.append(Finding(where, needle.name, needle.encoding, oid, hit.line))
        if whole:
            result.contents[oid] = piece


def _exactly(out: IO[bytes], size: int) -> bytes:
    data = out.read(size)
    if len(data) != size:
        raise _Late
    return data


def _in_time(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise _Late


def _place(oid: str, result: Scan, needles: Sequence[Needle]) -> str:
    kind, path = result.kinds.get(oid), result.paths.get(oid, "")
    if kind == "blob":
        where = f"file {path or oid[:10]}"
    elif kind is None and path:
        where = f"path {path}"  # a file or a directory: git said neither before the deadline
    else:
        where = f"{kind or 'object'} {path or oid[:10]}"
    return masked_text(where, needles)


def _search(
    oid: str, kind: str, data: bytes, result: Scan, needles: Sequence[Needle]
) -> list[Finding]:
    short = oid[:10]
    if kind == "commit":
        lines, message = commit_fields(data)
        places = [(f"commit {short} message", message)]
        for line in lines:
            word = line.split(b" ", 1)[0]
            if word in (b"author", b"committer"):
                places.append((f"commit {short} {word.decode()}", line))
            elif word not in (b"tree", b"parent"):
                places.append((f"commit {short} header {word.decode('ascii', 'replace')}", line))
    elif kind == "tree":
        base = result.paths.get(oid, "")
        places = [
            (f"path name {_join(base, _text(name))}", name)
            for _mode, name, _child in tree_entries(data)
        ]
    else:
        places = [(f"{kind} {short}", data)]
    found = []
    wanted = [n.needle for n in needles]
    for where, text in places:
        hit = secret_stream.first(text, wanted)
        if hit is not None:
            needle = needles[hit.index]
            found.append(Finding(masked_text(where, needles), needle.name, needle.encoding, oid))
    return found


def masked(data: bytes, needles: Sequence[Needle]) -> bytes:
    """``data`` with every needle replaced by ``***``, whitespace inserted in it or not
    (``secret_stream.mask``); the same object when none is in it."""
    if not needles:
        return data
    return secret_stream.mask(data, [n.needle for n in needles])


def masked_text(text: str, needles: Sequence[Needle]) -> str:
    """``masked`` for a text to show (a path name may hold the secret)."""
    return masked(text.encode("utf-8", "surrogateescape"), needles).decode("utf-8", "replace")


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
