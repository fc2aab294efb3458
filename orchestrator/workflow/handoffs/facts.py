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
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git.parse import parse_numstat
from orchestrator.git.repo import Git
from orchestrator.workflow.handoffs.document import DiffStat, sha256_text
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["DIFF_LIMIT", "WorkFacts", "collect_facts"]

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


async def collect_facts(worktrees: WorktreeManager, session: SessionWorktree) -> WorkFacts:
    layout = await worktrees.layout()
    git = Git(session.path, layout.hooks_dir)
    return await anyio.to_thread.run_sync(_collect, git, worktrees.base_ref, session)


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
    files = [entry.split("\t", 2)[2] for entry in numstat.split("\0") if entry.count("\t") >= 2]
    return _facts(tip, files, parse_numstat(numstat), commits, diff)


def _numstat_and_patch(git: Git, base_ref: str, tip: str) -> tuple[str, str]:
    result = git.run_sync(
        "diff", "--numstat", "-z", "-p", "--no-renames", "--no-color", "--no-ext-diff",
        f"{base_ref}...{tip}", "--",
        check=False,
    )  # fmt: skip
    if not result.ok:
        if "no merge base" in result.stderr:
            return "", ""  # unrelated histories: nothing to compare against, as before
        git.run_sync("diff", "--numstat", f"{base_ref}...{tip}", "--")  # raises with git's words
    # The numstat block is NUL-terminated entries followed by one more NUL, then the patch.
    numstat, _, patch = result.stdout.partition("\0\0")
    return numstat, patch


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
