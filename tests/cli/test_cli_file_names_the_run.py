"""FILE names the run (issue 48): two configs of one repository each act on their own runs.

A session records the config file that started it (its path and digest, ``config.origin``);
``status``, ``cost``, ``resume``, ``cancel``, ``budget`` and ``checkpoint`` given FILE act on
that file's newest run, and say which one when the store holds other files' runs. It used to
be the repository's newest run, whichever config started it: ``council resume one.yaml``
resumed and landed the other config's task without a word."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.council_process import council
from tests.support.one_task import write
from tests.support.scheduler_helpers import new_repo


def test_each_config_acts_on_its_own_runs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    one = write(tmp_path / "one.yaml", repo, "first")
    # The second config's run is held by a spent budget: interrupted, resumable, and newer.
    two = write(tmp_path / "two.yaml", repo, "second", budgets={"run": {"tokens": 1}})
    ran = council(["run", str(one), "--json"], tmp_path)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    first_session = json.loads(ran.stdout)["session_id"]
    held = council(["run", str(two), "--json"], tmp_path)
    assert held.returncode == 1, held.stdout[-2000:] + held.stderr[-2000:]
    second_session = json.loads(held.stdout)["session_id"]

    # status: each file's own run, the quick look and the store alike.
    for _ in range(2):  # the second look may be the kept report
        shown = council(["status", str(one), "--json"], tmp_path)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["session_id"] == first_session
        assert [t["task_id"] for t in report["tasks"]] == ["first"]
        shown = council(["status", str(two), "--json"], tmp_path)
        assert json.loads(shown.stdout)["session_id"] == second_session

    # cost: the file's run, and it says which run it chose among the repository's.
    cost = council(["cost", str(one), "--json"], tmp_path)
    assert cost.returncode == 0, cost.stderr
    assert {c["task"] for c in json.loads(cost.stdout)["calls"]} == {"first"}
    assert f"run {first_session}, the newest started from {one.resolve()}" in cost.stderr

    # resume one.yaml: its own run has ended; the other file's held run is left alone.
    resumed = council(["resume", str(one), "--json"], tmp_path)
    assert resumed.returncode != 0
    assert f"no interrupted session started from {one.resolve()}" in resumed.stderr, resumed.stderr
    still = json.loads(council(["status", str(two), "--json"], tmp_path).stdout)
    assert [(t["task_id"], t["status"]) for t in still["tasks"]] == [("second", "queued")]
    assert not (repo / "second.txt").exists()

    # An edited file is the same run's: raising the budget in two.yaml and resuming lands it.
    write(two, repo, "second", budgets={"run": {"tokens": 100_000_000}})
    raised = council(["budget", "raise", str(two), "run", "--tokens", "100000000"], tmp_path)
    assert raised.returncode == 0, raised.stderr
    landed = council(["resume", str(two), "--json"], tmp_path)
    assert landed.returncode == 0, landed.stdout[-2000:] + landed.stderr[-2000:]
    assert json.loads(landed.stdout)["session_id"] == second_session


def test_every_command_finds_the_config_meant_here_when_file_is_left_out(tmp_path: Path) -> None:
    """``cost``, ``resume``, ``cancel``, ``budget``, ``checkpoint``, ``clean`` and
    ``worktrees`` given no FILE take the config ``status`` would (the run last started from
    this directory), and say which; one value given to ``cancel`` or ``budget raise`` is the
    task or the budget, two are FILE and it. They used to stop on "Missing argument"."""
    repo = new_repo(tmp_path)
    held = write(tmp_path / "held.yaml", repo, "only", budgets={"run": {"tokens": 1}})
    ran = council(["run", str(held), "--json"], tmp_path)
    assert ran.returncode == 1, ran.stdout[-2000:] + ran.stderr[-2000:]
    session = json.loads(ran.stdout)["session_id"]
    meant = f"{held.resolve()}, run from {tmp_path.resolve()}"

    for args in (
        ["cost", "--json"],
        ["budget", "show", "--json"],
        ["checkpoint", "list", "--json"],
        ["worktrees", "list", "--json"],
    ):
        done = council(args, tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        assert meant in done.stderr, (args, done.stderr)
    assert json.loads(council(["cost", "--json"], tmp_path).stdout)["session_id"] == session

    raised = council(["budget", "raise", "run", "--tokens", "100000000", "--json"], tmp_path)
    assert raised.returncode == 0, raised.stderr
    assert json.loads(raised.stdout)["session_id"] == session
    resumed = council(["resume", "--json"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["session_id"] == session
    assert (repo / "only.txt").exists()

    cancel = council(["cancel", "only"], tmp_path)  # one value: the task, of the run meant
    assert meant in cancel.stderr, cancel.stderr
    assert cancel.returncode == 1 and "there is nothing left to act on" in cancel.stderr
    three = council(["cancel", str(held), "only", "extra"], tmp_path)
    assert three.returncode != 0
    assert "council cancel takes [FILE] TASK, not: " in three.stderr, three.stderr

    bare = tmp_path / "bare"  # a store with no config remembered for it: FILE is asked for
    (bare / ".council" / "state").mkdir(parents=True)
    lost = council(["cost"], bare)
    assert lost.returncode != 0
    assert "remembers; pass it: council cost <config>" in lost.stderr, lost.stderr
