"""Keeping a task's work with its secrets masked, in every ref, and in no git object.

When ``secret_gate`` finds a secret in what a branch would land, the work is not thrown away
(a person looks at it) but no ref may keep the value. ``mask_history``:

1. rewrites each commit of the branch not on the base, oldest first: its message, author,
   committer and other header lines masked (a signature, no longer valid, dropped); its tree
   rebuilt with masked path names and masked blobs (a blob the scan did not keep read again
   whole, ``cat-file blob``; ``hash-object -w --stdin``, ``mktree -z
   --missing``, ``hash-object -t commit -w --stdin``: the exact bytes, dates kept); each
   parent the rewrite of the old one. An unchanged object keeps its id;
2. finds every local ref holding a rewritten commit (``for-each-ref --contains``: the session
   branch, ``refs/council/tampered/*``, ``refs/council/rescue*/*``), rewrites what those hold
   beyond the branch the same way, and moves each with a compare-and-swap noted in
   ``ref_book`` (the tamper check knows it is ours). Work published for takeover
   (``refs/council/published/<remote>/...``, team mode) is pushed masked to the remote under
   its lease first, then its record and tracking ref move; the remote keeps the old objects
   until its own gc, and a refused push leaves the three as they were (named in the log);
3. puts a worktree that has a moved branch checked out at the masked commit (``reset --hard``:
   its files and index hold no value any more);
4. deletes the loose object files of the old objects that held a value or reached one, when
   nothing left uses them (``rev-list --objects --all --indexed-objects``); one kept in a pack
   is named in ``kept``;
5. masks the value in the reflogs of the moved refs, in each worktree's ``logs/HEAD`` and
   ``COMMIT_EDITMSG``, and drops their lines naming a deleted object.

Blocking: call it in a worker thread, under the merge lock.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import CouncilError
from orchestrator.git import ref_book
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.remote_refs import push_ref
from orchestrator.merge.secret_scan import (
    Needle,
    Scan,
    commit_fields,
    masked,
    scan,
    tree_entries,
)
from orchestrator.safety import safe_write

__all__ = ["Masked", "mask_history"]

_LISTING_TRIES = 6  # the last after about 1.5 s of waits in all
_LISTING_WAIT = 0.05

log = logging.getLogger(__name__)

_REASON = "council: the work masked (it held a secret's value)"
_DROPPED_HEADERS = (b"gpgsig", b"gpgsig-sha256", b"mergetag")
_RECORDS = "refs/council/published/"  # what this clone published for takeover, per remote
_TRACKING = "refs/remotes/"  # moved only with a publication (see ``_republish``)


@dataclass
class Masked:
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)  # ref -> (old, new)
    deleted: list[str] = field(default_factory=list)  # loose objects removed
    kept: list[str] = field(default_factory=list)  # secret-bearing objects not loose


class _Rewriter:
    def __init__(self, calls: GitCalls, found: Scan, needles: Sequence[Needle]) -> None:
        self._calls = calls
        self.found = found
        self._needles = needles
        self.new: dict[str, str] = {}  # old id -> its masked rewrite (itself when unchanged)

    def add(self, more: Scan) -> None:
        self.found.findings += more.findings
        self.found.kinds.update(more.kinds)
        self.found.contents.update(more.contents)

    def changed(self) -> dict[str, str]:
        return {old: new for old, new in self.new.items() if old != new}

    def commit(self, oid: str) -> str:
        done = self.new.get(oid)
        if done is not None:
            return done
        data = self.found.contents.get(oid)
        if data is None:
            return oid  # not read: not part of the work (the base's)
        lines, message = commit_fields(data)
        head: list[bytes] = []
        whole: list[bytes] = []  # with the signature lines, kept while nothing else changes
        for line in lines:
            word, _, rest = line.partition(b" ")
            if word in _DROPPED_HEADERS:
                whole.append(line)
                continue
            if word == b"tree":
                line = b"tree " + self.tree(rest.decode("ascii")).encode()
            elif word == b"parent":
                line = b"parent " + self.commit(rest.decode("ascii")).encode()
            else:
                line = masked(line, self._needles)
            head.append(line)
            whole.append(line)
        body = masked(message, self._needles)
        if b"\n".join(whole) + b"\n\n" + body == data:
            new = oid  # the same bytes (a signature stays valid)
        else:
            new = self._write("commit", b"\n".join(head) + b"\n\n" + body)
        self.new[oid] = new
        return new

    def tree(self, oid: str) -> str:
        done = self.new.get(oid)
        if done is not None:
            return done
        data = self.found.contents.get(oid)
        if data is None or self.found.kinds.get(oid) != "tree":
            return oid
        listing: list[bytes] = []
        changed = False
        for mode, name, child in tree_entries(data):
            kind = "tree" if mode == b"40000" else "commit" if mode == b"160000" else "blob"
            new_child = self.tree(child) if kind == "tree" else child
            if kind == "blob":
                new_child = self.blob(child)
            new_name = masked(name, self._needles)
            changed |= new_child != child or new_name != name
            listing.append(
                mode.rjust(6, b"0") + f" {kind} {new_child}\t".encode() + new_name + b"\0"
            )
        if not changed:
            new = oid
        else:
            self._calls.count += 1
            written = self._calls.git.feed_sync("mktree", "-z", "--missing", data=b"".join(listing))
            new = written.stdout.decode("ascii").strip()
        self.new[oid] = new
        return new

    def blob(self, oid: str) -> str:
        done = self.new.get(oid)
        if done is not None:
            return done
        new = oid
        if oid in self.found.hit:
            data = self.found.contents.get(oid)
            if data is None:  # a blob larger than the scan keeps: read again, to be masked
                self._calls.count += 1
                data = self._calls.git.feed_sync("cat-file", "blob", oid).stdout
            text = masked(data, self._needles)
            if text != data:
                new = self._write("blob", text)
        self.new[oid] = new
        return new

    def _write(self, kind: str, data: bytes) -> str:
        self._calls.count += 1
        written = self._calls.git.feed_sync("hash-object", "-t", kind, "-w", "--stdin", data=data)
        return written.stdout.decode("ascii").strip()


def mask_history(
    calls: GitCalls,
    tip: str,
    exclude: Sequence[str],
    found: Scan,
    needles: Sequence[Needle],
    common: Path,
    *,
    private_stores: Path | None = None,
) -> Masked:
    """Mask the work of ``tip`` (not on ``exclude``) in every ref holding it (module doc);
    ``private_stores``: the directory of the sandboxed CLIs' own object stores."""
    rewriter = _Rewriter(calls, found, needles)
    for oid in _topo(calls, [tip], exclude):
        rewriter.commit(oid)
    changed = rewriter.changed()
    result = Masked()
    if not changed:
        return result
    holders = _holders(calls, [old for old in changed if found.kinds.get(old) == "commit"])
    beyond = sorted({oid for oid in holders.values() if oid not in rewriter.new})
    if beyond:
        rewriter.add(scan(calls, beyond, [*exclude, tip], needles))
        for oid in _topo(calls, beyond, [*exclude, tip]):
            rewriter.commit(oid)
    for ref, old in sorted(holders.items()):
        new = rewriter.new.get(old, old)
        if new == old or ref.startswith(_TRACKING):
            continue
        if ref.startswith(_RECORDS):
            _republish(calls, ref, old, new, holders, result)
        elif _move(calls, ref, old, new):
            result.moved[ref] = (old, new)
    moved_branches = {ref for ref in result.moved if ref.startswith("refs/heads/")}
    admins = _reset_worktrees(calls, common, moved_branches)
    gone = set(rewriter.changed()) | found.hit
    result.deleted, result.kept = _delete_loose(calls, common, gone, exclude, private_stores)
    _scrub_logs(common, admins, result.moved, set(result.deleted), needles)
    return result


def _republish(
    calls: GitCalls,
    record: str,
    old: str,
    new: str,
    holders: dict[str, str],
    result: Masked,
) -> None:
    """The work was published for takeover (``git.publish``): push its masked rewrite to the
    remote's ref, leased on what this clone published there (the remote still holds the old
    objects until its own gc), then move the record and the tracking ref that mirror it."""
    remote, _, rest = record.removeprefix(_RECORDS).partition("/")
    target = f"refs/council/{rest}"
    try:
        moved = push_ref(calls, remote, new, target, old)
    except CouncilError as exc:
        moved = str(exc)
    if moved is not None:
        log.warning("could not publish the masked work to %s %s: %s", remote, target, moved)
        return
    tracking = f"refs/remotes/{remote}/council/{rest}"
    for ref in (record, tracking):
        if holders.get(ref) == old and _move(calls, ref, old, new):
            result.moved[ref] = (old, new)


def _topo(calls: GitCalls, tips: Sequence[str], exclude: Sequence[str]) -> list[str]:
    out = calls.run("rev-list", "--topo-order", "--reverse", *tips, "--not", *exclude, "--").out
    return out.split()


def _holders(calls: GitCalls, commits: Sequence[str]) -> dict[str, str]:
    """Every local ref (not a remote-tracking one) whose history holds one of ``commits``."""
    if not commits:
        return {}
    contains = [arg for oid in commits for arg in ("--contains", oid)]
    out = calls.run("for-each-ref", "--format=%(objectname) %(refname)", *contains).out
    found: dict[str, str] = {}
    for line in out.splitlines():
        oid, _, ref = line.partition(" ")
        if ref and (not ref.startswith("refs/remotes/") or ref.startswith(_TRACKING)):
            found[ref] = oid
    return found


def _move(calls: GitCalls, ref: str, old: str, new: str) -> bool:
    with ref_book.writing():  # noted with the write, for the tamper check
        update = calls.run("update-ref", "-m", _REASON, ref, new, old, check=False)
        if update.ok:
            ref_book.note(ref, old, new)
    if not update.ok:
        log.warning("could not point %s at its masked rewrite: %s", ref, update.stderr.strip())
    return update.ok


def _reset_worktrees(calls: GitCalls, common: Path, branches: set[str]) -> list[Path]:
    """Reset each worktree that has one of ``branches`` checked out; every worktree's admin
    directory (their reflogs and messages are scrubbed next)."""
    out = calls.run("worktree", "list", "--porcelain", "-z").stdout
    admins: list[Path] = []
    path: str | None = None
    for field_ in out.split("\0"):
        if field_.startswith("worktree "):
            path = field_.removeprefix("worktree ")
            admin = read_gitfile(Path(path))
            if admin is not None and admin.is_relative_to(common):
                admins.append(admin)
        elif (
            field_.startswith("branch ")
            and path is not None
            and field_.removeprefix("branch ") in branches
            and os.path.isdir(path)
        ):
            reset = calls.run("reset", "--hard", "--quiet", cwd=Path(path), check=False)
            if not reset.ok:
                log.warning("could not reset %s to its masked work: %s", path, reset.stderr)
    return admins


def _delete_loose(
    calls: GitCalls,
    common: Path,
    gone: set[str],
    exclude: Sequence[str],
    private_stores: Path | None,
) -> tuple[list[str], list[str]]:
    """Delete the loose files of ``gone`` that nothing reaches any more; (deleted, kept).

    What reaches them includes the branches CLIs still running have committed on: their new
    objects are in their own stores until taken in, so those stores are read as alternates
    (without them git stops at such a branch, "bad object"; and an object of the shared store
    that only such a commit uses must stay)."""
    for attempt in range(_LISTING_TRIES):
        # A sibling's objects may move between its store and ours meanwhile, and a worktree
        # being added holds a HEAD of zeros until its checkout names the commit ("bad
        # object worktrees/<name>/HEAD"): both pass within moments, so the listing is tried
        # again after a short wait.
        if attempt:
            time.sleep(_LISTING_WAIT * 2 ** (attempt - 1))
        stores = _stores(private_stores)
        env = {"GIT_ALTERNATE_OBJECT_DIRECTORIES": os.pathsep.join(stores)} if stores else None
        listed = calls.run(
            "rev-list", "--objects", "--all", "--indexed-objects", "--not", *exclude, "--",
            env=env, check=False,
        )  # fmt: skip
        if listed.ok:
            break
    else:
        # Nothing is deleted that git could not show unused: the objects stay (unreachable,
        # the refs already masked) until git gc prunes them; the landing is not failed for it.
        log.warning(
            "could not tell which objects that held a secret are still used (%s): they stay "
            "until git gc prunes them",
            listed.stderr.strip()[:300],
        )
        return [], sorted(gone)
    used = {line[:40] for line in listed.out.splitlines()}
    deleted, kept = [], []
    for oid in sorted(gone - used):
        path = common / "objects" / oid[:2] / oid[2:]
        try:
            os.unlink(path)
        except FileNotFoundError:
            kept.append(oid)  # packed (or never written loose): only a repack drops it
            continue
        deleted.append(oid)
    if kept:
        log.warning(
            "objects that held a secret are in a pack and stay until git gc prunes them: %s",
            ", ".join(oid[:10] for oid in kept),
        )
    return deleted, kept


def _stores(private_stores: Path | None) -> list[str]:
    """The object directories under ``private_stores`` (one per sandboxed CLI's worktree)."""
    if private_stores is None:
        return []
    try:
        with os.scandir(private_stores) as entries:
            return sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _scrub_logs(
    common: Path,
    admins: Sequence[Path],
    moved: dict[str, tuple[str, str]],
    deleted: set[str],
    needles: Sequence[Needle],
) -> None:
    files = [common / "logs" / ref for ref in moved]
    for admin in [common, *admins]:
        files += [admin / "logs" / "HEAD", admin / "COMMIT_EDITMSG"]
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        lines = data.splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if not any(oid.encode() in line for oid in deleted) or path.name == "COMMIT_EDITMSG"
        ]
        text = masked(b"".join(kept), needles)
        if text != data:
            safe_write.write_atomic(common, path, text)
