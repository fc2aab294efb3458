"""The secret gate before a push (``merge.push_gate`` given to ``git.publish``), on real git with
a real bare remote: a branch holding a known secret, as is or wrapped over two lines, is not
published (nor its rescue ref), the remote gets no object of it and the local refs hold it
masked; a check past its budget pushes nothing and masks nothing; a clean tip is published,
and what it was found clean of is not read again (the next publication reads only the new
commits, the landing's check reads nothing)."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SecretInHistory, SecretScanLate
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.publish import publish_branch, publish_rescue
from orchestrator.merge import secret_gate as gate_module
from orchestrator.merge.push_gate import PushGate
from orchestrator.merge.secret_gate import SecretGate
from tests.support.merge_repo import commit_on, git, tip
from tests.support.remote_repo import Team, make_team, plain_git

BRANCH = "council/t1/1"
PUBLISHED = f"refs/council/branches/{BRANCH}"
RECORD = f"refs/council/published/origin/branches/{BRANCH}"
VALUE = "tok-5c1f0e9a7d3b4e21a8f6"
BASES = ["refs/remotes/origin/main", "refs/heads/main"]


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def gate_for(clone: Path, budget: float | None = None) -> tuple[SecretGate, PushGate]:
    secrets = SecretGate(lambda: {VALUE: "MY_TOKEN"}, budget=budget)
    return secrets, PushGate(secrets, BASES, clone / ".git")


def remote_objects(remote: Path) -> bytes:
    return subprocess.run(
        ["git", "-C", str(remote), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout


def remote_refs(remote: Path) -> str:
    return git(remote, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.mark.parametrize(
    "leak",
    [f"API_KEY={VALUE}\n", f"key = {VALUE[:9]}\n      {VALUE[9:]}\n"],
    ids=["plain", "wrapped"],
)
async def test_a_secret_on_the_branch_is_never_published(team: Team, leak: str) -> None:
    a = team.clone("a")
    _, gate = gate_for(a)
    clean = commit_on(a, BRANCH, {"work.txt": "clean\n"})
    assert await publish_branch(plain_git(a), "origin", BRANCH, a / ".git", gate.check) == clean
    leaked = commit_on(a, BRANCH, {"settings.env": leak})
    before = remote_refs(team.remote)

    with pytest.raises(SecretInHistory) as found:
        await publish_branch(plain_git(a), "origin", BRANCH, a / ".git", gate.check)

    said = str(found.value)
    assert "file settings.env holds the value of MY_TOKEN at line 1" in said
    assert VALUE not in said
    assert remote_refs(team.remote) == before  # the clean publication alone
    assert git(team.remote, "rev-parse", PUBLISHED) == clean
    objects = remote_objects(team.remote)
    assert VALUE.encode() not in objects and VALUE[9:].encode() not in objects
    assert git(a, "rev-parse", RECORD) == clean  # the record says what the remote holds
    masked = tip(a, BRANCH)
    assert masked != leaked and "***" in git(a, "show", f"{masked}:settings.env")


async def test_a_rescue_ref_holding_a_secret_is_never_published(team: Team) -> None:
    a = team.clone("a")
    _, gate = gate_for(a)
    rescue = "refs/council/rescue/s-1"
    commit_on(a, "scratch", {"notes.txt": base64.b64encode(VALUE.encode()).decode() + "\n"})
    git(a, "update-ref", rescue, tip(a, "scratch"))

    with pytest.raises(SecretInHistory, match=r"\(base64-encoded\)"):
        await publish_rescue(plain_git(a), "origin", "s-1", gate.check)

    assert rescue not in remote_refs(team.remote)
    assert base64.b64encode(VALUE.encode()) not in remote_objects(team.remote)


async def test_a_check_past_its_budget_pushes_nothing(team: Team) -> None:
    a = team.clone("a")
    _, gate = gate_for(a, budget=1e-9)
    leaked = commit_on(a, BRANCH, {"settings.env": f"API_KEY={VALUE}\n"})
    before = remote_refs(team.remote)

    with pytest.raises(SecretScanLate, match="too large to check in time"):
        await publish_branch(plain_git(a), "origin", BRANCH, a / ".git", gate.check)

    assert remote_refs(team.remote) == before
    assert VALUE.encode() not in remote_objects(team.remote)
    assert tip(a, BRANCH) == leaked  # nothing found, nothing masked: kept as it is
    assert git(a, "rev-parse", "--verify", "--quiet", RECORD, check=False) == ""


async def test_a_clean_tip_is_read_once(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    a = team.clone("a")
    secrets, gate = gate_for(a)
    reads: list[tuple[list[str], list[str]]] = []
    real_scan = gate_module.scan

    def counted(
        calls: GitCalls, tips: Sequence[str], exclude: Sequence[str], *args: Any, **kw: Any
    ) -> Any:
        reads.append((list(tips), list(exclude)))
        return real_scan(calls, tips, exclude, *args, **kw)

    monkeypatch.setattr(gate_module, "scan", counted)
    base = tip(a, "origin/main")
    first = commit_on(a, BRANCH, {"one.txt": "one\n"})
    await publish_branch(plain_git(a), "origin", BRANCH, a / ".git", gate.check)
    second = commit_on(a, BRANCH, {"two.txt": "two\n"})
    await publish_branch(plain_git(a), "origin", BRANCH, a / ".git", gate.check)
    # The second publication reads only what the first did not: its exclude holds the first.
    assert reads == [([first], [base]), ([second], [base, first])]
    assert git(team.remote, "rev-parse", PUBLISHED) == second
    # Found clean over the base, so the landing's check reads nothing again.
    calls = GitCalls(plain_git(a))
    secrets.check(calls, BRANCH, second, base, a / ".git")
    assert calls.count == 0 and len(reads) == 2


def test_a_push_gate_needs_a_base(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the ref of the base"):
        PushGate(SecretGate(dict), [], tmp_path)
