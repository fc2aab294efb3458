"""Reading every object a landing would bring and looking for the secrets the run knows.

``scan(calls, tips, exclude, needles)`` reads the objects reachable from ``tips`` and not from
``exclude`` (``rev-list --objects``: the commits, the trees, the blobs a landing adds to the
base), their types and sizes (``cat-file --batch-check``), then their bytes (``cat-file
--batch``, in batches of at most ``BATCH`` bytes): three kinds of git process, whatever the
number of commits. In each:

- a commit: its message, its author and its committer (the raw object holds them as written;
  the ``tree``/``parent`` lines are hex ids, which a secret is not);
- a tree: the names of its entries (a path name holding a secret);
- a blob: its content, up to ``LIMIT`` bytes; a larger one is named in ``unchecked``.

Each is searched for every needle (``safety.secret_forms``: the value as is, URL-encoded,
hex, base64 at its 3 alignments). A finding names the place (commit short id and field, the
path) and the secret's *name*, never its value. The bytes read are kept (``contents``) for
``secret_rewrite``, which masks what was found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.git.merge_tree import GitCalls
from orchestrator.safety.redaction import MASK
from orchestrator.safety.secret_forms import forms

__all__ = [
    "BATCH",
    "LIMIT",
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

LIMIT = 16 * 1024 * 1024  # bytes of one blob read; a larger one is named, unchecked
BATCH = 64 * 1024 * 1024  # bytes asked of one cat-file --batch
MASK_BYTES = MASK.encode()
_LISTED = re.compile(rb"^([0-9a-f]{40,64})(?: (.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Needle:
    needle: bytes
    name: str  # the secret's name (``secret_mask.names``)
    encoding: str  # plain, url, hex, base64, base64url


@dataclass(frozen=True)
class Finding:
    where: str  # "commit 1a2b3c4d5e message", "file src/x.py", "path name a/b"
    name: str
    encoding: str
    object_id: str

    def describe(self) -> str:
        how = "" if self.encoding == "plain" else f" ({self.encoding}-encoded)"
        return f"{self.where} holds the value of {self.name}{how}"


@dataclass
class Scan:
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # paths of blobs over LIMIT
    commits: list[str] = field(default_factory=list)  # the commits read
    kinds: dict[str, str] = field(default_factory=dict)  # object id -> type
    contents: dict[str, bytes] = field(default_factory=dict)  # object id -> bytes read
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
            found.setdefault(form.needle, Needle(form.needle, name, form.encoding))
    return sorted(found.values(), key=lambda n: len(n.needle), reverse=True)


def scan(
    calls: GitCalls, tips: Sequence[str], exclude: Sequence[str], needles: Sequence[Needle]
) -> Scan:
    """Every object of ``tips`` not reachable from ``exclude``, searched (module doc)."""
    result = Scan()
    if not tips or not needles:
        return result
    listed = calls.run("rev-list", "--objects", *tips, "--not", *exclude, "--").stdout
    order = _listed(listed.encode("utf-8", "surrogateescape"), result)
    if not order:
        return result
    calls.count += 1
    checked = calls.git.feed_sync(
        "cat-file", "--batch-check", data=b"".join(oid.encode() + b"\n" for oid in order)
    )
    sizes: dict[str, int] = {}
    for line in checked.stdout.splitlines():
        parts = line.decode("ascii", "replace").split()
        if len(parts) == 3 and parts[1] != "missing":
            result.kinds[parts[0]] = parts[1]
            sizes[parts[0]] = int(parts[2])
    wanted = []
    for oid in order:
        kind, size = result.kinds.get(oid), sizes.get(oid, 0)
        if kind is None:
            continue
        if kind == "blob" and size > LIMIT:
            result.unchecked.append(masked_text(result.paths.get(oid, oid), needles))
            continue
        wanted.append((oid, size))
    for batch in _batches(wanted):
        result.contents.update(_read_batch(calls, batch))
    result.commits = [oid for oid in order if result.kinds.get(oid) == "commit"]
    for oid in order:
        data = result.contents.get(oid)
        if data is not None:
            result.findings += _search(oid, result.kinds[oid], data, result, needles)
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


def _batches(wanted: Iterable[tuple[str, int]]) -> Iterable[list[str]]:
    batch: list[str] = []
    total = 0
    for oid, size in wanted:
        if batch and total + size > BATCH:
            yield batch
            batch, total = [], 0
        batch.append(oid)
        total += size
    if batch:
        yield batch


def _read_batch(calls: GitCalls, batch: list[str]) -> dict[str, bytes]:
    calls.count += 1
    out = calls.git.feed_sync(
        "cat-file", "--batch", data=b"".join(oid.encode() + b"\n" for oid in batch)
    ).stdout
    found: dict[str, bytes] = {}
    at = 0
    while at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3:
            continue  # "<id> missing"
        size = int(header[2])
        found[header[0].decode("ascii")] = out[at : at + size]
        at += size + 1
    return found


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
    elif kind == "blob":
        places = [(f"file {result.paths.get(oid, oid)}", data)]
    else:
        places = [(f"{kind} {short}", data)]
    found = []
    for where, text in places:
        needle = next((n for n in needles if n.needle in text), None)
        if needle is not None:
            found.append(Finding(masked_text(where, needles), needle.name, needle.encoding, oid))
    return found


def masked(data: bytes, needles: Sequence[Needle]) -> bytes:
    """``data`` with every needle (longest first) replaced by ``***``."""
    for needle in needles:
        if needle.needle in data:
            data = data.replace(needle.needle, MASK_BYTES)
    return data


def masked_text(text: str, needles: Sequence[Needle]) -> str:
    """``masked`` for a text to show (a path name may hold the secret)."""
    return masked(text.encode("utf-8", "surrogateescape"), needles).decode("utf-8", "replace")


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
