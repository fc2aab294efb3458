"""Writes where a CLI can reach never follow a link it planted (``orchestrator.safe_write``):
on real files, and through a real run whose CLI plants links where the orchestrator writes
the phase's handoff next."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_helpers import FaultRun

from orchestrator.errors import PathEscapeError
from orchestrator.safe_write import open_append, real_dir, write_atomic


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    place = tmp_path / "outside"
    place.mkdir()
    (place / "victim").write_text("precious\n")
    return place


def test_a_link_at_the_file_is_replaced_never_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file.json").symlink_to(outside / "victim")
    write_atomic(root, root / "dir" / "file.json", b"new\n")
    assert (outside / "victim").read_text() == "precious\n"
    assert not (root / "dir" / "file.json").is_symlink()
    assert (root / "dir" / "file.json").read_text() == "new\n"
    assert sorted(p.name for p in (root / "dir").iterdir()) == ["file.json"]  # no temp left


@pytest.mark.parametrize("depth", [1, 2])
def test_a_link_in_place_of_a_directory_on_the_way_is_refused(
    tmp_path: Path, outside: Path, depth: int
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    linked = root / "a" if depth == 1 else root / "a" / "b"
    linked.parent.mkdir(parents=True, exist_ok=True)
    linked.symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symbolic link"):
        write_atomic(
            root, root / "a" / "b" / "victim" if depth == 2 else root / "a" / "victim", b"x"
        )
    with pytest.raises(PathEscapeError, match="symbolic link"):
        os.close(open_append(root, linked / "victim"))
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "precious\n"


def test_appending_refuses_a_link_at_the_file(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "log").symlink_to(outside / "victim")
    with pytest.raises(PathEscapeError, match="is a symbolic link"):
        open_append(tmp_path, tmp_path / "log")
    assert (outside / "victim").read_text() == "precious\n"


def test_missing_directories_are_made_and_a_path_outside_the_root_is_refused(
    tmp_path: Path,
) -> None:
    os.close(open_append(tmp_path, tmp_path / "x" / "y" / "log"))
    assert (tmp_path / "x" / "y" / "log").is_file()
    with pytest.raises(PathEscapeError, match="not under"), real_dir(tmp_path / "x", tmp_path):
        pass


@pytest.mark.parametrize("where", ["temp", "file"])
async def test_links_a_cli_plants_where_its_handoff_is_written_are_never_followed(
    tmp_path: Path, outside: Path, where: str
) -> None:
    env = {"FAULT_OUTSIDE": str(outside), "FAULT_LINKS": where}
    run = FaultRun(tmp_path, "links.py", env=env)
    task = next(t for t in (await run.run_here())["tasks"] if t["task_id"] == "fault")
    assert task["status"] == "done", task["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]  # nothing written there
    assert (outside / "victim").read_text() == "precious\n"


async def test_a_cli_that_links_the_handoff_directory_outside_fails_saying_so(
    tmp_path: Path, outside: Path
) -> None:
    env = {"FAULT_OUTSIDE": str(outside), "FAULT_LINKS": "dir"}
    run = FaultRun(tmp_path, "links.py", env=env)
    task = next(t for t in (await run.run_here())["tasks"] if t["task_id"] == "fault")
    assert task["status"] == "failed"
    assert "symbolic link" in task["error"] and "handoff" in task["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert not run.on_main("work.txt")
