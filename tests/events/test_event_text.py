"""Warnings a person reads: one sentence per event, never a Python dict; and the command line
prints the library's warnings as such lines on stderr."""

from __future__ import annotations

import logging

import pytest

from orchestrator.cli import console
from orchestrator.event_text import sentence
from orchestrator.events import Event, EventType


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (
            "merge.forecast_conflict",
            {"task_id": "t2", "held_for": "t1", "paths": ["README.md", "a.py"]},
            "t2: waits to land until t1 has (both change README.md, a.py)",
        ),
        (
            "phase.failed",
            {"task": "t3", "phase": "build", "outcome": "no_changes", "error": "nothing done"},
            "t3: build failed (no_changes): nothing done",
        ),
        (
            EventType.MERGE_WAITING,
            {"task_id": "t4", "message": "main is checked out in /x with changes"},
            "t4: waiting to land: main is checked out in /x with changes",
        ),
        (
            "task.swept",
            {"task_id": "t5", "holder": "vm:12:ab", "status": "queued"},
            "t5: the claim of vm:12:ab lapsed: the task is queued again",
        ),
        (
            "task.claim_lost",
            {"task_id": "t6"},
            "t6: its claim lapsed and another took the task: this attempt writes nothing more",
        ),
    ],
)
def test_known_events_read_as_sentences(kind: str, data: dict[str, object], expected: str) -> None:
    assert sentence(Event(type=kind, data=data, level="warning")) == expected


def test_an_event_without_wording_or_missing_a_field_is_still_a_plain_line() -> None:
    # phase.failed without its error: the wording needs it, so the plain line is used.
    line = sentence(Event(type="phase.failed", data={"task": "t1", "phase": "plan", "n": 2.5}))
    assert line == "t1: phase failed: phase plan, n 2.5"
    odd = sentence(Event(type="cli.survivors_stopped", data={"processes": [{"pid": 7}]}))
    assert odd == "cli survivors stopped: processes pid 7"
    for text in (line, odd):
        assert "{" not in text and "'" not in text


def test_the_command_line_prints_warnings_as_lines(capsys: pytest.CaptureFixture[str]) -> None:
    handler = console.WarningLines(logging.WARNING)
    log = logging.getLogger("test.warning_lines")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("%s", sentence(Event(type="task.claim_lost", data={"task_id": "t6"})))
        log.info("not shown")
        try:
            raise OSError("disk gone")
        except OSError:
            log.exception("could not write")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "warning: t6: its claim lapsed and another took the task: this attempt writes nothing more",
        "error: could not write: disk gone",
    ]
