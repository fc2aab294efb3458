"""Reading every object a landing would bring and looking for the secrets the run knows.

``scan(calls, tips, exclude, needles)`` lists the objects reachable from ``tips`` and not from
``exclude`` (``rev-list --objects``: the commits, the trees, the blobs a landing adds to the
base), a blob over ``LIMIT`` listed as left out (``--filter=blob:limit``, so its size is never
asked separately), then reads their types and bytes (``cat-file --batch``): two git processes,
whatever the number of commits. In each:

- a commit: its message, its author and its committer (the raw object holds them as written;
  the ``tree``/``parent`` lines are hex ids, which a secret is not);
- a tree: the names of its entries (a path name holding a secret);
- a blob: its content, up to ``LIMIT`` bytes; a larger one is named in ``unchecked``, at the
  path a tree read gives it (git lists a left-out object without its path).

Each is searched for every needle (``safety.secret_forms``: the value as is, URL-encoded,
hex, base64 at its 3 alignments). A finding names the place (commit short id and field, the
path) and the secret's *name*, never its value. The bytes read are kept (``contents``) for
``secret_rewrite``, which masks what was found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.git.merge_tree import GitCalls
from orchestrator.safety.redaction import MASK
from orchestrator.safety.secret_forms import forms

__all__ = [
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
MASK_BYTES = MASK.encode()
_LISTED = re.compile(rb"^([0-9a-f]{40,64})(?: (.*))?$", re.DOTALL)
_OMITTED = re.compile(rb"^~([0-9a-f]{40,64})$")


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
    listed = calls.run(
        "rev-list",
        "--objects",
        f"--filter=blob:limit={LIMIT + 1}",  # git leaves out a blob of this size or more
        "--filter-print-omitted",
        *tips,
        "--not",
        *exclude,
        "--",
    ).stdout
    omitted: list[str] = []
    order = _listed(listed.encode("utf-8", "surrogateescape"), result, omitted)
    if order:
        result.contents.update(_read_batch(calls, order, result.kinds))
    result.commits = [oid for oid in order if result.kinds.get(oid) == "commit"]
    if omitted:
        at = _blob_paths(order, result)
        for oid in omitted:
            result.unchecked.append(masked_text(at.get(oid, oid), needles))
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


def _listed(out: bytes, result: Scan, omitted: list[str]) -> list[str]:
    """``rev-list --objects`` output: the ids in order, each object's path kept. A path
    holding a newline continues on the next line (no id of its own starts it). A blob the
    filter left out (``~<id>``) goes to ``omitted`` instead."""
    order: list[str] = []
    last: str | None = None
    for line in out.split(b"\n"):
        left_out = _OMITTED.match(line)
        if left_out is not None:
            omitted.append(left_out.group(1).decode("ascii"))
            last = None
            continue
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


def _blob_paths(order: Sequence[str], result: Scan) -> dict[str, str]:
    """Where the trees read put each blob (its first path, in the listing's order): the path
    of a blob ``rev-list`` left out, which it lists without one."""
    at: dict[str, str] = {}
    for oid in order:
        data = result.contents.get(oid)
        if data is None or result.kinds.get(oid) != "tree":
            continue
        base = result.paths.get(oid, "")
        for mode, name, child in tree_entries(data):
            if mode not in (b"40000", b"160000"):
                at.setdefault(child, _join(base, _text(name)))
    return at


def _read_batch(calls: GitCalls, batch: list[str], kinds: dict[str, str]) -> dict[str, bytes]:
    """The bytes of each object of ``batch`` (one ``cat-file --batch``), its type put in
    ``kinds``; an object git no longer has is left out."""
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
        oid, size = header[0].decode("ascii"), int(header[2])
        kinds[oid] = header[1].decode("ascii")
        found[oid] = out[at : at + size]
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
