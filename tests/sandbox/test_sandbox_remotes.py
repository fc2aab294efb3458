"""The repository's remotes on this machine stay read-only to a CLI (``GitReach.remotes``): which
remotes are paths (``worktrees.confine.local_remotes``), and which of them the plan seals (the
ones a writable mount would open; one under a hidden directory stays hidden). The kernel's part
is ``test_team_outside_push.py``'s."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sandbox.plan import GitReach, SandboxSettings, confinement
from orchestrator.worktrees.confine import local_remotes


def test_local_remotes_are_the_paths_and_file_urls_of_remote_urls(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for where in ("bare.git", "up/other.git", "repo/../sibling.git", "push.git"):
        (tmp_path / where).mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config"
    config.write_text(
        "[core]\n\turl = /not/a/remote\n"
        f'[remote "origin"]\n\turl = {tmp_path / "bare.git"}\n'
        f"\tpushurl = file://{tmp_path / 'push.git'}\n"
        '[remote "up"]\n\tURL = ../up/other.git\n'
        '[remote "rel"]\n\turl = "../sibling.git"\n'
        '[remote "web"]\n\turl = https://example.com/team/repo.git\n'
        '[remote "ssh"]\n\turl = git@example.com:team/repo.git\n'
        '[remote "gone"]\n\turl = /nowhere/at/all.git\n'
    )
    assert local_remotes(config, root) == (
        tmp_path / "bare.git",
        tmp_path / "push.git",
        tmp_path / "up" / "other.git",
        tmp_path / "sibling.git",
    )
    assert local_remotes(tmp_path / "missing", root) == ()


def test_the_plan_seals_a_remote_only_where_a_writable_mount_would_open_it(
    tmp_path: Path,
) -> None:
    repo, home, user = tmp_path / "repo", tmp_path / "home", tmp_path / "user"
    shared = tmp_path / "shared"
    opened, hidden, plain = shared / "team.git", user / "mine.git", tmp_path / "plain.git"
    above = tmp_path / "above"  # a remote that holds the writable worktree itself
    worktree = above / "wt"
    for directory in (repo, home, opened, hidden, plain, worktree):
        directory.mkdir(parents=True)
    settings = SandboxSettings("bubblewrap", "bwrap", write=(shared,))
    reach = GitReach(repo, repo / ".council", (), (), remotes=(opened, hidden, plain, above))

    plan = confinement(
        settings,
        reach,
        workdir=worktree,
        home=home,
        argv=["true"],
        env={"PATH": "/usr/bin"},
        user_home=str(user),
    )

    assert plan.sealed == (opened,)  # under the write: path: held read-only
    assert ("seal", opened) in plan.ordered and ("hide", user) in plan.ordered
