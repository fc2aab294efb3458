"""The file store's fencing tokens come in blocks (``state.file.claims.TOKEN_BLOCK``): one
write of the counter hands out a block's worth of claims' tokens (issue 51: the counter was
written with every claim, 1.84 writes a task). A token still never repeats, across stores
(two processes) and restarts, and each store's tokens grow."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.state import FileStateStore
from orchestrator.state.file import fsops
from orchestrator.state.file.claims import TOKEN_BLOCK


def counter_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every replace of a counters file from now on."""
    written: list[Path] = []
    real = fsops.FileOps.replace

    def replace(self: fsops.FileOps, src: Path, dst: Path) -> None:
        if "counters" in Path(dst).parts:
            written.append(Path(dst))
        real(self, src, dst)

    monkeypatch.setattr(fsops.FileOps, "replace", replace)
    return written


async def claim_all(store: FileStateStore, names: list[str]) -> list[int]:
    tokens = []
    for name in names:
        await store.update_task_state(name, {})
        claim = await store.acquire_claim(name, "w", 600)
        assert claim is not None
        tokens.append(claim.token)
    return tokens


async def test_a_block_of_claims_writes_the_counter_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = counter_writes(monkeypatch)
    async with FileStateStore(tmp_path) as store:
        tokens = await claim_all(store, [f"t{n}" for n in range(TOKEN_BLOCK + 1)])
    assert tokens == sorted(set(tokens))  # they grow, none twice
    assert len(written) == 2  # one block, then the next for the claim past it


async def test_two_stores_and_a_restart_never_hand_out_a_token_twice(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as one, FileStateStore(tmp_path) as two:
        first = await claim_all(one, ["a1", "a2"])
        second = await claim_all(two, ["b1", "b2"])
        first += await claim_all(one, ["a3"])
        assert first == sorted(first) and second == sorted(second)
        assert not set(first) & set(second)
    async with FileStateStore(tmp_path) as again:
        (later,) = await claim_all(again, ["c1"])
    assert later > max(first + second)


async def test_a_task_claimed_again_gets_a_greater_token_from_another_store(
    tmp_path: Path,
) -> None:
    """The older store's block is below the newer one's: a task it claims after the newer
    one did still gets a token above the task's last (the claim's floor), never an old one."""
    async with FileStateStore(tmp_path) as older, FileStateStore(tmp_path) as newer:
        await claim_all(older, ["x"])  # the older store takes its block first
        await newer.update_task_state("t", {})
        held = await newer.acquire_claim("t", "w", 600)
        assert held is not None
        await newer.release_claim("t", held.token)
        again = await older.acquire_claim("t", "w2", 600)
        assert again is not None and again.token > held.token
