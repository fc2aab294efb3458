"""``Council.events()``: a real run's events for ``async for``, typed, in the order they were
emitted, ending when the run ends; several at once; a consumer that falls behind never holds
the run up and is told what it missed. And every line a real run writes to ``events.jsonl``
reads back into its type's model."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

from orchestrator import (
    Council,
    Event,
    EventsDropped,
    MergeCompleted,
    PhaseCompleted,
    PhaseStarted,
    RunFinished,
    RunReport,
    RunStarted,
    TaskDispatched,
    TaskEvent,
    parse_event,
)
from orchestrator.events.catalogue import MODELS
from tests.support.scheduler_helpers import new_repo, run_config

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"

# The events about one task that a run of these tests emits, each with the task's id.
TASK_TYPES = {
    "task.dispatched",
    "phase.started",
    "phase.event",
    "phase.completed",
    "phase.sent_back",
    "merge.started",
    "merge.completed",
    "merge.resolve_round",
    "merge.forecast_conflict",
    "claim.acquired",
    "claim.renewed",
    "claim.released",
    "worktree.created",
    "worktree.removed",
}


def two_tasks(repo: Path) -> Council:
    build = "SAY working\nWRITE {name}.txt hello"
    tasks = [
        {
            "id": name,
            "prompt": f"write {name}.txt",
            "files": [f"{name}.txt"],
            "metadata": {"phase_instructions": {"build": build.format(name=name)}},
        }
        for name in ("one", "two")
    ]
    return Council(run_config(repo, tasks))


async def collect(stream: object, into: list[Event]) -> None:
    async for event in stream:  # type: ignore[attr-defined]
        into.append(event)


def the_way_of(task_id: str, events: list[Event]) -> list[str]:
    return [
        e.type
        for e in events
        if isinstance(e, TaskDispatched | PhaseStarted | PhaseCompleted | MergeCompleted)
        and e.task_id == task_id
    ]


async def test_the_iterator_yields_the_run_typed_in_order_and_ends_with_it(
    tmp_path: Path,
) -> None:
    heard: list[Event] = []
    yielded: list[Event] = []
    async with two_tasks(new_repo(tmp_path)) as council:
        council.subscribe(heard.append)
        stream = council.events()  # before the run: it hears all of it
        reports: list[RunReport] = []

        async def run() -> None:
            reports.append(await council.run())

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            async for event in stream:  # ends by itself when the run ends
                yielded.append(event)

    assert reports[0].exit_code == 0
    assert yielded == heard  # every event, in the order it was emitted
    assert stream.dropped == 0
    assert all(type(e) is MODELS[e.type] for e in yielded)  # each its type's own model
    runs = [e for e in yielded if e.type.startswith("run.")]
    assert [type(e) for e in runs] == [RunStarted, RunFinished]
    assert isinstance(runs[-1], RunFinished) and runs[-1].status == "completed"
    about_tasks = [e for e in yielded if e.type in TASK_TYPES]
    assert about_tasks and all(isinstance(e, TaskEvent) for e in about_tasks)
    assert {e.task_id for e in about_tasks if isinstance(e, TaskEvent)} == {"one", "two"}
    for task_id in ("one", "two"):
        assert the_way_of(task_id, yielded) == [
            "task.dispatched",
            "phase.started",
            "phase.completed",
            "merge.completed",
        ]


async def test_types_keep_only_those_events_and_the_stream_ends_with_the_report(
    tmp_path: Path,
) -> None:
    heard: list[Event] = []
    landings: list[Event] = []
    tasks: list[Event] = []
    async with two_tasks(new_repo(tmp_path)) as council:
        council.subscribe(heard.append)
        by_class = council.events(types=[MergeCompleted])
        by_base = council.events(types=[TaskEvent, "run.finished"])
        with pytest.raises(ValueError, match="a list of event classes"):
            council.events(types=MergeCompleted)  # type: ignore[arg-type]
        async with anyio.create_task_group() as tg:
            tg.start_soon(council.run)
            tg.start_soon(collect, by_class, landings)
            tg.start_soon(collect, by_base, tasks)

    assert [e.task_id for e in landings if isinstance(e, MergeCompleted)] == [
        e.task_id for e in heard if isinstance(e, MergeCompleted)
    ]
    assert all(type(e) is MergeCompleted for e in landings) and len(landings) == 2
    wanted = [e for e in heard if isinstance(e, TaskEvent) or e.type == "run.finished"]
    assert tasks == wanted
    for stream in (by_class, by_base):
        assert stream.report is not None and stream.report.totals.done == 2


async def test_several_iterators_at_once_and_a_slow_one_is_told_what_it_missed(
    tmp_path: Path,
) -> None:
    council = two_tasks(new_repo(tmp_path))
    early = council.events()  # made before the context is entered: hears the run too
    async with council:
        everything = council.events()
        slow = council.events(buffer=3)  # nobody reads it until the run is over
        first: list[Event] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, early, first)
            report = await council.run()  # not held up by ``slow``, whose buffer is full
        second = [event async for event in everything]
        late = [event async for event in slow]

    assert report.exit_code == 0
    assert first == second and len(first) > 10
    assert late[:3] == first[:3]
    marker = late[3]
    assert isinstance(marker, EventsDropped) and marker.level == "warning"
    assert marker.count == len(first) - 3 == slow.dropped
    assert len(late) == 4  # nothing after the gap: the run ended while it was full


async def test_an_iterator_closed_early_ends_and_a_bad_buffer_is_refused(tmp_path: Path) -> None:
    council = two_tasks(new_repo(tmp_path))
    with pytest.raises(ValueError, match=r"events\(buffer=0\): the buffer must hold at least 1"):
        council.events(buffer=0)
    async with council:
        async with council.events() as stream:
            seen: list[Event] = []

            async def until_first_landing() -> None:
                async for event in stream:
                    seen.append(event)
                    if isinstance(event, MergeCompleted):
                        await stream.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(until_first_landing)
                report = await council.run()
        after = council.events()  # no run follows: it ends with the context

    assert report.exit_code == 0
    assert isinstance(seen[-1], MergeCompleted)
    assert sum(isinstance(e, MergeCompleted) for e in seen) == 1
    assert [e async for e in after] == []


async def test_every_line_the_demo_logs_fits_its_model(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(DEMO, configs / "demo.yaml")
    council = Council.from_config(configs / "demo.yaml")
    yielded: list[Event] = []
    async with council:
        stream = council.events()
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, stream, yielded)
            report = await council.run()

    assert report.exit_code == 0
    log = council.config.repo / ".council" / "events.jsonl"
    lines = log.read_text().splitlines()
    parsed = [parse_event(line) for line in lines]  # raises on a line that does not fit
    assert {type(e) for e in parsed} <= set(MODELS.values())
    kinds = {e.type for e in parsed}
    assert {"merge.resolve_round", "phase.sent_back", "run.finished"} <= kinds
    task_ids = {task.id for task in council.config.tasks}
    for event in parsed:
        if event.type in TASK_TYPES:
            assert isinstance(event, TaskEvent) and event.task_id in task_ids, event
    # The iterator saw the same run: every logged event (the log's order may differ: the
    # store appends its own writes from a worker thread, the other events from the loop).
    logged = sorted(map(wire, parsed))
    assert sorted(wire(e) for e in yielded if e.type != "phase.event") == logged  # not logged


def wire(event: Event) -> str:
    return event.model_dump_json()
