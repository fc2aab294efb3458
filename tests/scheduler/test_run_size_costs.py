"""What the scheduler's costs grow with: a look at the board (``scheduler.board_book``) and a
dispatch pass (``scheduler.queue_order``) cost what changed and what they show or look at,
never a line or a place per task of the run; a stop records its end without reading the
task list (``session.finish``). Counted, never timed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.task import TaskConfig
from orchestrator.council import Council
from orchestrator.models import TaskState, TaskStatus, utcnow
from orchestrator.scheduler import dispatcher as dispatching
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.board_book import BoardBook, board
from orchestrator.scheduler.queue_order import QueueOrder
from orchestrator.scheduler.rules.queue import ordered
from tests.support.scheduler_helpers import Probe, new_repo, run_config

_MANY = 10_000


def _tasks(count: int, **extra: Any) -> dict[str, TaskConfig]:
    return {
        f"t{n:05d}": TaskConfig.model_validate({"id": f"t{n:05d}", "prompt": "p", **extra})
        for n in range(count)
    }


def _states(tasks: dict[str, TaskConfig]) -> dict[str, TaskState]:
    start = utcnow()
    return {
        task_id: TaskState(task_id=task_id, session_id="s", created_at=start + timedelta(0, n))
        for n, task_id in enumerate(tasks)
    }


def _stop_once_started(running: Council, probe: Probe, count: int) -> None:
    """``running`` stopped once ``count`` attempts have started."""

    def heard(event: Any) -> None:
        if event.type == "task.dispatched" and len(probe.calls) >= count:
            running.stop()

    running.subscribe(heard)


def test_a_look_builds_again_only_the_lines_whose_sources_changed() -> None:
    tasks = _tasks(_MANY)
    tasks["t00002"] = TaskConfig.model_validate(
        {"id": "t00002", "prompt": "p", "depends_on": ["t00001"]}
    )
    states = _states(tasks)
    book = BoardBook()
    book.look(tasks, states, [], {}, {}, {})
    assert book.built == _MANY  # the first look builds every line
    assert book.lines()[2].detail == "after t00001"  # what its record holds it for

    book.look(tasks, states, [], {}, {}, {})
    assert book.built == _MANY  # nothing changed: nothing built

    # One record changed (read again by the scheduler's view): it, and the task after it.
    states = {**states, "t00001": states["t00001"].model_copy(update={"status": "done"})}
    book.changed({"t00001"})
    book.look(tasks, states, [], {}, {}, {})
    assert book.built == _MANY + 2
    lines = {line.task_id: line for line in book.lines()}
    assert lines["t00001"].status == "done" and lines["t00002"].detail == ""

    # An attempt in flight is drawn again at each look (its time moves); a reason the
    # dispatcher gave, a mark and a note draw their task once, and again once gone.
    attempt = Attempt(tasks["t00005"], "alpha", "build", 1, frozenset())
    waits = {"t00007": "no free slot for alpha (build)"}
    marks = {"t00009": "collides with t00005 on x.py (hunks)"}
    before = book.built
    book.look(tasks, states, [attempt], waits, marks, {})
    assert book.built == before + 3
    book.look(tasks, states, [attempt], waits, marks, {})
    assert book.built == before + 4
    book.look(tasks, states, [], {}, {}, {})
    assert book.built == before + 7
    lines = {line.task_id: line for line in book.lines()}
    assert lines["t00005"].status == "queued" and not lines["t00007"].detail
    # What names no task of the run (a council candidate's note) draws nothing, and fails not.
    book.look(tasks, states, [], {}, {}, {"t00005.c1": "services: web ready"})
    assert book.built == before + 7


def test_a_screen_shows_what_fits_and_counts_every_task_from_the_book() -> None:
    tasks = _tasks(_MANY)
    states = _states(tasks)
    ended = {f"t{n:05d}" for n in range(100)}
    for task_id in ended:
        states[task_id] = states[task_id].model_copy(update={"status": TaskStatus.FAILED})
    running = [Attempt(tasks[f"t{n:05d}"], "alpha", "build", n, frozenset()) for n in (5000, 150)]
    book = BoardBook()
    book.look(tasks, states, running, {"t09999": "after t00150"}, {}, {})
    view = book.view(40)
    assert view.total == _MANY
    assert view.kinds == Counter(failed=100, running=2, waiting=1, queued=_MANY - 103)
    shown = [line.task_id for line in view.lines]
    assert len(shown) == 39  # and the line that counts the rest
    assert "t00150" in shown and "t05000" in shown and "t09999" in shown
    assert shown == sorted(shown)  # in the run's order
    assert sum(view.folded.values()) == _MANY - 39 and view.folded["failed"] == 100
    # The same rows as the board built from every line (``live_board.rows_for``'s rule).
    whole = BoardBook.of_lines(board(tasks.values(), states, running, {"t09999": "after t00150"}))
    again = whole.view(40)
    assert [(x.task_id, x.kind) for x in again.lines] == [(x.task_id, x.kind) for x in view.lines]
    assert (again.folded, again.kinds, again.total) == (view.folded, view.kinds, view.total)


def test_the_dispatch_order_moves_only_what_changed() -> None:
    tasks = _tasks(_MANY)
    states = _states(tasks)
    order = QueueOrder()
    assert list(order.tasks(tasks, states)) == [t.id for t in ordered(list(tasks.values()), states)]
    assert order.placed == _MANY

    states["t00000"] = states["t00000"].model_copy(update={"status": TaskStatus.DONE})
    states["t00009"] = states["t00009"].model_copy(update={"created_at": utcnow() - timedelta(1)})
    order.changed({"t00000", "t00009"})
    first = list(order.tasks(tasks, states))
    assert order.placed == _MANY + 1  # t00009 placed again; t00000 ended: out of the order
    assert first[:2] == ["t00009", "t00001"] and "t00000" not in first
    expected = [t.id for t in ordered(list(tasks.values()), states) if t.id != "t00000"]
    assert first == expected


async def test_a_dispatch_pass_looks_at_the_tasks_it_can_start_not_every_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked = Counter[str]()
    wait_reason = dispatching.wait_reason

    def counting(depends_on: Any, state: TaskState, states: Any, now: Any) -> str | None:
        looked[state.task_id] += 1
        return wait_reason(depends_on, state, states, now)

    passes = [0]
    dispatch = dispatching.Dispatcher.dispatch

    async def counted(self: dispatching.Dispatcher, states: Any) -> None:
        passes[0] += 1
        await dispatch(self, states)

    monkeypatch.setattr(dispatching, "wait_reason", counting)
    monkeypatch.setattr(dispatching.Dispatcher, "dispatch", counted)
    count = 600
    ids = [f"t{n:04d}" for n in range(count)]
    config = run_config(
        new_repo(tmp_path),
        [{"id": i, "prompt": "p"} for i in ids],
        capacity={"sessions": 2},
    )
    probe = Probe(pause=0.0)
    async with Council(config, workflow=probe) as running:
        # Stopped once 20 tasks have started: the queue behind them never looked at.
        _stop_once_started(running, probe, 20)
        await running.run()
    assert passes[0] > 0
    # Each pass looks at the tasks before its slots are taken: a handful, never 600.
    assert sum(looked.values()) <= passes[0] * 4 + len(probe.calls)
    assert len(looked) < count // 4


async def test_a_stop_reads_no_task_list_to_record_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.scheduler.session import finish as scheduling  # where the end looks it up
    from orchestrator.state import FileStateStore

    finishing = [False]
    read_then: list[str] = []
    finish = scheduling.finish
    list_tasks = FileStateStore.list_tasks

    async def watched_finish(*args: Any, **kwargs: Any) -> None:
        finishing[0] = True
        try:
            await finish(*args, **kwargs)
        finally:
            finishing[0] = False

    async def counted_list(self: FileStateStore, *args: Any, **kwargs: Any) -> Any:
        if finishing[0]:
            read_then.append("list_tasks")
        return await list_tasks(self, *args, **kwargs)

    monkeypatch.setattr(scheduling, "finish", watched_finish)
    monkeypatch.setattr(FileStateStore, "list_tasks", counted_list)
    ids = [f"t{n:03d}" for n in range(40)]
    config = run_config(new_repo(tmp_path), [{"id": i, "prompt": "p"} for i in ids])
    probe = Probe(pause=0.0)
    async with Council(config, workflow=probe) as running:
        _stop_once_started(running, probe, 3)
        stopped = await running.run()
    assert stopped.status == "interrupted"
    assert read_then == []  # the checkpoint reads the records; nothing else does

    async with Council(config, workflow=probe) as again:
        finished = await again.resume(stopped.session_id)
    assert finished.status == "completed"
    assert read_then == ["list_tasks"]  # a run that ends by itself decides on one read


async def test_a_stop_reads_each_record_once_for_its_checkpoint_and_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From the stop's end record to the report the run returns, every task record and the
    # session's are loaded once each at most: the report is built from what the checkpoint
    # read (``session_report.stopped_report``), and says what ``status`` reads afterwards.
    from orchestrator.scheduler.session import finish as scheduling  # where the end looks it up
    from orchestrator.state.file.record_files.records import RecordKind

    ending = [False]
    loads: Counter[tuple[str, str]] = Counter()
    finish, load = scheduling.finish, RecordKind.load

    async def watched_finish(*args: Any, **kwargs: Any) -> None:
        ending[0] = True
        await finish(*args, **kwargs)

    def counted_load(self: RecordKind[Any], key: str, **kwargs: Any) -> Any:
        if ending[0]:
            loads[(self.name, key)] += 1
        return load(self, key, **kwargs)

    monkeypatch.setattr(scheduling, "finish", watched_finish)
    monkeypatch.setattr(RecordKind, "load", counted_load)
    ids = [f"t{n:03d}" for n in range(40)]
    config = run_config(new_repo(tmp_path), [{"id": i, "prompt": "p"} for i in ids])
    probe = Probe(pause=0.0)
    async with Council(config, workflow=probe) as running:
        _stop_once_started(running, probe, 3)
        stopped = await running.run()
        ending[0] = False
        looked = await running.status()
    assert stopped.status == "interrupted"
    tasks = {key: n for (kind, key), n in loads.items() if kind == "tasks"}
    assert sorted(tasks) == ids and set(tasks.values()) == {1}  # the checkpoint's read alone
    sessions = [n for (kind, _), n in loads.items() if kind == "sessions"]
    assert sessions == [2]  # the end's update, the checkpoint's; none for the report
    assert [t.model_dump() for t in stopped.tasks] == [t.model_dump() for t in looked.tasks]
    assert stopped.totals == looked.totals and stopped.session_id == looked.session_id


async def _forty_landed(tmp_path: Path) -> list[str]:
    """A run of 40 tasks at 4 at once, every one landed: their ids."""
    ids = [f"t{n:03d}" for n in range(40)]
    config = run_config(
        new_repo(tmp_path), [{"id": i, "prompt": "p"} for i in ids], capacity={"sessions": 4}
    )
    async with Council(config, workflow=Probe(pause=0.0)) as running:
        report = await running.run()
    assert {t.task_id: t.status for t in report.tasks} == dict.fromkeys(ids, TaskStatus.DONE)
    return ids


async def test_the_look_after_each_landing_looks_again_only_at_the_records_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After every landing the relander asks which tasks the queue landed. It keeps the
    answer from one tick to the next and looks again only at the records a tick read again
    (``Relander.changed``), not at every task per landing, which made a run's cost grow with
    the square of its tasks; its answer is still what a look at every task finds."""
    from orchestrator.scheduler.attempts import relander as relanding

    looked = [0]  # task states looked at
    asked = [0]
    scan, landed_in = relanding.Relander._scan, relanding.Relander._landed_in

    def counted_scan(self: relanding.Relander, states: Any) -> dict[str, str]:
        looked[0] += len(states)
        return scan(self, states)

    def checked(self: relanding.Relander, states: Any) -> dict[str, str]:
        asked[0] += 1
        found = landed_in(self, states)
        done = {t: s.merged_commit for t, s in states.items() if s.status == TaskStatus.DONE}
        assert found == done  # what a look at every task finds
        return found

    monkeypatch.setattr(relanding.Relander, "_scan", counted_scan)
    monkeypatch.setattr(relanding.Relander, "_landed_in", checked)
    ids = await _forty_landed(tmp_path)
    assert asked[0] > len(ids)  # every landing asked, and the run's end
    # A look at every task per landing would be asked * 40; the records read again are the
    # few each tick saw change, and the run's first and last looks.
    assert looked[0] < asked[0] * len(ids) // 4


async def test_the_look_after_a_landing_hands_on_only_the_landings_not_looked_at_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a landing made on a tip whose chain holds the one the last look found every
    landing on (``Lending.still_on``), the relander asks about the landings not looked at
    since, not every landing of the run again: what each landing hands on stays flat, where
    it grew with the landed count, and so with the square of the run."""
    from orchestrator.merge.lending import Lending

    handed: list[int] = []  # landings handed to each look after a landing
    vanished = Lending.vanished

    async def counted(self: Lending, landed: Any, *, at: str | None = None) -> Any:
        if at is not None:
            handed.append(len(landed))
        return await vanished(self, landed, at=at)

    monkeypatch.setattr(Lending, "vanished", counted)
    from orchestrator.scheduler.attempts.relander import Relander

    landings = [0]
    after_landing = Relander.after_landing

    async def counted_landing(self: Relander, merged: Any) -> None:
        landings[0] += 1
        await after_landing(self, merged)

    monkeypatch.setattr(Relander, "after_landing", counted_landing)
    ids = await _forty_landed(tmp_path)
    # Every landing but the first few has earlier ones to ask about: a look at each would
    # hand on about 40 * 39 / 2 = 780 in all; the few each tick saw land, far fewer.
    assert landings[0] == len(ids)
    assert sum(handed) < 4 * len(ids)
