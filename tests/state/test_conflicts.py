"""``detect_conflicts`` and ``three_way_merge``: which fields two changes of one record fight
over, and the record both changes make together (the store-level behaviour is in the contract
suite, ``orchestrator.testing.state_contract``, on both backends)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.state.conflicts import MergeConflict, detect_conflicts, three_way_merge

BASE: dict[str, Any] = {"a": 1, "nested": {"x": 1, "y": 1}, "tags": ["t"], "gone": True}


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    same = {**BASE, "a": 2}
    assert detect_conflicts(BASE, same, same) == []
    assert three_way_merge(BASE, same, same) == same


def test_conflicts_are_named_by_their_path_at_any_depth() -> None:
    ours = {**BASE, "a": 2, "nested": {"x": 2, "y": 1}}
    theirs = {**BASE, "a": 3, "nested": {"x": 3, "y": 5}}
    assert detect_conflicts(BASE, ours, theirs) == ["a", "nested.x"]
    with pytest.raises(MergeConflict) as clash:
        three_way_merge(BASE, ours, theirs, record="cfg/k")
    assert clash.value.paths == ["a", "nested.x"]
    assert str(clash.value) == "cfg/k: both changes set a, nested.x differently"


def test_a_removal_against_a_change_is_a_conflict_and_against_nothing_is_kept() -> None:
    removed = {k: v for k, v in BASE.items() if k != "gone"}
    assert detect_conflicts(BASE, removed, {**BASE, "gone": False}) == ["gone"]
    assert three_way_merge(BASE, removed, {**BASE, "a": 9}) == {**removed, "a": 9}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("union", ["t", "theirs", "mine"]), ("ours", ["t", "mine"]), ("theirs", ["t", "theirs"])],
)
def test_lists_both_changed_follow_the_declared_rule(rule: Any, expected: list[str]) -> None:
    ours, theirs = {**BASE, "tags": ["t", "mine"]}, {**BASE, "tags": ["t", "theirs"]}
    assert detect_conflicts(BASE, ours, theirs) == ["tags"]
    assert three_way_merge(BASE, ours, theirs, rule)["tags"] == expected


keys = st.sampled_from(["a", "b", "c", "d", "e", "f"])
values = st.integers(-3, 3)


@given(
    base=st.dictionaries(keys, values),
    mine=st.dictionaries(keys, values),
    their_keys=st.sets(keys),
    their_value=values,
)
def test_changes_to_different_fields_merge_into_both(
    base: dict[str, int], mine: dict[str, int], their_keys: set[str], their_value: int
) -> None:
    ours = {**base, **mine}
    changed = {k for k in ours if base.get(k, object()) != ours[k]}
    theirs = {**base, **{k: their_value for k in their_keys - changed}}
    assert detect_conflicts(base, ours, theirs) == []
    merged = three_way_merge(base, ours, theirs)
    assert merged == {**theirs, **{k: ours[k] for k in changed}}
    # Symmetric: merging the other way round gives the same record.
    assert three_way_merge(base, theirs, ours) == merged
