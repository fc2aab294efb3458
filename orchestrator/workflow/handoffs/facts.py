"""The facts of a session's work that the orchestrator reads from git itself.

``collect_facts`` reports the session branch against its merge-base with the base branch:
the files changed, the diff stat, the commits ahead (newest first), the diff text (kept up to
``DIFF_LIMIT`` characters, its sha256 taken over all of it) and the branch tip. An empty
``files`` list is an empty piece of work, whatever the CLI said.

Two git processes, run in one worker-thread call: ``rev-list <branch> ^<base>`` (the commits
ahead; the newest is the tip) and one ``diff --numstat -z -p <base>...<tip>`` whose numstat
block gives the files and the stat and whose patch is the diff text (``A...B`` diffs from
their merge-base, as ``git diff $(git merge-base A B) B`` does). Only a branch with nothing
ahead costs a third (``rev-parse``, for its tip).

None at all after the build's usual commit: the orchestrator's commit ``C`` on the session's
fork point ``P``, with its diff from ``P`` (``worktrees.commits``: ``CommitResult.diff``, the
same ``git diff`` command). When the branch's ref still names ``C``, and ``P`` is on the base's
first-parent line with ``C`` merged nowhere on the way (``git.ref_files``: the loose commits the
queue's merges are), the commits ahead are ``[C]``, the merge-base is ``P``, and so the diff is
``C``'s own. Whatever the files cannot show that for (the CLI committed, the base was rewritten
or packed) is asked of git as above. The build reads them in its commit's own worker-thread
call (``facts_reader``, handed to ``WorktreeManager.commit_then``): no hop of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git.parse import parse_numstat
from orchestrator.git.ref_files import first_parents_reach, read_refs
from orchestrator.git.repo import Git
from orchestrator.workflow.handoffs.document import DiffStat, sha256_text
from orchestrator.worktrees.commits import PATCH, numstat_files, split_patch
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import CommitResult, SessionWorktree

__all__ = ["DIFF_LIMIT", "WorkFacts", "collect_facts", "facts_reader"]

DIFF_LIMIT = 200_000


@dataclass(frozen=True)
class WorkFacts:
    head: str | None
    files: list[str]
    stat: DiffStat
    commits: list[str]
    diff: str
    diff_truncated: bool
    diff_sha256: str


async def collect_facts(
    worktrees: WorktreeManager, session: SessionWorktree, committed: CommitResult | None = None
) -> WorkFacts:
    """The facts of the session's work (module doc); ``committed``: the commit just made on its
    branch, whose diff may be all the facts need."""
    read = await facts_reader(worktrees, session)
    return await anyio.to_thread.run_sync(read, committed)


async def facts_reader(
    worktrees: WorktreeManager, session: SessionWorktree
) -> Callable[[CommitResult | None], WorkFacts]:
    """``collect_facts`` as a blocking call, for a worker thread already under way: the
    build's commit reads its facts in its own call (``WorktreeManager.commit_then``)."""
    layout = await worktrees.layout()
    git = Git(session.path, layout.hooks_dir)
    base_ref = worktrees.base_ref

    def collect(committed: CommitResult | None) -> WorkFacts:
        if committed is not None:
            known = _from_commit(layout.common_dir, base_ref, session, committed)
            if known is not None:
                return known
        return _collect(git, base_ref, session)

    return collect


def _from_commit(
    common_dir: Path, base_ref: str, session: SessionWorktree, committed: CommitResult
) -> WorkFacts | None:
    """The facts from the commit just made (module doc), or None when git's files cannot show
    they are exactly that commit's diff."""
    sha, parent, diff = committed.sha, committed.parent, committed.diff
    if sha is None or parent is None or diff is None or parent != session.base_commit:
        return None
    if not base_ref.startswith(("refs/heads/", "refs/remotes/")):
        return None
    branch_ref = f"refs/heads/{session.branch}"
    refs = read_refs(common_dir, (base_ref, branch_ref))
    if refs is None or refs.get(branch_ref) != sha or base_ref not in refs:
        return None
    if not first_parents_reach(common_dir, refs[base_ref], parent, unseen=sha):
        return None
    numstat, patch = split_patch(diff)
    return _facts(sha, numstat_files(numstat), parse_numstat(numstat), [sha], patch)


def _collect(git: Git, base_ref: str, session: SessionWorktree) -> WorkFacts:
    branch_ref = f"refs/heads/{session.branch}"
    listed = git.run_sync("rev-list", branch_ref, f"^{base_ref}", "--", check=False)
    if not listed.ok:
        if git.run_sync("rev-parse", "--verify", "--quiet", branch_ref, check=False).ok:
            listed = git.run_sync("rev-list", branch_ref, f"^{base_ref}", "--")  # raises
        raise WorkspaceError(f"branch {session.branch} of session {session.session_id} is gone")
    commits = listed.out.split()
    if not commits:
        tip = git.run_sync("rev-parse", "--verify", "--quiet", f"{branch_ref}^{{commit}}").out
        return _facts(tip, [], (0, 0, 0), [], "")
    tip = commits[0]
    numstat, diff = _numstat_and_patch(git, base_ref, tip)
    return _facts(tip, numstat_files(numstat), parse_numstat(numstat), commits, diff)


def _numstat_and_patch(git: Git, base_ref: str, tip: str) -> tuple[str, str]:
    result = git.run_sync(*PATCH, f"{base_ref}...{tip}", "--", check=False)
    if not result.ok:
        if "no merge base" in result.stderr:
            return "", ""  # unrelated histories: nothing to compare against, as before
        git.run_sync("diff", "--numstat", f"{base_ref}...{tip}", "--")  # raises with git's words
    return split_patch(result.stdout)


def _facts(
    tip: str | None,
    files: list[str],
    stat: tuple[int, int, int],
    commits: list[str],
    diff: str,
) -> WorkFacts:
    changed, insertions, deletions = stat
    return WorkFacts(
        head=tip,
        files=files,
        stat=DiffStat(
            files=changed,
            insertions=insertions,
            deletions=deletions,
            commits_ahead=len(commits),
        ),
        commits=commits,
        diff=diff[:DIFF_LIMIT],
        diff_truncated=len(diff) > DIFF_LIMIT,
        diff_sha256=sha256_text(diff),
    )
