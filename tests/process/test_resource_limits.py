"""The resource limits' mechanism (``orchestrator.process.limits``) and their config
(``sandbox.limits``): the command lines, the cgroups made for launches (on a stand-in tree:
the real one is the sandbox tier's, ``tests/sandbox/test_sandbox_root.py``), the config's checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.config.sandbox import SandboxConfig, merged_sandbox
from orchestrator.process.limits import Cgroups, Limits, ended, inside, outside
from orchestrator.sandbox.choice import limits_of


def test_the_rlimits_are_set_by_prlimit_hard_and_soft() -> None:
    argv = inside(Limits(processes=64, memory=1 << 30, file_size=None), ["cli", "-x"], "/p")
    assert argv == ["/p", "--nproc=64:64", f"--data={1 << 30}:{1 << 30}", "--", "cli", "-x"]
    assert inside(Limits(), ["cli"], "/p") == ["cli"]  # nothing bounded: nothing in between


def tree(tmp_path: Path, *, pids: bool = True) -> Cgroups:
    """A stand-in for /sys/fs/cgroup (v1): this process in ``/job`` of each hierarchy."""
    root = tmp_path / "cgroup"
    for controller in ("pids", "memory") if pids else ("memory",):
        (root / controller / "job").mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("")
    proc = tmp_path / "self-cgroup"
    proc.write_text("8:pids:/job\n4:memory:/job\n0::/\n")
    return Cgroups(root, proc)


def test_each_launch_gets_a_cgroup_and_an_emptied_one_is_reused(tmp_path: Path) -> None:
    cgroups = tree(tmp_path)
    limits = Limits(processes=64, memory=1 << 30)
    first = cgroups.make(limits)
    parent = tmp_path / "cgroup" / "pids" / "job" / f"council-{os.getpid()}"
    assert first[0] == parent / "1" / "cgroup.procs" and len(first) == 2
    assert (parent / "1" / "pids.max").read_text() == "64"
    memory = tmp_path / "cgroup" / "memory" / "job" / f"council-{os.getpid()}" / "1"
    assert (memory / "memory.limit_in_bytes").read_text() == str(1 << 30)
    # Handed out, its process not in yet: never another launch's.
    second = cgroups.make(limits)
    assert second[0] == parent / "2" / "cgroup.procs"
    first[0].write_text("123\n")  # its process joined ...
    assert cgroups.make(limits)[0] == parent / "3" / "cgroup.procs"
    first[0].write_text("")  # ... and ended: the next launch takes it, with its own limits
    again = cgroups.make(Limits(processes=None, memory=None))
    assert again[0] == first[0]
    assert (parent / "1" / "pids.max").read_text() == "max"
    assert (memory / "memory.limit_in_bytes").read_text() == "-1"


def test_a_launch_said_over_gives_its_cgroup_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cgroups = tree(tmp_path)
    monkeypatch.setattr("orchestrator.process.limits.cgroups", lambda: cgroups)
    first = outside(Limits(processes=64), ["cmd"])
    ended(first)  # its process ran (too briefly to be seen) and ended
    assert outside(Limits(processes=64), ["cmd"]) == first  # the same cgroup, not a new one
    ended(["cmd"])  # a command without a cgroup: nothing to give back


def test_without_a_pids_hierarchy_no_cgroup_is_made(tmp_path: Path) -> None:
    cgroups = tree(tmp_path, pids=False)
    assert not cgroups.available() and cgroups.make(Limits(processes=64)) == []
    assert "no cgroup hierarchy bounds processes" in cgroups.problem
    assert not list((tmp_path / "cgroup" / "memory" / "job").iterdir())  # nothing left


def test_the_launch_joins_its_cgroup_before_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrapper, run for real: the shell writes its pid into every ``cgroup.procs`` and
    then becomes the command (the same pid, so the command is in the cgroup from its start)."""
    cgroups = tree(tmp_path)
    monkeypatch.setattr("orchestrator.process.limits.cgroups", lambda: cgroups)
    argv = outside(Limits(processes=64), ["sh", "-c", "echo $$"])
    assert argv[:2] == ["/bin/sh", "-c"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    joined = [Path(p) for p in argv if p.endswith("cgroup.procs")]
    assert len(joined) == 2
    assert all(p.read_text().strip() == done.stdout.strip() for p in joined)
    assert outside(Limits(file_size=1 << 20), ["x"]) == ["x"]  # no cgroup for an rlimit


def test_the_config_takes_sizes_none_and_adapters_override_limit_by_limit() -> None:
    run = SandboxConfig.model_validate({"limits": {"processes": 512, "memory": "4GiB"}})
    assert limits_of(run.limits) == Limits(512, 4 << 30, 2 << 30)  # file_size: the default
    adapter = SandboxConfig.model_validate({"limits": {"memory": "16GiB"}})
    assert limits_of(merged_sandbox(run, adapter).limits) == Limits(512, 16 << 30, 2 << 30)
    assert limits_of(SandboxConfig.model_validate({"limits": "none"}).limits) == Limits()
    some = SandboxConfig.model_validate({"limits": {"file_size": "none"}}).limits
    assert some.file_size is None and some.processes == 2048


@pytest.mark.parametrize(
    ("limits", "said"),
    [
        ({"processes": 3}, "limits.processes"),
        ({"memory": "1MiB"}, "at least 64MiB"),
        ({"file_size": "lots"}, "limits.file_size"),
        ({"cpu": 2}, "limits.cpu"),
    ],
)
def test_a_bad_limit_is_refused_naming_it(limits: dict[str, object], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        SandboxConfig.model_validate({"limits": limits})
