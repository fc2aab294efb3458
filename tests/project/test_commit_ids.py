"""``ids.is_commit_id``: the one check a commit read from a record, a teammate or a forge
passes before git is given it (the team train, the merge queue's riders, stacked pulls)."""

from __future__ import annotations

import pytest

from orchestrator.ids import is_commit_id


@pytest.mark.parametrize("value", ["a" * 40, "0123456789abcdef" * 4])
def test_a_full_sha1_or_sha256_is_a_commit_id(value: str) -> None:
    assert is_commit_id(value)


@pytest.mark.parametrize(
    "value", [None, 7, "", "a" * 39, "a" * 41, "A" * 40, "a" * 63, "main", "-" + "a" * 39]
)
def test_anything_else_is_not(value: object) -> None:
    assert not is_commit_id(value)
