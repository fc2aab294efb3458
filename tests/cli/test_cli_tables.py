"""Tables never cut ids: ``status``, ``checkpoint list``, ``worktrees list`` and ``adapters
check`` after a real run, in a terminal 40, 60, 80 and 160 columns wide and piped. Key columns
(task, session, checkpoint and commit ids, branches, paths, a task's status) are whole in every
layout; on a narrow terminal lesser columns give way and a dim line names them; ``--wide``
shows everything; piped output is the plain layout, one line per row."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.table_layout import Column, choose_columns, plain_lines
from tests.support.cli_process_helpers import council
from tests.support.scheduler_helpers import new_repo
from tests.support.terminal import Shown, in_terminal, piped

CONFIG = """\
repo: repo
adapters:
  alice: {type: scripted, options: {delay: 0}}
default_adapter: alice
capacity: {sessions: 3}
workflow: {phases: [{name: build}]}
retry: {max_retries: 0, backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: add-word-count, prompt: "WRITE words.txt x"}
  - {id: document-the-usage, prompt: "WRITE usage.txt y"}
  - {id: refused-login, prompt: "AUTH_ERROR"}
"""
BOX = set("│┃━┏┓┗┛╇┡┩")


@dataclass(frozen=True)
class Finished:
    root: Path
    config: Path
    report: dict[str, Any]
    checkpoint: str


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """A run that landed two tasks and failed one, and a checkpoint of it."""
    root = tmp_path_factory.mktemp("tables")
    new_repo(root)
    config = root / "run.yaml"
    config.write_text(CONFIG)
    done = council("run", config, "--json", cwd=root, timeout=120)
    assert done.returncode == 1, done.stderr  # refused-login failed
    made = council("checkpoint", "create", config, "--json", cwd=root)
    assert made.returncode == 0, made.stderr
    return Finished(root, config, json.loads(done.stdout), json.loads(made.stdout)["checkpoint_id"])


def ids_of(run: Finished) -> list[str]:
    """What the summary must never cut: task ids, branches, short commits, the session id."""
    found = [run.report["session_id"]]
    for task in run.report["tasks"]:
        found += [task["task_id"], task["branch"]]
        if task["merged_commit"]:
            found.append(task["merged_commit"][:10])
    return found


def assert_whole(shown: Shown, ids: list[str], columns: int | None) -> None:
    assert "…" not in shown.text
    for each in ids:
        assert each in shown.text, f"{each!r} is cut or missing:\n{shown.text}"
    if columns is not None and BOX & set(shown.text):
        # A boxed table fits the terminal. (Where even the key columns do not, the plain
        # layout is used and its lines are as long as the ids make them.)
        too_long = [line for line in shown.lines if len(line) > columns]
        assert not too_long, too_long


def header_of(shown: Shown, first: str) -> list[str]:
    line = next(line for line in shown.lines if line.split() and line.split()[0] == first)
    return [cell.strip() for cell in line.replace("┃", "  ").split("  ") if cell.strip()]


def footnote(shown: Shown) -> list[str]:
    notes = [line for line in shown.lines if line.startswith("--wide shows: ")]
    return notes[0].removeprefix("--wide shows: ").split(", ") if notes else []


SUMMARY = ["task", "status", "adapter", "attempts", "branch", "merged", "time", "error"]


def test_status_at_80_columns_keeps_every_id_and_names_what_it_dropped(finished: Finished) -> None:
    shown = in_terminal("status", finished.config, cwd=finished.root, columns=80)
    assert shown.returncode == 0, shown.text
    assert_whole(shown, ids_of(finished), 80)
    headers = header_of(shown, "task")
    dropped = footnote(shown)
    assert dropped and sorted(headers + dropped) == sorted(SUMMARY)
    assert {"task", "status", "branch", "merged"} <= set(headers)


@pytest.mark.parametrize("columns", [40, 60])
def test_status_in_a_narrow_terminal_keeps_every_id_and_each_tasks_status(
    finished: Finished, columns: int
) -> None:
    shown = in_terminal("status", finished.config, cwd=finished.root, columns=columns)
    assert shown.returncode == 0, shown.text
    assert_whole(shown, ids_of(finished), columns)
    assert "status" in header_of(shown, "task")  # never dropped
    for task in finished.report["tasks"]:
        row = next(line for line in shown.lines if line.split()[:1] == [task["task_id"]])
        assert task["status"] in row.replace("│", " ").split(), row


def test_status_at_160_columns_shows_every_column(finished: Finished) -> None:
    shown = in_terminal("status", finished.config, cwd=finished.root, columns=160)
    assert shown.returncode == 0, shown.text
    assert_whole(shown, ids_of(finished), 160)
    assert header_of(shown, "task") == SUMMARY and footnote(shown) == []
    # The error is lesser: it may fold onto a second line, never lose a word.
    words = " ".join(line.split("│")[-1].strip() for line in shown.lines if "│" in line)
    assert "Failed to authenticate. API Error: 401 invalid API key (scripted)" in words


def test_status_wide_shows_whole_commits_however_narrow(finished: Finished) -> None:
    shown = in_terminal("status", finished.config, "--wide", cwd=finished.root, columns=80)
    assert shown.returncode == 0, shown.text
    commits = [t["merged_commit"] for t in finished.report["tasks"] if t["merged_commit"]]
    assert_whole(shown, ids_of(finished) + commits, None)
    assert header_of(shown, "task") == SUMMARY and footnote(shown) == []


def test_status_piped_is_the_plain_layout_with_nothing_cut(finished: Finished) -> None:
    shown = piped("status", finished.config, cwd=finished.root)
    assert shown.returncode == 0, shown.stderr
    assert_whole(shown, ids_of(finished), None)
    assert not BOX & set(shown.text)
    assert shown.lines[0].startswith(f"session {finished.report['session_id']}: failed")
    assert shown.lines[1].split() == SUMMARY
    failed = next(line for line in shown.lines if line.startswith("refused-login "))
    assert failed.endswith("Failed to authenticate. API Error: 401 invalid API key (scripted)")
    # The table, then what its CLI calls cost.
    assert len(shown.lines) == 2 + len(finished.report["tasks"]) + 1
    assert shown.lines[-1].startswith("spent $")


@pytest.mark.parametrize("columns", [80, 160, None])
def test_checkpoint_list_never_cuts_the_id_restore_needs(
    finished: Finished, columns: int | None
) -> None:
    args = ("checkpoint", "list", finished.config)
    if columns is None:
        shown = piped(*args, cwd=finished.root)
        assert header_of(shown, "checkpoint") == [
            "checkpoint", "session", "created", "reason", "tasks"
        ]  # fmt: skip
    else:
        shown = in_terminal(*args, cwd=finished.root, columns=columns)
    assert shown.returncode == 0, shown.text
    assert_whole(shown, [finished.checkpoint, finished.report["session_id"]], columns)
    row = next(line for line in shown.lines if line.lstrip().startswith("ck-"))
    assert row.split()[0] == finished.checkpoint  # what `checkpoint restore` takes, as it is


@pytest.mark.parametrize("columns", [80, 160, None])
def test_worktrees_list_keeps_paths_sessions_and_branches_whole(
    finished: Finished, columns: int | None
) -> None:
    listed = council("worktrees", "list", finished.config, "--json", cwd=finished.root)
    ours = [w for w in json.loads(listed.stdout) if w["ours"]]
    assert ours, listed.stdout  # the failed task's worktree is kept
    args = ("worktrees", "list", finished.config)
    if columns is None:
        shown = piped(*args, cwd=finished.root)
    else:
        shown = in_terminal(*args, cwd=finished.root, columns=columns)
    assert shown.returncode == 0, shown.text
    repo = (finished.root / "repo").resolve()
    keys = []
    for worktree in ours:
        keys += [worktree["session_id"], worktree["branch"], worktree["task_id"]]
        keys.append(str(Path(worktree["path"]).relative_to(repo)))
    assert_whole(shown, keys, columns)


@pytest.mark.parametrize("columns", [80, 160, None])
def test_adapters_check_keeps_adapter_names_whole(finished: Finished, columns: int | None) -> None:
    as_json = council("adapters", "check", "--json", cwd=finished.root)
    names = [report["name"] for report in json.loads(as_json.stdout)]
    if columns is None:
        shown = piped("adapters", "check", cwd=finished.root)
    else:
        shown = in_terminal("adapters", "check", cwd=finished.root, columns=columns)
    assert shown.returncode == as_json.returncode
    firsts = {line.replace("│", " ").split()[0] for line in shown.lines if line.split()}
    assert set(names) <= firsts, shown.text
    assert_whole(shown, names, columns)


# -- the layout itself --------------------------------------------------------------------


def test_lesser_columns_go_blank_first_then_by_drop_then_rightmost() -> None:
    columns = [
        Column("id", key=True),
        Column("a"),
        Column("b", drop=1),
        Column("c"),
        Column("empty"),
    ]
    rows = [["x" * 20, "a" * 10, "b" * 10, "c" * 10, ""]]
    roomy = choose_columns(columns, rows, 200, len)
    assert roomy.kept == (0, 1, 2, 3, 4) and roomy.dropped == ()
    # 23 + 13 * 3 - 1 = 61 for id, a, b, c; the blank column goes first, unmentioned.
    assert choose_columns(columns, rows, 61, len).dropped == ()
    assert choose_columns(columns, rows, 60, len).dropped == ("b",)
    assert choose_columns(columns, rows, 40, len).dropped == ("b", "c")
    keys_only = choose_columns(columns, rows, 22, len)
    assert keys_only.kept == (0,) and keys_only.dropped == ("a", "b", "c")
    too_narrow = choose_columns(columns, rows, 21, len)
    assert too_narrow.plain and too_narrow.kept == (0, 1, 2, 3, 4)
    wide = choose_columns(columns, rows, 10, len, wide=True)
    assert not wide.plain and wide.kept == (0, 1, 2, 3, 4)


def test_a_wrapping_column_folds_before_it_is_dropped() -> None:
    columns = [Column("id", key=True), Column("error", wraps=True)]
    rows = [["x" * 10, "word " * 20]]
    assert choose_columns(columns, rows, 31, len).kept == (0, 1)  # 13 + 19 - 1: folded to 16
    assert choose_columns(columns, rows, 30, len).dropped == ("error",)


def test_plain_lines_align_and_keep_each_row_on_one_line() -> None:
    lines = plain_lines(["task", "error"], [["a", "two\nlines"], ["longer-id", ""]], len)
    assert lines == ["task       error", "a          two lines", "longer-id"]


def terminal_console(width: int) -> Any:
    import io

    from rich.console import Console

    return Console(
        file=io.StringIO(), width=width, force_terminal=True, highlight=False, soft_wrap=True
    )


def test_a_folding_column_gets_what_the_fixed_ones_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.cli import console

    screen = terminal_console(60)
    monkeypatch.setattr(console, "stdout", screen)
    columns = [console.Column("task", key=True), console.Column("error", wraps=True)]
    console.print_table(columns, [["t1", "word " * 30], ["t2", "short"]])
    lines = re.sub(r"\x1b\[[0-9;]*m", "", screen.file.getvalue()).splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[0].split()[0] == "task" and any("t1" in line for line in lines)
    assert sum("word" in line for line in lines) > 1  # folded onto more lines, not cut


def test_past_a_screenful_of_rows_a_terminal_gets_the_plain_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestrator.cli import console

    screen = terminal_console(120)
    monkeypatch.setattr(console, "stdout", screen)
    columns = [console.Column("task", key=True), console.Column("status")]
    rows = [[f"t{n}", "done"] for n in range(console.BOXED_ROWS + 1)]
    console.print_table(columns, rows)
    lines = screen.file.getvalue().splitlines()
    assert not BOX & set("".join(lines))
    assert len(lines) == len(rows) + 1 and lines[-1].split() == [f"t{console.BOXED_ROWS}", "done"]
    screen = terminal_console(120)
    monkeypatch.setattr(console, "stdout", screen)
    console.print_table(columns, rows[: console.BOXED_ROWS])
    assert BOX & set(screen.file.getvalue())


def test_a_wrapping_column_is_never_narrower_than_its_longest_word() -> None:
    columns = [Column("id", key=True), Column("waits for", wraps=True)]
    rows = [["x" * 10, "after a-task-id-twenty-long"], ["y", "textkit/words.py"]]
    layout = choose_columns(columns, rows, 200, len)
    assert layout.narrowest(1) == len("a-task-id-twenty-long")  # not FOLDED (16)
    # 13 + 24 - 1 = 36: it fits folded to its longest word, and goes one cell short of that.
    assert choose_columns(columns, rows, 36, len).kept == (0, 1)
    assert choose_columns(columns, rows, 35, len).dropped == ("waits for",)
