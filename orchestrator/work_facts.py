"""The facts of a session's work that the orchestrator reads from git itself.

``collect_facts`` reports the session branch against its merge-base with the base branch
(``WorktreeManager.get_session_stats``): the files changed, the diff stat, the commits ahead
(newest first), the diff text (kept up to ``DIFF_LIMIT`` characters, its sha256 taken over
all of it) and the worktree's HEAD. An empty ``files`` list is an empty piece of work, whatever
the CLI said.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.git import Git
from orchestrator.handoff import DiffStat, sha256_text
from orchestrator.worktree_models import SessionWorktree
from orchestrator.worktrees import WorktreeManager

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


async def _git(worktrees: WorktreeManager, session: SessionWorktree) -> Git:
    layout = await worktrees.layout()
    return Git(session.path, layout.hooks_dir)


async def collect_facts(worktrees: WorktreeManager, session: SessionWorktree) -> WorkFacts:
    stats = await worktrees.get_session_stats(session)
    git = await _git(worktrees, session)
    files: list[str] = []
    commits: list[str] = []
    diff = ""
    if stats.merge_base is not None and stats.tip is not None:
        names = await git.run(
            "diff", "--name-only", "--no-renames", "-z", stats.merge_base, stats.tip
        )
        files = [name for name in names.stdout.split("\0") if name]
        listed = await git.run("rev-list", f"{stats.merge_base}..{stats.tip}")
        commits = listed.out.split()
        text = await git.run("diff", "--no-color", "--no-renames", stats.merge_base, stats.tip)
        diff = text.stdout
    return WorkFacts(
        head=stats.tip,
        files=files,
        stat=DiffStat(
            files=stats.files_changed,
            insertions=stats.insertions,
            deletions=stats.deletions,
            commits_ahead=stats.commits_ahead,
        ),
        commits=commits,
        diff=diff[:DIFF_LIMIT],
        diff_truncated=len(diff) > DIFF_LIMIT,
        diff_sha256=sha256_text(diff),
    )
