"""The state store contract, run against the file backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.state import FileStateStore, StateStore
from orchestrator.testing.state_contract import StateStoreContract


class TestFileStateStore(StateStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[StateStore]:
        async with FileStateStore.for_repo(tmp_path) as store:
            yield store

    @pytest.fixture
    async def store_twin(self, tmp_path: Path) -> AsyncIterator[StateStore]:
        """A second store on the same directory, as another process opens it."""
        async with FileStateStore.for_repo(tmp_path) as store:
            yield store


def test_file_store_satisfies_the_protocol(tmp_path: Path) -> None:
    assert isinstance(FileStateStore(tmp_path), StateStore)
