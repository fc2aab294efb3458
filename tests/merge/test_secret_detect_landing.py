"""Credentials nobody declared never land (``merge.secret_gate`` with ``merge.secret_added``):
what a branch adds over the base it merges onto is looked at; a hit refuses the landing
(``CredentialInWork``: file, line, kind; the branch kept as it is), the run's
``secrets.allow`` lets it land, and what the base held already never blocks. On real
repositories, and through a whole run whose CLI commits the credential."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.config.secrets import SecretAllowConfig
from orchestrator.errors import CredentialInWork, GitError
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.queue import MergeQueue
from orchestrator.merge.secret_added import EMPTY_TREE, added
from orchestrator.merge.secret_gate import SecretGate
from orchestrator.merge.types import MergeStatus
from orchestrator.safety import secret_detect
from orchestrator.safety.secret_detect import Detector
from tests.support.credential_values import aws_key, github_token, pgpass_line, private_key
from tests.support.fault_helpers import FaultRun
from tests.support.git_trace import git_processes, traced
from tests.support.merge_repo import commit_on, git, init_repo


def _forms() -> list[tuple[str, str, str, str]]:
    """(file, content, kind, a part of the value the refusal must not show)."""
    aws, github, key = aws_key(), github_token(), private_key()
    pgpass, password = pgpass_line()
    return [
        ("scripts/env.sh", f"export AWS_ACCESS_KEY_ID={aws}\n", "AWS Access Key", aws),
        ("deploy/id_rsa", key, "Private Key", key.splitlines()[1]),
        ("ops/pgpass", f"# the db\n{pgpass}\n", "PostgreSQL Password File Line", password),
        ("ci/token.py", f"GH = '{github}'\n", "GitHub Token", github),
    ]


@pytest.mark.parametrize("form", range(4), ids=["aws", "private-key", "pgpass", "github"])
async def test_a_credential_a_branch_adds_does_not_land(tmp_path: Path, form: int) -> None:
    path, content, kind, value = _forms()[form]
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "council/leak/1", {"README.md": "fine\n"}, message="first")
    tip = commit_on(repo, "council/leak/1", {path: content}, message="second")
    base = git(repo, "rev-parse", "main")

    with pytest.raises(CredentialInWork) as raised:
        await MergeQueue(repo, "main").merge("s-leak", "council/leak/1", task_id="leak")

    text = str(raised.value)
    rows = enumerate(content.splitlines(), start=1)
    line = next(n for n, row in rows if value in row or "BEGIN" in row)
    assert f"{path} line {line}: {kind}" in text
    assert value not in text and value not in repr(raised.value.findings)
    assert "pragma: allowlist secret" in text and "secrets: allow:" in text
    assert raised.value.outcome == "credential_in_work" and not raised.value.masked
    assert git(repo, "rev-parse", "main") == base  # not landed
    assert git(repo, "rev-parse", "council/leak/1") == tip  # kept as it is


async def test_allowed_by_the_runs_allow_list_it_lands(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "council/fixture/1", {"tests/fixtures/keys.env": f"K={aws_key()}\n"})
    queue = MergeQueue(repo, "main")
    try:
        secret_detect.allow([SecretAllowConfig(path="tests/fixtures/*", kind="AWS Access Key")])
        landed = await queue.merge("s-fix", "council/fixture/1", task_id="fixture")
    finally:
        secret_detect.allow([])
    assert landed.status is MergeStatus.MERGED
    assert git(repo, "cat-file", "-t", "main:tests/fixtures/keys.env") == "blob"


async def test_a_credential_the_base_holds_already_does_not_block(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    pgpass, _password = pgpass_line()
    old = f"# legacy\nKEY = '{aws_key()}'\n{pgpass}\n"
    commit_on(repo, "main", {"legacy/settings.py": old}, message="what the team had")
    changed = old.replace("# legacy", "# legacy settings, kept for the old deploy")
    commit_on(repo, "council/edit/1", {"legacy/settings.py": changed, "new.txt": "x\n"})
    # The base moves on with another credential after the branch left it: not the branch's.
    commit_on(repo, "main", {"other/creds.py": f"T = '{github_token()}'\n"}, message="team")

    landed = await MergeQueue(repo, "main").merge("s-edit", "council/edit/1", task_id="edit")

    assert landed.status is MergeStatus.MERGED


def test_only_added_lines_are_read_and_named_by_their_new_line(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    aws = aws_key()
    commit_on(repo, "main", {"app.py": "a\nb\nc\n"}, message="base")
    base = git(repo, "rev-parse", "main")
    tip = commit_on(
        repo,
        "council/t/1",
        {"app.py": f"a\nb\nKEY = '{aws}'\nc\n", "tab\there.py": f"X = '{aws}'\n", "gone": None},
        start=base,
    )
    calls = GitCalls(Git(repo, None))

    found = added(calls, tip, base, Detector(allow=[]))

    assert sorted((hit.path, hit.line, hit.kind) for hit in found.hits) == [
        ("app.py", 3, "AWS Access Key"),
        ("tab\there.py", 1, "AWS Access Key"),
    ]
    assert found.lines == 2 and found.late is None


def test_the_added_lines_are_read_by_one_git_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: the diff from the merge base is one ``git diff base...tip``, the
    merge base found by the same process; the base moved on meanwhile, and what it gained is
    not the branch's."""
    repo = init_repo(tmp_path / "repo", checked_out=False)
    fork = git(repo, "rev-parse", "main")
    tip = commit_on(repo, "council/t/1", {"app.py": f"KEY = '{aws_key()}'\n"}, start=fork)
    base = commit_on(repo, "main", {"other.py": f"T = '{github_token()}'\n"})
    trace = traced(tmp_path, monkeypatch)
    calls = GitCalls(Git(repo, None))

    found = added(calls, tip, base, Detector(allow=[]))

    assert [(hit.path, hit.line, hit.kind) for hit in found.hits] == [
        ("app.py", 1, "AWS Access Key")
    ]
    assert git_processes(trace) == ["diff"] and calls.count == 1
    trace.unlink()
    assert added(calls, fork, base, Detector(allow=[])).hits == []  # the base holds it already
    assert git_processes(trace) == ["diff"]


def test_a_tip_with_no_history_in_common_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tip unrelated to the base (no merge base), or with no base at all, adds everything it
    holds; a failure that is not that one is raised, never taken for a clean diff."""
    repo = init_repo(tmp_path / "repo", checked_out=False)
    base = git(repo, "rev-parse", "main")
    made = commit_on(repo, "council/t/1", {"app.py": f"KEY = '{aws_key()}'\n"})
    alone = git(repo, "commit-tree", f"{made}^{{tree}}", "-m", "no parent")
    trace = traced(tmp_path, monkeypatch)

    found = added(GitCalls(Git(repo, None)), alone, base, Detector(allow=[]))

    assert [(hit.path, hit.line) for hit in found.hits] == [("app.py", 1)]
    assert git_processes(trace) == ["diff", "merge-base", "diff"]
    trace.unlink()
    nothing = added(GitCalls(Git(repo, None)), alone, EMPTY_TREE, Detector(allow=[]))
    assert [(hit.path, hit.line) for hit in nothing.hits] == [("app.py", 1)]
    assert git_processes(trace) == ["diff"]  # no base at all: from the empty tree at once
    with pytest.raises(GitError):
        added(GitCalls(Git(repo, None)), "0" * 40, base, Detector(allow=[]))


def test_a_check_past_its_budget_fails_never_passes(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    base = git(repo, "rev-parse", "main")
    tip = commit_on(repo, "council/big/1", {"big.txt": "plain line\n" * 50_000})
    gate = SecretGate(known=dict, budget=1e-9)

    with pytest.raises(CredentialInWork) as raised:
        gate.check(GitCalls(Git(repo, None)), "council/big/1", tip, base, repo / ".git")

    assert raised.value.late is not None
    assert "too large to check in time for credentials" in str(raised.value)


# -- a whole run: the CLI commits it ---------------------------------------------------------------


def _run(tmp_path: Path, files: dict[str, str], allow: list[dict[str, str]] | None) -> FaultRun:
    run = FaultRun(
        tmp_path,
        "credential_commit.py",
        env={"FAULT_FILES": json.dumps(files)},
        retry={"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1},
    )
    if allow is not None:
        config = run.config()
        config["secrets"] = {"allow": allow}
        run.config_path.write_text(json.dumps(config, indent=2))
    return run


async def test_a_cli_committing_an_undeclared_key_fails_for_good(tmp_path: Path) -> None:
    aws = aws_key()
    run = _run(tmp_path, {"scripts/keys.env": f"AWS_ACCESS_KEY_ID={aws}\n"}, None)

    report = await run.run_here()

    task = next(task for task in report["tasks"] if task["task_id"] == "fault")
    assert task["status"] == "failed", task
    state = run.state()
    assert state["metadata"]["outcome"] == "credential_in_work"
    assert state["metadata"]["failures"] == 1  # not retried, though two retries were allowed
    error = str(state["error"])
    assert "scripts/keys.env line 1: AWS Access Key" in error and aws not in error
    assert not run.on_main("scripts/keys.env")
    assert run.branch_has("council/fault/1", "scripts/keys.env")  # the work kept as it is
    # What the refusal wrote (the task's record, the events) names no value. (The handoff
    # record keeps the phase's diff, the work itself, as the branch does.)
    assert aws not in json.dumps(state) and aws not in json.dumps(run.events())


async def test_a_cli_committing_an_allowed_key_lands(tmp_path: Path) -> None:
    aws = aws_key()
    allow = [{"path": "tests/fixtures/*", "kind": "AWS Access Key"}]
    run = _run(tmp_path, {"tests/fixtures/keys.env": f"K={aws}\n"}, allow)

    report = await run.run_here()

    task = next(task for task in report["tasks"] if task["task_id"] == "fault")
    assert task["status"] == "done", task
    assert run.on_main("tests/fixtures/keys.env")
