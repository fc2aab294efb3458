"""The trailer index (``merge.history.TaskIndex``): which tasks the base landed, read once and
kept current. A look at an older tip of the chain it knows (the check after a landing, made
once later landings moved the base on) is answered without a git process and without losing
the newer tip."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.queue import MergeQueue, MergeStatus
from tests.support.merge_repo import commit_on, git, init_repo, tip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", checked_out=False)


async def land(repo: Path, *names: str) -> list[str]:
    queue = MergeQueue(repo, "main", secrets=dict)
    tips: list[str] = []
    for name in names:
        commit_on(repo, name, {f"{name}.txt": name})
        merged = await queue.merge("s1", name, task_id=name)
        assert merged.status is MergeStatus.MERGED
        tips.append(tip(repo))
    return tips


async def test_an_older_tip_of_the_known_chain_is_answered_without_git(repo: Path) -> None:
    after_a, after_b, after_c = await land(repo, "a", "b", "c")
    index = TaskIndex()
    calls = GitCalls(Git(repo, repo.parent / "hooks"))
    assert index.lookup(calls, after_c, "b") == after_b  # built once: one log
    built = calls.count
    assert index.lookup(calls, after_a, "a") == after_a
    assert index.lookup(calls, after_a, "b") is None  # b landed after that tip
    assert index.lookup(calls, after_b, "c") is None
    assert index.lookup(calls, after_b, "b") == after_b
    assert calls.count == built  # no process for any of them
    assert index.lookup(calls, after_c, "c") == after_c  # the newer tip is still known
    assert calls.count == built


async def test_the_chain_extended_and_recorded_is_known_too(repo: Path) -> None:
    (after_a,) = await land(repo, "a")
    index = TaskIndex()
    calls = GitCalls(Git(repo, repo.parent / "hooks"))
    assert index.lookup(calls, after_a, "a") == after_a
    after_b, after_c = await land(repo, "b", "c")  # by another writer: read by extending
    assert index.lookup(calls, after_c, "b") == after_b
    counted = calls.count
    index.record(after_c, "d" * 40, "d")  # our own landing: recorded without a call
    assert index.lookup(calls, after_b, "c") is None
    assert index.lookup(calls, after_c, "c") == after_c
    assert index.lookup(calls, after_c, "d") is None
    assert index.lookup(calls, "d" * 40, "d") == "d" * 40
    assert calls.count == counted


async def test_a_rewritten_base_is_read_again_whole(repo: Path) -> None:
    after_a, after_b = await land(repo, "a", "b")
    index = TaskIndex()
    calls = GitCalls(Git(repo, repo.parent / "hooks"))
    assert index.lookup(calls, after_b, "b") == after_b
    git(repo, "update-ref", "refs/heads/main", after_a)  # reset: b is gone
    (after_c,) = await land(repo, "c")
    assert index.lookup(calls, after_c, "b") is None  # rebuilt: b is no longer there
    assert index.lookup(calls, after_c, "a") == after_a
    # The old tip of the chain before the rewrite is no longer taken as known.
    before = calls.count
    assert index.lookup(calls, after_b, "b") == after_b
    assert calls.count > before


async def test_a_tip_extends_the_older_tips_of_its_known_chain_and_no_other(repo: Path) -> None:
    """``extends``: what the relander's look after a landing skips by. True only for an older
    tip of the chain the index knows, in order; never across a rewrite, nor for a tip it has
    not read; and no git process either way."""
    after_a, after_b, after_c = await land(repo, "a", "b", "c")
    index = TaskIndex()
    calls = GitCalls(Git(repo, repo.parent / "hooks"))
    assert index.lookup(calls, after_c, "a") == after_a
    counted = calls.count
    assert index.extends(after_a, after_c) and index.extends(after_b, after_c)
    assert index.extends(after_a, after_b) and index.extends(after_c, after_c)
    assert not index.extends(after_c, after_b)  # later, not earlier
    assert not index.extends(after_c, "e" * 40)  # a tip the index has not read
    assert not index.extends("e" * 40, after_c)
    ours = TaskIndex()
    assert ours.lookup(calls, after_c, "c") == after_c
    ours.record(after_c, "d" * 40, "d")  # our own landing on the tip: known without a call
    assert ours.extends(after_c, "d" * 40) and ours.extends(after_a, "d" * 40)
    assert not ours.extends("d" * 40, after_c)
    counted = calls.count
    assert index.extends(after_a, after_c)
    assert calls.count == counted

    git(repo, "update-ref", "refs/heads/main", after_a)  # reset: b and c are gone
    (after_e,) = await land(repo, "e")
    assert index.lookup(calls, after_e, "e") == after_e  # rebuilt
    assert not index.extends(after_c, after_e)  # the rewritten chain no longer holds c
    assert not index.extends(after_b, after_e)
    assert index.extends(after_a, after_e)
