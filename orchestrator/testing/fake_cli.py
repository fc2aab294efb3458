"""Fake CLIs for tests: small generated Python programs that misbehave on purpose.

``FakeCli`` describes one program; ``argv()`` gives the command that runs it (``python -c``,
no file to clean up). Behaviours compose and run in this order: ignore SIGTERM, start
children (writing every pid to ``pidfile``), echo its arguments and stdin, print ``lines`` and
``stderr``, echo environment variables, print invalid UTF-8, flood, print one long line
without a newline, tick (a line every ``tick`` seconds), sleep or hang, kill itself with a
signal, exit::

    FakeCli(lines=[event_line("completed", "done")])              # a well-behaved CLI
    FakeCli(hang=True, ignore_term=True, children=2, pidfile=p)   # the nightmare
    FakeCli(flood=200 * 2**20)                                    # 200 MB of output
    FakeCli(long_line=50 * 2**20)                                 # one 50 MB line, no newline
    FakeCli(kill_self=signal.SIGKILL)                             # a crash

``FakeAdapter`` runs any such argv and turns lines written by ``event_line`` back into the
events they describe (anything else is a ``raw`` event), so tests of the core can say exactly
which events a CLI produced.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from orchestrator.adapter import (
    Adapter,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Stream,
    native_id,
)

__all__ = ["FakeAdapter", "FakeCli", "event_line"]

_SLEEPER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"


def event_line(kind: str | EventKind, text: str = "", **fields: Any) -> str:
    """One output line that ``FakeAdapter`` parses into ``AgentEvent(kind, text, **fields)``."""
    return json.dumps({"event": {"kind": str(kind), "text": text, **fields}}, default=str)


@dataclass(frozen=True)
class FakeCli:
    lines: Sequence[str] = ()
    stderr: Sequence[str] = ()
    echo_env: Sequence[str] = ()  # prints NAME=value (or NAME unset) for each
    read_stdin: bool = False  # prints stdin=<repr of what stdin held>
    echo_argv: bool = False  # prints argv=<JSON list of its arguments>
    invalid_utf8: bool = False
    flood: int = 0  # bytes of output, in lines of flood_line bytes
    flood_line: int = 1024 * 1024
    long_line: int = 0  # one line of this many bytes and no newline, written in 1 MiB blocks
    children: int = 0  # grandchildren that ignore SIGTERM and sleep, holding stdout
    setsid_child: bool = False  # a child in a session (and process group) of its own
    bare_env: bool = False  # that child starts with an empty environment
    ignore_term: bool = False
    ticks: int = 0  # lines "tick N", one every `tick` seconds
    tick: float = 0.1
    sleep: float = 0.0
    hang: bool = False
    kill_self: int | None = None  # a signal number
    exit_code: int = 0
    pidfile: Path | None = None  # gets the pids of the CLI and of everything it started

    def argv(self, python: str = sys.executable) -> list[str]:
        return [python, "-c", self.source()]

    def source(self) -> str:
        code = [
            "import os, signal, subprocess, sys, time",
            "out = sys.stdout.buffer",
            "pids = [os.getpid()]",
        ]
        if self.ignore_term:
            code.append("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
        sleeper = f"[sys.executable, '-c', {_SLEEPER!r}]"
        for _ in range(self.children):
            code.append(f"pids.append(subprocess.Popen({sleeper}).pid)")
        if self.setsid_child:
            env = ", env={}" if self.bare_env else ""
            code.append(
                f"pids.append(subprocess.Popen({sleeper}, start_new_session=True{env}).pid)"
            )
        if self.pidfile is not None:
            code.append(f"open({str(self.pidfile)!r}, 'w').write(' '.join(map(str, pids)))")
        if self.echo_argv:
            code.append("import json; print('argv=' + json.dumps(sys.argv[1:]), flush=True)")
        if self.read_stdin:
            code.append("out.write(b'stdin=' + repr(sys.stdin.read()).encode() + b'\\n')")
        for line in self.lines:
            code.append(f"out.write({(line + chr(10)).encode()!r})")
        code.append("out.flush()")
        for line in self.stderr:
            code.append(f"sys.stderr.buffer.write({(line + chr(10)).encode()!r})")
        code.append("sys.stderr.flush()")
        for name in self.echo_env:
            code.append(
                f"out.write(({name!r} + '=' + os.environ[{name!r}] if {name!r} in os.environ "
                f"else {name!r} + ' unset').encode() + b'\\n')"
            )
        if self.invalid_utf8:
            code.append(r"out.write(b'bad \xff\xfe \xc3\x28 bytes\n' + b'after the bad line\n')")
        if self.flood:
            code += [
                f"line = b'x' * ({self.flood_line} - 1) + b'\\n'",
                f"for _ in range({self.flood} // {self.flood_line}): out.write(line)",
            ]
        if self.long_line:
            code += [
                "block = b'y' * (1 << 20)",
                f"for _ in range({self.long_line} >> 20): out.write(block)",
                f"out.write(b'y' * ({self.long_line} & ((1 << 20) - 1)))",
            ]
        code.append("out.flush()")
        if self.ticks:
            code.append(
                f"for n in range({self.ticks}): "
                f"time.sleep({self.tick}); out.write(b'tick %d\\n' % n); out.flush()"
            )
        if self.sleep:
            code.append(f"time.sleep({self.sleep})")
        if self.hang:
            code.append("while True: time.sleep(3600)")
        if self.kill_self is not None:
            code.append(f"os.kill(os.getpid(), {int(self.kill_self)}); time.sleep(10)")
        code.append(f"sys.exit({self.exit_code})")
        return "\n".join(code) + "\n"


class FakeAdapter(Adapter):
    """Runs ``options.argv`` (plus ``--prompt <prompt>``); parses ``event_line`` lines."""

    name = "fake"
    executable = sys.executable
    streams_json = True
    can_resume = True

    class Config(AdapterConfig):
        argv: list[str] = Field(
            default_factory=lambda: FakeCli(lines=[event_line("completed", "done")]).argv(),
            min_length=1,
        )
        env: dict[str, str] = Field(default_factory=dict)
        stdin: str | None = None
        secrets: list[str] = Field(default_factory=list)
        home_files: dict[str, str] = Field(default_factory=dict)
        passthrough_env: list[str] = Field(default_factory=list)

    config: Config

    def __init__(
        self, config: AdapterConfig | Mapping[str, Any] | None = None, executable: str | None = None
    ) -> None:
        super().__init__(config, executable)
        vars(self).update(passthrough_env=tuple(self.config.passthrough_env))

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._spec([*self.config.argv, "--prompt", request.prompt])

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        session = native_id(self.name, native_session_id)
        argv = [*self.config.argv, "--resume", session, "--prompt", request.prompt]
        return self._spec(argv)

    def _spec(self, argv: list[str]) -> CommandSpec:
        return CommandSpec(
            argv=argv,
            env=dict(self.config.env),
            stdin=self.config.stdin,
            secrets=list(self.config.secrets),
            home_files=dict(self.config.home_files),
        )

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if not line:
            return []
        raw = [AgentEvent(kind=EventKind.RAW, text=line)]
        if not line.startswith('{"event"'):
            return raw
        try:
            return [AgentEvent.model_validate(json.loads(line)["event"])]
        except (ValueError, RecursionError, KeyError, TypeError, ValidationError):
            return raw
