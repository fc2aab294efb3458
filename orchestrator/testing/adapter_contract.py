"""The contract every adapter must pass (built-in or third-party), as a reusable pytest class.

An adapter's test module subclasses ``AdapterContract`` and provides an ``adapter`` fixture::

    import pytest
    from orchestrator.testing.adapter_contract import AdapterContract

    class TestMyCli(AdapterContract):
        @pytest.fixture
        def adapter(self):
            return MyCli({"approval": "auto"})

What it holds an adapter to, without running any process:

- ``name`` is a safe id and ``executable`` a plain binary name or path;
- ``Config`` refuses unknown options (with an ``AdapterError`` naming the option);
- ``build_command`` is pure and returns an argument list: a prompt full of shell syntax
  (``$(rm -rf /)``, quotes, ``;``, newlines) stays one argument (or goes whole to stdin), no
  shell is wrapped around it, and nothing is created on disk;
- ``parse_line`` never raises, and ``classify`` takes whatever it produced: not on garbage,
  invalid or deeply nested JSON, a 1 MiB line, an empty line, another CLI's JSON with fields
  of the wrong types, random lines shaped like the CLI's (the ``line_hints`` fixture), or the
  CLI's own recorded lines (the ``recordings`` fixture) with each field given a wrong type;
- ``classify`` says ``crashed`` for a run killed by a signal, ``timed_out`` for a time limit
  or an idle limit, ``cancelled`` for a cancelled run, and never ``succeeded`` for a run that
  exited 0 but reported an error, nor for a non-zero exit;
- ``resume_command`` works if and only if ``can_resume`` (and passes the session id on), and
  refuses a session id that is no id (``--yolo``, one with a space or a newline, an empty one).

Set ``contract_model`` on the subclass when the adapter needs a particular model name.
Random lines come from Hypothesis (``pip install 'cli-council[testing]'`` has both).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings

from orchestrator.adapter import (
    Adapter,
    AdapterCheck,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    OutcomeKind,
    ProcessResult,
)
from orchestrator.errors import AdapterError
from orchestrator.ids import is_safe_id
from orchestrator.testing.hostile_lines import GARBAGE_LINES, HOSTILE_PROMPTS
from orchestrator.testing.line_variants import LineHints, mutated_lines, recorded_lines

__all__ = ["GARBAGE_LINES", "HOSTILE_PROMPTS", "AdapterContract", "LineHints"]

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "csh", "tcsh", "cmd", "cmd.exe"})
_SHELL_FLAGS = frozenset({"-c", "-lc", "-ic", "-ec", "/c"})


class AdapterContract:
    contract_model: ClassVar[str | None] = "fake-model"

    @pytest.fixture
    def line_hints(self) -> LineHints:
        """What the CLI's lines look like (override for sharper random lines)."""
        return LineHints()

    @pytest.fixture
    def recordings(self) -> Path | None:
        """A directory of the CLI's recorded output (``*.stdout.txt``), if there is one."""
        return None

    @pytest.fixture
    def make_request(self, tmp_path: Path) -> Callable[..., AdapterRequest]:
        def make(prompt: str = "Add a README", **changes: Any) -> AdapterRequest:
            fields: dict[str, Any] = {
                "prompt": prompt,
                "workdir": tmp_path / "not-created" / "work",
                "home": tmp_path / "not-created" / "home",
                "model": self.contract_model,
                "task_id": "contract",
                "session_id": "s1",
            }
            return AdapterRequest(**(fields | changes))

        return make

    # -- identity and options ------------------------------------------------------------

    def test_name_is_a_safe_id(self, adapter: Adapter) -> None:
        assert is_safe_id(adapter.name), adapter.name
        assert adapter.name == type(adapter).name

    def test_executable_is_a_plain_binary(self, adapter: Adapter) -> None:
        for binary in (type(adapter).executable, adapter.binary):
            assert isinstance(binary, str) and binary.strip() == binary and binary
            assert not any(char in binary for char in "\0\n\r")

    def test_capabilities_are_declared(self, adapter: Adapter) -> None:
        for flag in ("streams_json", "can_resume", "can_choose_model", "edits_files"):
            assert isinstance(getattr(adapter, flag), bool), flag
        assert isinstance(adapter.passthrough_env, tuple)
        assert all(name.isidentifier() for name in adapter.passthrough_env)

    def test_config_refuses_unknown_options(self, adapter: Adapter) -> None:
        assert type(adapter).Config.model_config.get("extra") == "forbid"
        options = {**adapter.config.model_dump(), "no_such_option_xyz": 1}
        with pytest.raises(AdapterError, match="no_such_option_xyz"):
            type(adapter)(options, executable=adapter.binary)

    # -- commands ------------------------------------------------------------------------

    @pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
    def test_build_command_keeps_the_prompt_whole(
        self, adapter: Adapter, make_request: Callable[..., AdapterRequest], prompt: str
    ) -> None:
        spec = adapter.build_command(make_request(prompt))
        _check_spec(spec)
        carried = sum(prompt in arg for arg in spec.argv)
        assert carried == 1 or (carried == 0 and spec.stdin is not None and prompt in spec.stdin)

    def test_build_command_is_pure(
        self, adapter: Adapter, make_request: Callable[..., AdapterRequest]
    ) -> None:
        request = make_request()
        adapter.build_command(request)
        assert not request.workdir.exists() and not request.home.exists()

    def test_resume_works_if_and_only_if_can_resume(
        self, adapter: Adapter, make_request: Callable[..., AdapterRequest]
    ) -> None:
        request = make_request("continue; $(true)")
        if not adapter.can_resume:
            with pytest.raises(AdapterError):
                adapter.resume_command(request, "sess-1234")
            return
        spec = adapter.resume_command(request, "sess-1234")
        _check_spec(spec)
        carried = [*spec.argv, *spec.env.values(), *spec.home_files.values(), spec.stdin or ""]
        assert any("sess-1234" in value for value in carried)
        in_argv = sum(request.prompt in arg for arg in spec.argv)
        assert in_argv == 1 or (spec.stdin is not None and request.prompt in spec.stdin)

    @pytest.mark.parametrize("session", ["--yolo", "a b", "", "x\ny", "-c"])
    def test_resume_refuses_a_session_id_that_is_no_id(
        self, adapter: Adapter, make_request: Callable[..., AdapterRequest], session: str
    ) -> None:
        if adapter.can_resume:  # what a CLI printed must never become a flag of the next one
            with pytest.raises(AdapterError):
                adapter.resume_command(make_request(), session)

    def test_version_command_is_an_argument_list(self, adapter: Adapter) -> None:
        argv = adapter.version_command()
        assert argv and all(isinstance(arg, str) for arg in argv) and argv[0]

    def test_check_names_the_adapter(self, adapter: Adapter) -> None:
        check = adapter.check()
        assert isinstance(check, AdapterCheck)
        assert (check.name, check.binary) == (adapter.name, adapter.binary)

    # -- parsing -------------------------------------------------------------------------

    @pytest.mark.parametrize("stream", ["stdout", "stderr"])
    @pytest.mark.parametrize("line", GARBAGE_LINES, ids=range(len(GARBAGE_LINES)))
    def test_parse_line_never_raises(self, adapter: Adapter, line: str, stream: Any) -> None:
        _survives(adapter, line, stream)

    def test_random_lines_never_raise(self, adapter: Adapter, line_hints: LineHints) -> None:
        @settings(max_examples=100, deadline=None, database=None)
        @given(line_hints.strategy())
        def check(line: str) -> None:
            _survives(adapter, line, "stdout")

        check()

    def test_recorded_lines_with_wrong_typed_fields_never_raise(
        self, adapter: Adapter, recordings: Path | None
    ) -> None:
        # The CLI's own JSON lines (a text CLI has none), and the JSON among the garbage lines.
        base = [*recorded_lines(recordings), *(line for line in GARBAGE_LINES if len(line) < 1000)]
        lines = mutated_lines(base)
        assert lines
        for line in lines:
            _survives(adapter, line, "stdout")

    # -- classification ------------------------------------------------------------------

    @pytest.mark.parametrize("events", [[], [AgentEvent(kind=EventKind.RAW, text="Segfault")]])
    def test_killed_by_a_signal_is_crashed(
        self, adapter: Adapter, events: list[AgentEvent]
    ) -> None:
        for result in (
            ProcessResult(exit_code=None, signal=9),
            ProcessResult(exit_code=None, signal=11, stderr_tail="core dumped"),
        ):
            assert adapter.classify(result, events).kind is OutcomeKind.CRASHED

    def test_limits_and_cancellation_win_over_output(self, adapter: Adapter) -> None:
        done = [AgentEvent(kind=EventKind.COMPLETED, text="all done")]
        cases = {
            OutcomeKind.TIMED_OUT: [
                ProcessResult(exit_code=None, signal=15, timed_out=True, seconds=600),
                ProcessResult(exit_code=None, signal=9, idle_timed_out=True, seconds=90),
                ProcessResult(exit_code=0, timed_out=True),
            ],
            OutcomeKind.CANCELLED: [
                ProcessResult(exit_code=None, signal=15, cancelled=True),
                ProcessResult(exit_code=0, cancelled=True),
            ],
        }
        for expected, results in cases.items():
            for result in results:
                for events in ([], done):
                    assert adapter.classify(result, events).kind is expected, (result, events)

    def test_exit_zero_is_not_success_when_the_cli_reported_an_error(
        self, adapter: Adapter
    ) -> None:
        ok = ProcessResult(exit_code=0)
        failures = [
            [AgentEvent(kind=EventKind.ERROR, text="API Error: 500 overloaded", error_kind="api")],
            [AgentEvent(kind=EventKind.COMPLETED, text="API Error: 500", is_error=True)],
            [
                AgentEvent(kind=EventKind.MESSAGE, text="working"),
                AgentEvent(kind=EventKind.ERROR, text="permission denied", error_kind="permission"),
                AgentEvent(kind=EventKind.COMPLETED, text="done"),
            ],
        ]
        for events in failures:
            assert adapter.classify(ok, events).kind is not OutcomeKind.SUCCEEDED, events

    def test_a_failed_exit_is_not_success(self, adapter: Adapter) -> None:
        for events in ([], [AgentEvent(kind=EventKind.COMPLETED, text="done")]):
            outcome = adapter.classify(ProcessResult(exit_code=1, stderr_tail="boom"), events)
            assert outcome.kind is not OutcomeKind.SUCCEEDED


def _survives(adapter: Adapter, line: str, stream: Any) -> None:
    events = adapter.parse_line(line, stream)
    assert isinstance(events, list)
    assert all(isinstance(event, AgentEvent) for event in events)
    adapter.classify(ProcessResult(exit_code=0), events)


def _check_spec(spec: CommandSpec) -> None:
    assert isinstance(spec, CommandSpec)
    argv = spec.argv
    assert argv and argv[0] and all(isinstance(arg, str) and "\0" not in arg for arg in argv)
    program = PurePosixPath(argv[0]).name
    assert not (program in _SHELLS and _SHELL_FLAGS & set(argv[1:3])), f"a shell: {argv[:3]}"
    assert all(name.isidentifier() and isinstance(value, str) for name, value in spec.env.items())
    for path in (*spec.home_files, *spec.stderr_files):
        parts = PurePosixPath(path).parts
        assert path and not PurePosixPath(path).is_absolute() and ".." not in parts, path
