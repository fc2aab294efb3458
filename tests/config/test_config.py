"""The run config loader: valid files load with their defaults, and every kind of bad file is
refused with one ``file:line: field: message`` issue per problem."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from orchestrator.config.durations import (
    DURATION_PATTERN,
    Duration,
    format_duration,
    parse_duration,
)
from orchestrator.config.load import RunConfig, load_config, parse_config, run_config_json_schema
from orchestrator.config.yaml_source import MAX_CONFIG_BYTES
from orchestrator.errors import ConfigError
from orchestrator.ids import ID_PATTERN, derived_id, is_safe_id
from orchestrator.models import DEFAULT_PHASES

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "tasks:\n  - id: a\n    prompt: do a\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each test from tmp_path so files can be named as a user would: ``run.yaml``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(text: str, name: str = "run.yaml") -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def issues(text: str) -> list[str]:
    """The issue lines of loading ``text`` from ``run.yaml`` (which must fail)."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(text))
    lines = str(caught.value).splitlines()
    assert lines == [str(issue) for issue in caught.value.issues]
    return lines


def single_issue(text: str) -> str:
    lines = issues(text)
    assert len(lines) == 1, lines
    return lines[0]


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("90", 90.0),
        (" 2h ", 7200.0),
        (90, 90.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration_accepts(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5s", "negative"),
        ("-3", "negative"),
        (-1, "negative"),
        ("abc", "is not a duration"),
        ("", "is not a duration"),
        ("5 minutes", "is not a duration"),
        ("1h-30m", "is not a duration"),
        ("1e3", "is not a duration"),
        (True, "got true"),
        (None, "got null"),
        ([1], "got a list"),
        (math.inf, "not a finite number"),
        (math.nan, "not a finite number"),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


_amounts = st.integers(min_value=0, max_value=10_000)


@given(
    st.lists(
        st.tuples(_amounts, st.sampled_from(["d", "h", "m", "s", "ms"])), min_size=1, max_size=5
    )
)
def test_composed_durations_add_up(parts: list[tuple[int, str]]) -> None:
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    text = "".join(f"{amount}{name}" for amount, name in parts)
    expected = sum(amount * unit[name] for amount, name in parts)
    assert math.isclose(parse_duration(text), expected, rel_tol=1e-12, abs_tol=1e-12)
    assert re.fullmatch(DURATION_PATTERN, text)


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_format_duration_round_trips(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert re.fullmatch(DURATION_PATTERN, text)


def test_format_duration_is_readable() -> None:
    assert [format_duration(s) for s in (0, 0.5, 1.5, 90, 5400, 7200, 86400)] == [
        "0s",
        "500ms",
        "1.5s",
        "1m30s",
        "1h30m",
        "2h",
        "24h",
    ]


def test_duration_field_in_a_model() -> None:
    class Limits(BaseModel):
        timeout: Duration

    assert Limits(timeout="1h30m").timeout == 5400.0
    assert Limits(timeout=3).timeout == 3.0
    with pytest.raises(ValidationError, match="is not a duration"):
        Limits(timeout="soon")


# --- valid files -------------------------------------------------------------------------------


def test_demo_config_validates() -> None:
    config = load_config(ROOT / "configs" / "demo.yaml")
    assert config.repo == (ROOT / ".council-demo" / "repo").resolve()
    assert config.sample_repo is True
    assert config.capacity.sessions == 3
    assert set(config.adapters) == {"alice", "bob", "carol"}
    assert {adapter.type for adapter in config.adapters.values()} == {"scripted"}
    assert [phase.name for phase in config.workflow.phases] == list(DEFAULT_PHASES)
    assert len(config.tasks) >= 6
    assert any(task.depends_on for task in config.tasks)
    files = [path for task in config.tasks for path in task.files]
    assert len(files) > len(set(files)), "two tasks should declare the same file"
    assert config.verify and all(isinstance(argv, list) for argv in config.verify)


def test_minimal_config_gets_defaults(workdir: Path) -> None:
    config = load_config(write(MINIMAL))
    assert config.repo == workdir.resolve()
    assert config.base_branch == "main"
    assert config.sample_repo is False
    assert config.capacity.sessions == 4
    assert [phase.name for phase in config.workflow.phases] == list(DEFAULT_PHASES)
    assert config.workflow.max_review_rounds == 2
    assert config.retry.max_retries == 3
    assert config.retry.backoff_initial == 5.0
    assert config.retry.backoff_max == 600.0
    assert config.scheduler.heartbeat_interval == 60.0
    assert config.scheduler.stale_threshold == 300.0
    assert config.state.backend == "file"
    assert config.state_dir == workdir.resolve() / ".council" / "state"
    assert config.verify == []
    task = config.tasks[0]
    assert (task.id, task.prompt, task.priority, task.depends_on) == ("a", "do a", 0, [])


def test_paths_resolve_against_the_config_directory(workdir: Path) -> None:
    (workdir / "configs").mkdir()
    path = write("repo: ../project\nstate: {path: state-here}\n" + MINIMAL, name="configs/run.yaml")
    config = load_config(path)
    assert config.repo == (workdir / "project").resolve()
    assert config.state_dir == (workdir / "configs" / "state-here").resolve()


def test_full_config_values(workdir: Path) -> None:
    config = load_config(
        write(
            """
capacity: {sessions: 2, per_adapter: {claude: 1}, per_phase: {build: 1}}
adapters:
  claude:
    executable: /usr/local/bin/claude
    model: sonnet
    env: {CLAUDE_FLAG: "1"}
    fallback: [codex]
    options: {max_turns: 5}
  codex: {type: codex-cli}
default_adapter: claude
workflow:
  phases:
    - {name: plan, adapter: codex, timeout: 1h30m, idle_timeout: 90s}
    - {name: build}
retry: {backoff_initial: 500ms, backoff_max: 2m, multiplier: 1.5, jitter: false}
scheduler: {heartbeat_interval: 10s, stale_threshold: 1m, tick: 250ms}
verify:
  - pytest -q 'tests/a b.py'
  - [ruff, check, .]
state: {backend: postgresql, dsn: "postgresql://council@db/council"}
tasks:
  - id: t1
    prompt: one
    priority: 5
    files: [./src//a.py, docs/]
    verify: make check
    timeout: 15m
    phases: [build]
    metadata: {ticket: 12}
  - id: t2
    prompt: two
    depends_on: [t1]
    adapters: [codex, claude]
"""
        )
    )
    assert config.adapters["claude"].type == "claude"
    assert config.adapters["codex"].type == "codex-cli"
    assert config.adapters["claude"].options == {"max_turns": 5}
    assert config.workflow.phases[0].timeout == 5400.0
    assert config.workflow.phases[0].idle_timeout == 90.0
    assert config.retry.backoff_initial == 0.5
    assert config.scheduler.tick == 0.25
    assert config.verify == [["pytest", "-q", "tests/a b.py"], ["ruff", "check", "."]]
    t1, t2 = config.tasks
    assert t1.files == ["src/a.py", "docs"]
    assert config.verify_for(t1) == [["make", "check"]]
    assert config.verify_for(t2) == config.verify
    assert [phase.name for phase in config.phases_for(t1)] == ["build"]
    assert t1.timeout == 900.0
    assert config.state.dsn == "postgresql://council@db/council"


def test_adapter_chain_prefers_the_most_specific_setting(workdir: Path) -> None:
    config = load_config(
        write(
            """
adapters:
  a: {fallback: [c]}
  b: {}
  c: {}
default_adapter: a
workflow:
  phases: [{name: plan, adapter: b}, {name: build}]
tasks:
  - {id: own, prompt: x, adapters: [c, b]}
  - {id: inherits, prompt: y}
"""
        )
    )
    own, inherits = config.tasks
    plan, build = config.workflow.phases
    assert config.adapter_chain(own, plan) == ["c", "b"]
    assert config.adapter_chain(inherits, plan) == ["b"]
    assert config.adapter_chain(inherits, build) == ["a", "c"]


def test_single_adapter_is_the_default(workdir: Path) -> None:
    config = load_config(write("adapters: {solo: {}}\n" + MINIMAL))
    assert config.adapter_chain(config.tasks[0], config.workflow.phases[0]) == ["solo"]


def test_no_adapters_leaves_the_choice_to_the_run(workdir: Path) -> None:
    config = load_config(write(MINIMAL))
    assert config.adapter_chain(config.tasks[0], config.workflow.phases[0]) == []


def test_parse_config_from_text(tmp_path: Path) -> None:
    config = parse_config(MINIMAL, source="inline", base_dir=tmp_path)
    assert config.repo == tmp_path.resolve()
    with pytest.raises(ConfigError, match=r"^inline:3: tasks\[0\]\.prompt: must be a string"):
        parse_config("tasks:\n  - id: a\n    prompt: [x]\n", source="inline")


def test_run_config_built_in_python_is_checked_too() -> None:
    config = RunConfig.model_validate({"tasks": [{"id": "a", "prompt": "x"}]})
    assert config.tasks[0].id == "a"
    with pytest.raises(ValidationError, match=r"tasks\[0\]\.depends_on\[0\]: dependency cycle"):
        RunConfig.model_validate({"tasks": [{"id": "a", "prompt": "x", "depends_on": ["a"]}]})


def test_json_schema_describes_the_file() -> None:
    schema = run_config_json_schema()
    assert schema["required"] == ["tasks"]
    assert schema["additionalProperties"] is False
    assert "tasks" in schema["properties"]
    task = schema["$defs"]["TaskConfig"]
    assert task["additionalProperties"] is False
    assert set(task["required"]) == {"id", "prompt"}
    timeout = task["properties"]["timeout"]["anyOf"][0]["anyOf"]
    assert {"type": "string", "pattern": DURATION_PATTERN} in timeout


# --- refusals: the file itself -----------------------------------------------------------------


def test_missing_file(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("nope.yaml")
    assert str(caught.value) == "nope.yaml: config file not found"
    assert caught.value.issues[0].line is None


def test_directory_is_not_a_config(workdir: Path) -> None:
    (workdir / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"^dir\.yaml: cannot read config: a directory$"):
        load_config("dir.yaml")


def test_oversized_file_is_refused_unparsed(workdir: Path) -> None:
    # Invalid YAML past the limit proves the parser never ran.
    write(MINIMAL + "#" * MAX_CONFIG_BYTES + "\n: : [\n")
    with pytest.raises(ConfigError) as caught:
        load_config("run.yaml")
    assert str(caught.value) == (
        "run.yaml: config file is larger than 1048576 bytes (1 MiB); refused"
    )


def test_file_of_exactly_the_limit_is_read(workdir: Path) -> None:
    text = MINIMAL + "#" * (MAX_CONFIG_BYTES - len(MINIMAL) - 1) + "\n"
    assert len(text.encode()) == MAX_CONFIG_BYTES
    assert load_config(write(text)).tasks[0].id == "a"


def test_non_utf8_bytes(workdir: Path) -> None:
    Path("run.yaml").write_bytes(b"tasks:\n  - id: a\n    prompt: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config("run.yaml")
    assert str(caught.value) == "run.yaml:3: not valid UTF-8: byte 0xe9 at column 16"


def test_utf8_with_bom_is_fine(workdir: Path) -> None:
    Path("run.yaml").write_bytes("\ufeff".encode() + MINIMAL.encode())
    assert load_config("run.yaml").tasks[0].id == "a"


def test_control_character(workdir: Path) -> None:
    assert single_issue("tasks:\n  - id: a\n    prompt: \x01\n") == (
        "run.yaml:3: invalid YAML: character #x0001 is not allowed"
    )


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file(workdir: Path, text: str) -> None:
    assert single_issue(text) == "run.yaml: config file is empty"


@pytest.mark.parametrize(
    ("text", "what"),
    [("- a\n- b\n", "a list"), ("just words\n", "the scalar 'just words'")],
)
def test_top_level_must_be_a_mapping(workdir: Path, text: str, what: str) -> None:
    expected = f"run.yaml:1: the top level must be a mapping of settings, not {what}"
    assert single_issue(text) == expected


def test_yaml_syntax_error(workdir: Path) -> None:
    line = single_issue("tasks:\n  - id: a\n    prompt: x\n   bad: [\n")
    assert line.startswith("run.yaml:4: invalid YAML: ")
    assert "(column 4)" in line


def test_unclosed_flow_sequence(workdir: Path) -> None:
    line = single_issue("base_branch: main\ntasks: [\n  {id: a, prompt: x}\n")
    assert re.match(r"run\.yaml:4: invalid YAML: .*expected ',' or ']'", line)


def test_two_documents(workdir: Path) -> None:
    assert single_issue(MINIMAL + "---\ntasks: []\n").startswith(
        "run.yaml:4: invalid YAML: expected a single document in the stream"
    )


def test_python_tags_are_refused(workdir: Path) -> None:
    line = single_issue("tasks: !!python/object/apply:os.system [echo hi]\n")
    assert line.startswith("run.yaml:1: invalid YAML: could not determine a constructor")


def test_duplicate_yaml_keys(workdir: Path) -> None:
    assert issues(
        "base_branch: main\ntasks:\n  - id: a\n    prompt: x\n    id: b\nbase_branch: dev\n"
    ) == [
        "run.yaml:5: tasks[0].id: duplicate key (first defined at line 3)",
        "run.yaml:6: base_branch: duplicate key (first defined at line 1)",
    ]


def test_merge_keys_are_not_duplicates(workdir: Path) -> None:
    config = load_config(
        write("tasks:\n  - &base {id: a, prompt: shared, priority: 3}\n  - <<: *base\n    id: b\n")
    )
    assert [(t.id, t.prompt, t.priority) for t in config.tasks] == [
        ("a", "shared", 3),
        ("b", "shared", 3),
    ]


def _billion_laughs() -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    lines.append("tasks: *i")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused(workdir: Path) -> None:
    # a=10 nodes, b=91, c=820, d=7381, e=66430: the aliases on line 5 pass 10,000.
    assert single_issue(_billion_laughs()) == (
        "run.yaml:5: aliases expand to more than 10000 nodes; refusing to load "
        "(write the values out instead of nesting aliases)"
    )


def test_recursive_alias_is_refused(workdir: Path) -> None:
    assert single_issue("loop: &x [1, *x]\n" + MINIMAL) == (
        "run.yaml:1: alias *x refers to a collection that contains it"
    )


def test_deep_nesting_is_refused(workdir: Path) -> None:
    assert single_issue("tasks: " + "[" * 500 + "]" * 500 + "\n") == (
        "run.yaml:1: collections nest deeper than 64 levels"
    )


def test_aliases_cannot_build_deep_nesting(workdir: Path) -> None:
    # No collection in the text nests past 40 levels, but the alias puts one inside another.
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n" + MINIMAL
    assert single_issue(text) == "run.yaml:2: alias *a nests collections deeper than 64 levels"


# --- refusals: the schema ----------------------------------------------------------------------


def test_unknown_key_at_top_level(workdir: Path) -> None:
    assert single_issue("base_brnach: dev\n" + MINIMAL) == (
        "run.yaml:1: base_brnach: unknown key (did you mean 'base_branch'? allowed: repo, "
        "base_branch, sample_repo, capacity, adapters, default_adapter, workflow, retry, "
        "rate_limits, budgets, prices, landing, scheduler, verify, state, worktrees, sandbox, "
        "radar, secrets, services, mcp_servers, council_mcp, forge, sources, tasks)"
    )


def test_unknown_key_nested(workdir: Path) -> None:
    assert issues("tasks:\n  - id: a\n    prompt: x\n  - id: b\n    promt: y\n") == [
        "run.yaml:4: tasks[1].prompt: required field is missing",
        "run.yaml:5: tasks[1].promt: unknown key (did you mean 'prompt'? allowed: id, prompt, "
        "priority, depends_on, files, adapters, verify, timeout, phases, metadata, landing, "
        "council)",
    ]


def test_unknown_key_deeper(workdir: Path) -> None:
    assert single_issue("adapters:\n  alice:\n    exe: x\n" + MINIMAL).startswith(
        "run.yaml:3: adapters.alice.exe: unknown key (allowed: type, executable,"
    )


def test_missing_tasks(workdir: Path) -> None:
    assert single_issue("base_branch: main\n") == ("run.yaml:1: tasks: required field is missing")


def test_no_tasks(workdir: Path) -> None:
    assert single_issue("tasks: []\n") == (
        "run.yaml:1: tasks: at least one task is required (or a `sources:` that brings them)"
    )


def test_bad_task_id(workdir: Path) -> None:
    assert single_issue("tasks:\n  - id: ../etc\n    prompt: x\n") == (
        "run.yaml:2: tasks[0].id: id '../etc' is not a safe id: use 1-64 characters of a-z, "
        "0-9, '.', '_', '-', starting with a letter or digit, with no '..' and not ending in "
        "'.' or '.lock' (git's rules for a ref name)"
    )


@pytest.mark.parametrize(
    "bad", ["Upper", "-dash", "a b", "x" * 65, "'.hidden'", "x.lock", "end.", "a..b"]
)
def test_other_bad_task_ids(workdir: Path, bad: str) -> None:
    line = single_issue(f"tasks:\n  - id: {bad}\n    prompt: x\n")
    assert line.startswith("run.yaml:2: tasks[0].id: id ")
    assert "is not a safe id" in line


def test_wrong_types_are_named(workdir: Path) -> None:
    assert issues(
        "capacity:\n  sessions: many\ntasks:\n  - id: 12\n    prompt: [x]\n    priority: 1.5\n"
    ) == [
        "run.yaml:2: capacity.sessions: must be a whole number (got 'many')",
        "run.yaml:4: tasks[0].id: must be a string (got 12)",
        "run.yaml:5: tasks[0].prompt: must be a string (got a list)",
        "run.yaml:6: tasks[0].priority: must be a whole number (got 1.5)",
    ]


def test_ranges(workdir: Path) -> None:
    assert issues("capacity: {sessions: 0, per_phase: {build: 0}}\n" + MINIMAL) == [
        "run.yaml:1: capacity.sessions: must be >= 1 (got 0)",
        "run.yaml:1: capacity.per_phase.build: must be >= 1 (got 0)",
    ]


def test_bad_state_backend(workdir: Path) -> None:
    assert single_issue("state: {backend: sqlite}\n" + MINIMAL) == (
        "run.yaml:1: state.backend: must be one of 'file' or 'postgresql' (got 'sqlite')"
    )


def test_blank_prompt(workdir: Path) -> None:
    assert single_issue("tasks:\n  - id: a\n    prompt: '   '\n") == (
        "run.yaml:3: tasks[0].prompt: must not be empty"
    )


def test_bad_duration(workdir: Path) -> None:
    assert single_issue(
        "workflow:\n  phases:\n    - name: build\n      timeout: 5 minutes\n" + MINIMAL
    ) == (
        "run.yaml:4: workflow.phases[0].timeout: '5 minutes' is not a duration; use seconds "
        "(90, 1.5) or units d/h/m/s/ms such as '90s', '15m', '1h30m', '500ms'"
    )


def test_negative_and_zero_durations(workdir: Path) -> None:
    assert issues("scheduler:\n  tick: -1s\n  heartbeat_interval: 0\n" + MINIMAL) == [
        "run.yaml:2: scheduler.tick: duration '-1s' is negative; durations must be zero or more",
        "run.yaml:3: scheduler.heartbeat_interval: must be > 0 (got 0)",
    ]


def test_file_paths_must_stay_in_the_repository(workdir: Path) -> None:
    assert issues(
        "tasks:\n"
        "  - id: a\n"
        "    prompt: x\n"
        "    files:\n"
        "      - /etc/passwd\n"
        "      - ../outside\n"
        "      - src/../../x\n"
        "      - C:/win\n"
        "      - src\\a.py\n"
        "      - .\n"
    ) == [
        "run.yaml:5: tasks[0].files[0]: '/etc/passwd' is absolute; give a path relative to "
        "the repository root",
        "run.yaml:6: tasks[0].files[1]: '../outside' climbs out with '..'; stay inside the "
        "repository",
        "run.yaml:7: tasks[0].files[2]: 'src/../../x' climbs out with '..'; stay inside the "
        "repository",
        "run.yaml:8: tasks[0].files[3]: 'C:/win' is absolute; give a path relative to the "
        "repository root",
        "run.yaml:9: tasks[0].files[4]: 'src\\\\a.py': use '/' to separate directories",
        "run.yaml:10: tasks[0].files[5]: '.' names the repository root; name a file or directory",
    ]


def test_verify_commands_are_split_without_a_shell(workdir: Path) -> None:
    config = load_config(
        write(
            "verify:\n"
            "  - pytest -q \"tests/my file.py\" -k 'a and b'\n"
            "  - [echo, $HOME, '*']\n"
            "tasks:\n"
            "  - {id: a, prompt: x, verify: make test}\n"
            "  - {id: b, prompt: y, verify: []}\n"
        )
    )
    assert config.verify == [
        ["pytest", "-q", "tests/my file.py", "-k", "a and b"],
        ["echo", "$HOME", "*"],
    ]
    a, b = config.tasks
    assert config.verify_for(a) == [["make", "test"]]
    assert config.verify_for(b) == []


def test_bad_verify_commands(workdir: Path) -> None:
    assert issues(
        "verify:\n  - ''\n  - []\n  - pytest && ruff check\n  - echo 'unclosed\n  - [7]\n" + MINIMAL
    ) == [
        "run.yaml:2: verify[0]: command is empty",
        "run.yaml:3: verify[1]: command is empty",
        "run.yaml:4: verify[2]: shell operator '&&' in 'pytest && ruff check': commands run "
        "without a shell; list each command separately",
        'run.yaml:5: verify[3]: cannot split command "echo \'unclosed": No closing quotation',
        "run.yaml:6: verify[4][0]: must be a string (got 7)",
    ]


def test_bad_env_and_branch(workdir: Path) -> None:
    text = "base_branch: 'feat..x'\nadapters:\n  a:\n    env: {'BAD NAME': x}\n" + MINIMAL
    assert issues(text) == [
        "run.yaml:1: base_branch: 'feat..x' is not a valid git branch name",
        "run.yaml:4: adapters.a.env: 'BAD NAME' is not a valid environment variable name",
    ]


def test_bad_adapter_name(workdir: Path) -> None:
    line = single_issue("adapters:\n  Claude Code: {}\n" + MINIMAL)
    assert line.startswith("run.yaml:2: adapters[\"Claude Code\"]: id 'Claude Code' is not a safe")


def test_duplicate_entries_in_lists(workdir: Path) -> None:
    assert issues("tasks:\n  - id: a\n    prompt: x\n    files: [a.py, ./a.py]\n") == [
        "run.yaml:4: tasks[0].files: 'a.py' is listed twice"
    ]


# --- refusals: references between fields -------------------------------------------------------


def test_duplicate_task_id_reports_the_second(workdir: Path) -> None:
    assert (
        single_issue(
            "tasks:\n  - id: a\n    prompt: x\n  - id: b\n    prompt: y\n  - id: a\n    prompt: z\n"
        )
        == "run.yaml:6: tasks[2].id: duplicate task id 'a' (first used by tasks[0])"
    )


def test_unknown_dependency(workdir: Path) -> None:
    assert (
        single_issue("tasks:\n  - id: a\n    prompt: x\n    depends_on:\n      - a-typo\n")
        == "run.yaml:5: tasks[0].depends_on[0]: unknown task 'a-typo'"
    )


def test_dependency_cycle_is_named(workdir: Path) -> None:
    assert (
        single_issue(
            "tasks:\n"
            "  - {id: a, prompt: x, depends_on: [b]}\n"
            "  - {id: b, prompt: y, depends_on: [c]}\n"
            "  - {id: c, prompt: z, depends_on: [a]}\n"
            "  - {id: d, prompt: w, depends_on: [a]}\n"
        )
        == "run.yaml:4: tasks[2].depends_on[0]: dependency cycle: a -> b -> c -> a"
    )


def test_self_dependency_is_a_cycle(workdir: Path) -> None:
    assert single_issue("tasks:\n  - {id: a, prompt: x, depends_on: [a]}\n") == (
        "run.yaml:2: tasks[0].depends_on[0]: dependency cycle: a -> a"
    )


def test_unknown_adapter_references(workdir: Path) -> None:
    assert issues(
        "capacity:\n"
        "  per_adapter: {ghost: 1}\n"
        "adapters:\n"
        "  alice: {fallback: [bob, alice]}\n"
        "  carol: {}\n"
        "default_adapter: dave\n"
        "workflow:\n"
        "  phases:\n"
        "    - {name: build, adapter: zed}\n"
        "tasks:\n"
        "  - id: a\n"
        "    prompt: x\n"
        "    adapters: [alice, nobody]\n"
    ) == [
        "run.yaml:2: capacity.per_adapter.ghost: unknown adapter 'ghost' (defined: alice, carol)",
        "run.yaml:4: adapters.alice.fallback[0]: unknown adapter 'bob' (defined: alice, carol)",
        "run.yaml:4: adapters.alice.fallback[1]: an adapter cannot fall back to itself",
        "run.yaml:6: default_adapter: unknown adapter 'dave' (defined: alice, carol)",
        "run.yaml:9: workflow.phases[0].adapter: unknown adapter 'zed' (defined: alice, carol)",
        "run.yaml:13: tasks[0].adapters[1]: unknown adapter 'nobody' (defined: alice, carol)",
    ]


def test_adapter_reference_without_any_adapters(workdir: Path) -> None:
    assert single_issue("tasks:\n  - {id: a, prompt: x, adapters: [claude]}\n") == (
        "run.yaml:2: tasks[0].adapters[0]: unknown adapter 'claude': no adapters are defined "
        "under `adapters:`"
    )


def test_every_phase_needs_an_adapter_once_some_are_defined(workdir: Path) -> None:
    assert single_issue(
        "adapters: {a: {}, b: {}}\n"
        "workflow:\n"
        "  phases: [{name: plan, adapter: a}, {name: build}, {name: review}]\n"
        "tasks:\n"
        "  - id: t\n"
        "    prompt: x\n"
    ) == (
        "run.yaml:5: tasks[0].adapters: no adapter chosen for phase build, review: set this "
        "task's adapters, the phase's adapter, or default_adapter"
    )


def test_phase_names(workdir: Path) -> None:
    assert issues(
        "capacity:\n"
        "  per_phase: {deploy: 1}\n"
        "workflow:\n"
        "  phases:\n"
        "    - name: build\n"
        "    - name: build\n"
        "tasks:\n"
        "  - {id: a, prompt: x, phases: [build, test]}\n"
    ) == [
        "run.yaml:2: capacity.per_phase.deploy: unknown phase 'deploy' (phases: build)",
        "run.yaml:6: workflow.phases[1].name: duplicate phase name 'build'",
        "run.yaml:8: tasks[0].phases[1]: unknown phase 'test' (phases: build)",
    ]


def test_timing_relations(workdir: Path) -> None:
    assert issues(
        "retry: {backoff_initial: 1m, backoff_max: 10s}\n"
        "scheduler:\n"
        "  heartbeat_interval: 60s\n"
        "  stale_threshold: 30s\n" + MINIMAL
    ) == [
        "run.yaml:1: retry.backoff_max: must be at least backoff_initial (1m)",
        "run.yaml:4: scheduler.stale_threshold: must be longer than heartbeat_interval (1m), "
        "or every live claim would look stale",
    ]


def test_state_backend_rules(workdir: Path) -> None:
    # The DSN may come from COUNCIL_DATABASE_URL or libpq's own defaults: not required.
    assert load_config(write("state:\n  backend: postgresql\n" + MINIMAL)).state.dsn is None
    assert single_issue("state: {dsn: 'postgresql://x'}\n" + MINIMAL) == (
        "run.yaml:1: state.dsn: only used with backend: postgresql"
    )
    assert single_issue("state: {remote: origin}\n" + MINIMAL) == (
        "run.yaml:1: state.remote: only used with backend: postgresql"
    )
    assert single_issue("state: {backend: postgresql, path: x}\n" + MINIMAL) == (
        "run.yaml:1: state.path: only used with backend: file"
    )


def test_all_problems_are_reported_in_line_order(workdir: Path) -> None:
    lines = issues(
        "tasks:\n"
        "  - {id: a, prompt: x, depends_on: [missing]}\n"
        "  - {id: a, prompt: y}\n"
        "state: {backend: postgresql, path: x}\n"
    )
    assert [int(line.split(":")[1]) for line in lines] == [2, 3, 4]


def test_an_id_git_would_refuse_is_refused_up_front_and_every_derived_id_is_safe() -> None:
    """``x.lock`` (a branch git will not make) and ``end.`` (a session id ``end..<hex>``)
    passed once and then hung or failed a run; every id derived from a safe one is safe."""
    for bad in ("x.lock", "end.", "a.b.", "feature.lock"):
        assert not is_safe_id(bad)
    for good in ("x.locked", "lock", "end.1", "a.b-c_d"):
        assert is_safe_id(good)
    for base in ("t1", "x" * 64, "a" * 52 + "." + "b" * 11, "a" * 51 + "." + "c" * 12):
        derived = derived_id(base, "2f9d6c", limit=59)
        assert is_safe_id(derived) and len(derived) <= 59, derived
    assert derived_id("end", "2f9d6c") == "end.2f9d6c"


@settings(max_examples=40, deadline=None)
@given(st.from_regex(ID_PATTERN, fullmatch=True).filter(is_safe_id))
def test_every_name_made_from_a_safe_id_is_one_git_takes(task_id: str) -> None:
    """Checked by git itself (``git check-ref-format``), not by a copy of its rules: the
    task's branch, its published copy, the session id made from it and a rescue ref."""
    session = derived_id(task_id, "2f9d6c", limit=59)
    assert is_safe_id(session)
    for ref in (
        f"refs/heads/council/{task_id}/12",
        f"refs/council/branches/council/{task_id}/1",
        f"refs/council/rescue-phase/{session}/build-3",
        f"refs/heads/council/{session}",
    ):
        checked = subprocess.run(["git", "check-ref-format", ref], check=False)
        assert checked.returncode == 0, ref


@pytest.mark.parametrize("bad", ["feature/.hidden", "a.lock/b", "main.lock", "x/", "a..b"])
def test_a_base_branch_git_would_refuse_is_refused(workdir: Path, bad: str) -> None:
    line = single_issue(f"base_branch: '{bad}'\n" + MINIMAL)
    assert "is not a valid git branch name" in line, line


def test_validate_is_one_pass_a_refused_value_hides_no_other_problem(tmp_path: Path) -> None:
    # Before: an unsafe id stopped the checks between fields, so the unknown dependency
    # showed only once the id was fixed.
    text = f"""
repo: {tmp_path}
adapters:
  a: {{type: scripted}}
tasks:
  - id: "bad id!"
    prompt: x
  - id: t2
    prompt: y
    depends_on: [nosuch]
  - id: t3
    prompt: z
    timeout: soon
    depends_on: [t2, also-missing]
"""
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="run.yaml")
    fields = [issue.field for issue in error.value.issues]
    assert fields == [
        "tasks[0].id",
        "tasks[1].depends_on[0]",
        "tasks[2].timeout",
        "tasks[2].depends_on[1]",
    ], error.value.issues
    assert "unknown task 'nosuch'" in str(error.value)
    assert "set-aside" not in str(error.value)  # the stand-ins are never named
