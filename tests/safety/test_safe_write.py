"""Writes where a CLI can reach never follow a link it planted (``orchestrator.safety.safe_write``):
on real files, and through real runs whose CLI plants links where the orchestrator writes
next (the phase's handoff, the merge lock, its task's state record, git's hooks): the file
outside the repository the link points at is never written, and the run says what it
refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import PathEscapeError
from orchestrator.safety.safe_write import open_append, real_dir, write_atomic
from tests.support.council_process import council
from tests.support.fault_helpers import FaultRun


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


def test_a_missing_directory_is_made_from_its_parent_not_walked_from_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run makes a directory per task record: one step from the parent it reaches at once,
    not the walk from the root (a descriptor per component)."""
    root = tmp_path / "root"
    (root / "a" / "b" / "c").mkdir(parents=True)
    opened: list[str] = []
    real_open = os.open

    def counting(path: str, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting)
    with real_dir(root, root / "a" / "b" / "c" / "new") as fd:
        made = os.fstat(fd)
    monkeypatch.undo()
    assert (root / "a" / "b" / "c" / "new").is_dir()
    assert os.stat(root / "a" / "b" / "c" / "new").st_ino == made.st_ino
    # the directory (missing), its parent, the step (missing, then made): never the root's
    # components one by one
    assert len(opened) == 4 and "a" not in opened and "b" not in opened


@pytest.mark.parametrize("planted", ["at the new directory", "in the parent's place"])
def test_a_link_planted_where_a_directory_is_made_is_refused(
    tmp_path: Path, outside: Path, planted: str
) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    if planted == "at the new directory":
        (root / "a" / "new").symlink_to(outside, target_is_directory=True)
        target = root / "a" / "new"
    else:
        (root / "b").symlink_to(outside, target_is_directory=True)
        target = root / "b" / "new"
    with pytest.raises(PathEscapeError, match="symbolic link"), real_dir(root, target):
        pass
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


@pytest.mark.parametrize("where", ["temp", "file"])
async def test_links_a_cli_plants_where_its_handoff_is_written_are_never_followed(
    tmp_path: Path, outside: Path, where: str
) -> None:
    env = {"FAULT_OUTSIDE": str(outside), "FAULT_LINKS": where}
    run = FaultRun(tmp_path, "links.py", env=env, sandbox="none")
    task = next(t for t in (await run.run_here())["tasks"] if t["task_id"] == "fault")
    assert task["status"] == "done", task["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]  # nothing written there
    assert (outside / "victim").read_text() == "precious\n"


async def test_a_cli_that_links_the_handoff_directory_outside_fails_saying_so(
    tmp_path: Path, outside: Path
) -> None:
    env = {"FAULT_OUTSIDE": str(outside), "FAULT_LINKS": "dir"}
    run = FaultRun(tmp_path, "links.py", env=env, sandbox="none")
    task = next(t for t in (await run.run_here())["tasks"] if t["task_id"] == "fault")
    assert task["status"] == "failed"
    assert "symbolic link" in task["error"] and "handoff" in task["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert not run.on_main("work.txt")


def planted(tmp_path: Path, outside: Path, where: str) -> FaultRun:
    """A run whose CLI plants a link at ``where`` (``fault_clis/links.py``) during its build."""
    env = {"FAULT_OUTSIDE": str(outside), "FAULT_LINKS": where, "FAULT_TASK": "fault"}
    return FaultRun(tmp_path, "links.py", env=env, sandbox="none")


def untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]  # nothing written there
    assert (outside / "victim").read_text() == "precious\n"


def test_a_link_at_the_merge_lock_is_refused_and_removing_it_lets_the_run_resume(
    tmp_path: Path, outside: Path
) -> None:
    # The merge lock keeps its fencing counter in its own bytes: followed, the link would
    # have the orchestrator overwrite whatever it points at with a number.
    run = planted(tmp_path, outside, "merge-lock")
    lock = run.council_dir / "locks" / "merge.lock"
    refused = run.run()
    said = refused.stderr.decode()
    assert refused.returncode == 1, said[-3000:]
    assert f"cannot use lock file {lock}" in said and "is a symbolic link" in said
    assert "remove it" in said and "council resume" in said
    untouched(outside)
    lock.unlink()  # the advice, followed
    resumed = council(["resume", str(run.config_path), "--json"], tmp_path, timeout=60)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run.state()["status"] == "done" and run.on_main("work.txt")
    untouched(outside)


def test_a_link_in_place_of_a_state_record_directory_is_never_written_through(
    tmp_path: Path, outside: Path
) -> None:
    run = planted(tmp_path, outside, "record-dir")
    refused = run.run()
    said = refused.stderr.decode()
    assert refused.returncode == 1, said[-3000:]
    record = run.council_dir / "state" / "tasks" / "fault"
    assert f"'fault' on the way is a symbolic link (to {outside})" in said, said[-3000:]
    assert str(record) in said and "council resume" in said
    untouched(outside)


async def test_a_link_in_place_of_gits_hooks_is_never_restored_through(
    tmp_path: Path, outside: Path
) -> None:
    # The tamper guard finds the hooks "changed" (the link's directory lists a new file) and
    # puts back what was there: through the link, that moved and rewrote the outside file.
    run = planted(tmp_path, outside, "hooks")
    task = next(t for t in (await run.run_here())["tasks"] if t["task_id"] == "fault")
    assert task["status"] == "failed" and "hooks" in task["error"], task["error"]
    assert "symbolic link" in task["error"]
    untouched(outside)
