"""Session branches and rescue refs on the shared remote, so another workstation can take over.

A workstation publishes a session's branch as ``refs/council/branches/<branch>`` (and a rescue
ref as ``refs/council/rescue/<session>``) at phase boundaries; when it dies, the one that takes
the task over fetches that ref and continues from the committed work.

**Publishing is fenced by the remote.** Each push carries a lease: the remote's ref must still
be what this clone last published or adopted (``refs/council/published/<remote>/...``, kept
locally), or absent if it never did. A workstation that was fenced out and comes back later
still leases against its old value, so the remote refuses it (``RemotePushRefused`` with
``reason == "stale info"``) instead of letting it overwrite the newer work published by the
workstation that took over. No ``+`` refspec, no ``--force`` (``git.remote_refs``).

**Fetching never loses local commits.** The remote's ref is fetched into a tracking ref
(``refs/remotes/<remote>/council/...``), and the local ref is set to it only when the local
one does not exist or is its ancestor, and never under a worktree that has the branch checked
out; otherwise ``WorkspaceError`` says what is in the way and nothing local moves. A fetched
ref counts as adopted: this clone's next publication leases against it.

**Nothing unchecked leaves.** A caller passes ``check`` (``PushCheck``): called in the worker
thread with the tip about to be pushed and what was last published there, before the push;
raising refuses it, and nothing is pushed nor recorded. The scheduler passes the secret gate's
(``merge.push_gate``), which this layer cannot import. A tip already published is neither
checked nor pushed again.

Every local ref write here is a compare-and-swap noted in ``ref_book`` (the tamper check
watches ``refs/heads/council/`` and ``refs/council/``). The work runs in a worker thread.

**Cost.** Given the repository's common git directory, a publication reads the branch's tip and
what was last published from git's own files (``git.ref_files``: both refs, and each a loose
commit, as a commit the orchestrator just made is), so it starts two git processes, the push and
the record's update; where the files cannot tell exactly, ``rev-parse`` answers as before. A
tip this clone published already (after a phase that committed nothing: scout, plan, review)
is not pushed again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import GitError, RemotePushRefused, WorkspaceError
from orchestrator.git import ref_book
from orchestrator.git.merge_tree import GitCalls, branch_ref
from orchestrator.git.ref_files import loose_commit, read_refs
from orchestrator.git.remote_refs import check_remote_name, fetch_ref, fetch_refs, push_ref
from orchestrator.git.repo import ZERO_SHA, Git
from orchestrator.ids import check_id

__all__ = [
    "BRANCHES_PREFIX",
    "RESCUE_PREFIX",
    "PushCheck",
    "fetch_branch",
    "fetch_published",
    "fetch_rescue",
    "publish_branch",
    "publish_rescue",
]

BRANCHES_PREFIX = "refs/council/branches/"
RESCUE_PREFIX = "refs/council/rescue/"
_RECORD_PREFIX = "refs/council/published/"

# (calls, the local ref, the tip to push, what was last published there or None): raises to
# refuse the push (module doc).
PushCheck = Callable[[GitCalls, str, str, str | None], None]


async def publish_branch(
    git: Git,
    remote: str,
    branch: str,
    common_dir: Path | None = None,
    check: PushCheck | None = None,
) -> str | None:
    """Push the local ``branch``'s tip to ``refs/council/branches/<branch>`` on ``remote``,
    leased as above; the pushed commit, or None when there is no such local branch.
    ``common_dir``: the repository's common git directory, whose files tell the refs;
    ``check``: called before the push, raising to refuse it (module doc)."""
    local = _branch(branch)
    published = BRANCHES_PREFIX + local.removeprefix("refs/heads/")
    return await anyio.to_thread.run_sync(
        _publish, GitCalls(git), remote, local, published, common_dir, check
    )


async def fetch_branch(git: Git, remote: str, branch: str) -> str | None:
    """Fetch ``refs/council/branches/<branch>`` from ``remote`` into the local ``branch``
    (only forward, see above); its commit, or None when the remote has none."""
    local = _branch(branch)
    published = BRANCHES_PREFIX + local.removeprefix("refs/heads/")
    return await anyio.to_thread.run_sync(_fetch, GitCalls(git), remote, published, local)


async def fetch_published(git: Git, remote: str, branches: Sequence[str]) -> None:
    """Fetch the objects of each ``refs/council/branches/<branch>`` on ``remote`` (into its
    tracking ref, ``refs/remotes/<remote>/council/branches/<branch>``; no local branch moves),
    in one fetch; a branch the remote lacks, or whose fetch fails, is left out. What a ref
    names now is not read by the caller: it lands the commit its owner recorded, which the
    fetch brought here when the published branch still holds it."""
    pairs = []
    for branch in branches:
        published = BRANCHES_PREFIX + _branch(branch).removeprefix("refs/heads/")
        pairs.append((published, f"refs/remotes/{remote}/{published.removeprefix('refs/')}"))
    if pairs:
        await anyio.to_thread.run_sync(_fetch_all, GitCalls(git), check_remote_name(remote), pairs)


def _fetch_all(calls: GitCalls, remote: str, pairs: list[tuple[str, str]]) -> None:
    try:
        if fetch_refs(calls, remote, pairs):
            return
    except GitError:
        pass
    for source, tracking in pairs:  # one is missing (or broke the fetch): each on its own
        try:
            fetch_ref(calls, remote, source, tracking)
        except GitError:
            continue


async def publish_rescue(
    git: Git, remote: str, session_id: str, check: PushCheck | None = None
) -> str | None:
    """``publish_branch`` for the rescue ref ``refs/council/rescue/<session>``."""
    ref = RESCUE_PREFIX + check_id(session_id, "session id")
    return await anyio.to_thread.run_sync(_publish, GitCalls(git), remote, ref, ref, None, check)


async def fetch_rescue(git: Git, remote: str, session_id: str) -> str | None:
    """``fetch_branch`` for the rescue ref ``refs/council/rescue/<session>``."""
    ref = RESCUE_PREFIX + check_id(session_id, "session id")
    return await anyio.to_thread.run_sync(_fetch, GitCalls(git), remote, ref, ref)


def _publish(
    calls: GitCalls,
    remote: str,
    local: str,
    published: str,
    common_dir: Path | None = None,
    check: PushCheck | None = None,
) -> str | None:
    check_remote_name(remote)
    record = _record(remote, published)
    known = _commits(common_dir, (local, record))
    tip = known[local] if local in known else calls.rev_parse(local)
    if tip is None:
        return None
    expected = known[record] if record in known else calls.rev_parse(record)
    if expected == tip:
        # Published already (a phase that committed nothing): the push would change nothing
        # here, and over another workstation's newer work it would be refused anyway.
        return tip
    if check is not None:
        check(calls, local, tip, expected)
    moved = push_ref(calls, remote, tip, published, expected or "")
    if moved is not None:
        was = expected or "absent"
        raise RemotePushRefused(
            remote,
            published,
            moved,
            [f"it is no longer {was}: another workstation published it since"],
            ["push", f"--force-with-lease={published}:{expected or ''}", remote],
            1,
        )
    _swap(calls, record, tip, expected, "council: published")
    return tip


def _fetch(calls: GitCalls, remote: str, published: str, local: str) -> str | None:
    check_remote_name(remote)
    tracking = f"refs/remotes/{remote}/{published.removeprefix('refs/')}"
    if not fetch_ref(calls, remote, published, tracking):
        return None
    tip = calls.rev_parse(tracking)
    if tip is None:  # fetched, yet not a commit (a tag or tree pushed there by hand)
        raise WorkspaceError(f"{published} on remote {remote!r} does not name a commit")
    current = calls.rev_parse(local)
    if current != tip:
        if current is not None and not calls.is_ancestor(current, tip):
            raise WorkspaceError(
                f"local {local} ({current[:12]}) has commits that {published} on {remote!r} "
                f"({tip[:12]}) does not; nothing was moved"
            )
        holder = _checked_out_in(calls, local)
        if holder is not None:
            raise WorkspaceError(f"{local} is checked out in {holder}; nothing was moved")
        if not _swap(calls, local, tip, current, f"council: fetched {published}"):
            raise WorkspaceError(f"{local} moved while it was being fetched; nothing was moved")
    record = _record(remote, published)
    _swap(calls, record, tip, calls.rev_parse(record), "council: adopted")
    return tip


def _commits(common_dir: Path | None, refs: tuple[str, ...]) -> dict[str, str | None]:
    """What ``rev-parse --verify <ref>^{commit}`` would say of each of ``refs`` that git's
    files tell exactly: a commit id (the ref holds a loose commit), or None (no such ref);
    the others are left out (the caller asks git)."""
    if common_dir is None:
        return {}
    found = read_refs(common_dir, refs)
    if found is None:
        return {}
    known: dict[str, str | None] = {}
    for ref in refs:
        oid = found.get(ref)
        if oid is None:
            if not any(other.startswith(ref + "/") for other in found):
                known[ref] = None  # absent (a hierarchy of that name is not a ref either)
        elif loose_commit(common_dir, oid) is not None:
            known[ref] = oid
    return known


def _swap(calls: GitCalls, ref: str, new: str, old: str | None, reason: str) -> bool:
    """Compare-and-swap ``ref`` from ``old`` (None: must not exist) to ``new``, noted."""
    with ref_book.writing():
        done = calls.run("update-ref", "-m", reason, ref, new, old or ZERO_SHA, check=False).ok
        if done:
            ref_book.note(ref, old, new)
    return done


def _checked_out_in(calls: GitCalls, ref: str) -> str | None:
    """The worktree that has ``ref`` checked out, if any (its files would not follow)."""
    listing = calls.run("worktree", "list", "--porcelain").stdout
    for block in listing.split("\n\n"):
        lines = block.splitlines()
        if f"branch {ref}" in lines and lines:
            return lines[0].removeprefix("worktree ")
    return None


def _branch(branch: str) -> str:
    ref = branch_ref(branch)
    if not ref.startswith("refs/heads/"):
        raise WorkspaceError(f"{branch!r} is not a branch (refs/heads/...)")
    return ref


def _record(remote: str, published: str) -> str:
    """Where this clone keeps what it last published to (or adopted from) ``published``."""
    return f"{_RECORD_PREFIX}{remote}/{published.removeprefix('refs/council/')}"
