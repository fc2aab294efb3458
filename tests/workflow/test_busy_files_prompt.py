"""The prompt section naming the files other sessions own or are changing: only when there
are any, each path once in path order with its tasks, capped, and in every phase's prompt."""

from __future__ import annotations

from orchestrator.config.task import TaskConfig
from orchestrator.state.context import BusyFile
from orchestrator.workflow.handoffs.busy_files import (
    BUSY_FILES_LIMIT,
    HEADING,
    LEAD,
    PATH_LIMIT,
    render_busy_files,
)
from orchestrator.workflow.handoffs.prompts import PromptContext, render_prompt
from orchestrator.workflow.handoffs.templates import DEFAULT_TEMPLATES


def test_nothing_when_nobody_else_is_on_a_file() -> None:
    assert render_busy_files([]) == ""
    task = TaskConfig(id="t1", prompt="Do it.")
    prompt = render_prompt("Task {task}.", PromptContext(task, "build"))
    assert prompt == "Task Do it..\n" and HEADING not in prompt


def test_each_path_once_in_path_order_with_its_tasks() -> None:
    busy = [
        BusyFile("src/z.py", "s2", "add-z"),
        BusyFile("a.py", "s1", "add-x"),
        BusyFile("src/z.py", "s1", "add-x"),
        BusyFile("a.py", "s3", "add-x"),  # a council task's two owners: one task named once
        BusyFile("b.py", "s4", None),
    ]
    assert render_busy_files(busy) == (
        f"{HEADING}\n{LEAD}\n"
        "- a.py (task add-x)\n"
        "- b.py (session s4)\n"
        "- src/z.py (task add-x, task add-z)\n"
    )


def test_the_list_is_capped_and_says_how_many_more() -> None:
    busy = [BusyFile(f"f{n:03}.py", f"s{n}", f"t{n}") for n in range(BUSY_FILES_LIMIT + 7)]
    text = render_busy_files(list(reversed(busy)))
    lines = text.splitlines()
    assert lines[2] == "- f000.py (task t0)"  # path order, whatever order they came in
    assert lines[-2] == f"- f{BUSY_FILES_LIMIT - 1:03}.py (task t{BUSY_FILES_LIMIT - 1})"
    assert lines[-1] == "- ... and 7 more"
    assert len(lines) == 2 + BUSY_FILES_LIMIT + 1
    assert render_busy_files(busy, limit=2).splitlines()[-1] == f"- ... and {len(busy) - 2} more"
    exactly = render_busy_files(busy[:BUSY_FILES_LIMIT])
    assert "more" not in exactly


def test_a_long_path_is_clipped() -> None:
    long = "d/" * 300 + "f.py"
    (line,) = render_busy_files([BusyFile(long, "s1", "t1")]).splitlines()[2:]
    assert line == f"- {long[: PATH_LIMIT - 3]}... (task t1)"


def test_every_default_template_gets_the_section_and_a_custom_one_may_place_it() -> None:
    task = TaskConfig(id="t1", prompt="Do it.")
    busy = [BusyFile("a.py", "s1", "add-x")]
    for phase, template in DEFAULT_TEMPLATES.items():
        prompt = render_prompt(template, PromptContext(task, phase, busy=busy))
        assert f"{LEAD}\n- a.py (task add-x)" in prompt, phase
    placed = render_prompt("{busy_files}\nThen: {task}", PromptContext(task, "build", busy=busy))
    assert placed.startswith(HEADING) and placed.rstrip().endswith("Then: Do it.")
    assert placed.count(HEADING) == 1
