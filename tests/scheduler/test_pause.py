"""A paused workstation says it was paused (``scheduler.pause``), not that the state store
cannot be reached: the rule on clocks of the test's own, and a real ``council run`` stopped
with SIGSTOP past two thirds of its lease, then continued, whose attempt goes on."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.event_text import sentence
from orchestrator.events.runs import WorkstationPaused
from orchestrator.scheduler.pause import Pause, PauseWatch
from tests.support.cli_process_helpers import events, reap, seen, spawn, wait_for
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience


@dataclass
class Clocks:
    mono: float = 100.0
    boot: float = 500.0
    used: float = 1.0

    def monotonic(self) -> float:
        return self.mono

    def boot_(self) -> float:
        return self.boot

    def cpu(self) -> float:
        return self.used

    def passes(self, *, ran: float, slept: float = 0.0, cpu: float = 0.0) -> None:
        self.mono += ran
        self.boot += ran + slept
        self.used += cpu


class _Watched:
    """``Clocks`` under the names ``PauseWatch`` asks for."""

    def __init__(self, clocks: Clocks) -> None:
        self.clocks = clocks

    def monotonic(self) -> float:
        return self.clocks.monotonic()

    def boot(self) -> float:
        return self.clocks.boot_()

    def cpu(self) -> float:
        return self.clocks.cpu()


def watch(after: float = 2.0) -> tuple[PauseWatch, Clocks]:
    clocks = Clocks()
    pauses = PauseWatch(after, _Watched(clocks))
    assert pauses.look() is None  # the first look only starts the count
    return pauses, clocks


def test_a_process_not_run_for_longer_than_after_was_stopped_once() -> None:
    pauses, clocks = watch()
    clocks.passes(ran=0.5, cpu=0.01)
    assert pauses.look() is None  # an ordinary pass
    clocks.passes(ran=30.0, cpu=0.02)  # SIGSTOP: the clocks ran, the process did not
    assert pauses.look() == Pause(30.0, "stopped")
    assert pauses.look() is None  # said once: the next look counts from now


def test_a_machine_asleep_is_seen_on_the_boot_clock() -> None:
    pauses, clocks = watch()
    clocks.passes(ran=0.3, slept=600.0, cpu=0.01)  # suspended: the monotonic clock stood
    assert pauses.look() == Pause(600.0, "asleep")


def test_a_loop_busy_with_its_own_work_or_a_short_gap_is_no_pause() -> None:
    pauses, clocks = watch()
    clocks.passes(ran=30.0, cpu=25.0)  # blocked by its own work: it ran, using the CPU
    assert pauses.look() is None
    clocks.passes(ran=1.9, slept=1.9, cpu=0.0)  # under ``after`` either way
    assert pauses.look() is None


def test_after_must_be_a_positive_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="PauseWatch: after must be above 0 seconds, not 0"):
        PauseWatch(0)


def test_the_pause_is_said_as_a_pause() -> None:
    said = sentence(WorkstationPaused(seconds=12.5, how="stopped", attempts=2, renewed=2))
    assert said == (
        "this workstation was paused for 12.5s (stopped), not the state store: 2 of 2 running "
        "claims renewed at once"
    )


def test_a_run_stopped_past_its_fence_deadline_says_it_was_paused_and_goes_on(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("slow", "SLEEP 7\nWRITE slow.txt slow"))
    # A lease of 6 s: an attempt not renewed for 4 s would fence itself.
    text = config.read_text().replace("stale_threshold: 10m", "stale_threshold: 6s")
    config.write_text(text)
    process = spawn("run", config, "--json", cwd=tmp_path)
    try:
        wait_for(lambda: seen(repo, "phase.started", phase="build"), "the build's CLI started")
        process.send_signal(signal.SIGSTOP)
        # The pause itself is what is tested: the run is held stopped past its fence deadline
        # (4 s) and inside its lease (6 s), as a workstation stopped by Ctrl-Z would be.
        time.sleep(4.5)
        os.kill(process.pid, signal.SIGCONT)
        out, err = process.communicate(timeout=patience(120))
    finally:
        reap(process)
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    (report,) = [json.loads(out)["tasks"]]
    story = [e["type"] for e in events(repo) if not e["type"].startswith("state.")]
    assert [(t["task_id"], t["status"], t["attempts"]) for t in report] == [("slow", "done", 1)], (
        story,
        err[-3000:],
    )
    seen_events = events(repo)
    paused = [e["data"] for e in seen_events if e["type"] == "workstation.paused"]
    assert len(paused) == 1, paused
    assert paused[0]["how"] == "stopped" and paused[0]["seconds"] >= 4.0  # stopped 4.5 s at least
    assert (paused[0]["attempts"], paused[0]["renewed"]) == (1, 1)
    kinds = {e["type"] for e in seen_events}
    assert not kinds & {"task.self_fenced", "task.claim_lost", "task.swept", "task.requeued"}
    assert "this workstation was paused for" in err
    assert "cannot be reached" not in err
