"""scripted-cli: an offline stand-in for an AI coding CLI, for demos and tests. No network, no key.

It speaks Claude Code's ``--output-format stream-json`` (``system/init`` with a session id,
``assistant`` messages with text and ``tool_use``, ``user`` messages with ``tool_result``, a final
``result`` with usage and cost) and really edits files in its working directory, following
instructions written in its prompt, one per line; other lines are the task's text::

    WRITE path <<EOF          write the lines up to EOF (any word) to path
    WRITE path text           write one line
    APPEND path text          append one line (APPEND path <<EOF ... EOF for several)
    DELETE path               remove a file
    READ path                 show a file (a Read tool call)
    SAY text                  an assistant message
    ECHO_ENV NAME             say the value of an environment variable
    PRINT_ENV NAME [width=N] [base64] [stderr] [say]
                              print that value as plain output lines (not stream-json), cut
                              every N characters (a terminal's wrap), base64-encoded first if
                              asked, on stderr if asked; ``say``: one message whose text holds
                              those lines (a line break inside a JSON string)
    SLEEP seconds             pause
    SPEND input output [times=N] [every=seconds]
                              N model requests (default 1), each an assistant message whose
                              usage is that many input and output tokens, ``every`` seconds
                              apart (default 0); the result's usage and cost include them
    WAIT_FOR path [seconds]   pause until path exists; a test's gate, so an absolute path is
                              allowed (only its existence is read). Not there after seconds
                              (default 60): end with an error result, exit 1 -- a gate the
                              sandbox hides from the CLI fails the task instead of silently
                              costing the test its whole wait
    FAIL message              end with an error result, exit 1
    RATE_LIMIT [reset=<seconds|ISO time>] [times=N]
                              end with a Claude-like 429 result, exit 1 -- only the first N
                              times (default 1) in this session, so a resumed run goes on
    AUTH_ERROR                end with a 401 result, exit 1
    DENY path                 a write refused by permissions (exit 0, like Claude)
    HANG                      stop responding (until killed)
    IGNORE_TERM               ignore SIGTERM from now on
    CRASH [SIGNAL]            kill itself with a signal (default SIGKILL)
    EXIT code                 exit with that code at once, without a result
    PLAN [invalid=N]          answer a planning request (goal mode, ``orchestrator.run.goal``):
                              list the files here, then end with a task list for the goal
                              between its BEGIN/END COUNCIL TASKS lines, each task with the
                              scripted lines that build it; the first N rounds (default 0) give
                              an invalid list instead (a bad id, an unknown dependency). A
                              prompt that asks for such a list and has no PLAN line is a PLAN.

Paths are relative to the working directory and may not leave it. Sessions live in
``$HOME/.scripted-cli/sessions/<id>.json``: ``--resume <id>`` continues one (same id, earlier
turns remembered, rate limits already served not served again). Persona options (``--persona``,
``--delay`` between steps, ``--personality`` text that prefixes each message) change how it
talks, never what it does.

Run it as ``python -m adapters.scripted_cli`` or, as the ``scripted`` adapter does,
``python -I -S <this file>`` (it imports only the standard library, so it runs from an installed
wheel with no command of its own on PATH). What the prompt says is read by its sibling
``_scripted_prompt``, what it prints is written by ``_scripted_stream``; both standard library
only. Run as a file in isolated mode its directory is not on ``sys.path``, so it is added
there, last (nothing of the standard library is shadowed), and they are imported by name.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TYPE_CHECKING = False  # typing is not imported at run time (``_scripted_stream``)
if TYPE_CHECKING:
    from typing import Any

if __package__:
    from adapters._scripted_prompt import (
        GOAL_BEGIN,
        GOAL_END,
        PLAN_BEGIN,
        PLAN_END,
        ROUND,
        between,
        invalid_plan,
        parse,
        plan,
    )
    from adapters._scripted_stream import ClaudeStream, uuid4_text
else:  # run as a file (``python -I -S scripted_cli.py``): its directory is not on sys.path
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))
    from _scripted_prompt import (  # type: ignore[import-not-found, no-redef]
        GOAL_BEGIN,
        GOAL_END,
        PLAN_BEGIN,
        PLAN_END,
        ROUND,
        between,
        invalid_plan,
        parse,
        plan,
    )
    from _scripted_stream import (  # type: ignore[import-not-found, no-redef]
        ClaudeStream,
        uuid4_text,
    )

__all__ = ["VERSION", "Cli", "Session", "main"]

VERSION = "1.0.0"
PERSONAS: dict[str, tuple[float, str]] = {
    "careful": (0.2, "Let me go through this carefully."),
    "quick": (0.0, "On it."),
    "reviewer": (0.05, "Reviewing with a critical eye."),
}


class Stop(Exception):
    """End the run with this exit code (after the result line, if any, was printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


class Session:
    """The conversation state kept in HOME, like a real CLI's session files."""

    def __init__(self, resume: str | None) -> None:
        self.dir = Path(os.environ.get("HOME") or ".") / ".scripted-cli" / "sessions"
        self.id = resume or uuid4_text()
        self.path = self.dir / f"{self.id}.json"
        self.data: dict[str, Any] = {"session_id": self.id, "turns": [], "rate_limits": {}}
        self.resumed = resume is not None
        if resume is not None:
            if not _safe_id(resume) or not self.path.is_file():
                raise LookupError(resume)
            self.data = json.loads(self.path.read_text(encoding="utf-8"))

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data), encoding="utf-8")
        os.replace(temporary, self.path)


class Cli(ClaudeStream):
    """One run: the prompt's steps done in order, each said as Claude Code would say it."""

    def __init__(self, args: argparse.Namespace, prompt: str, session: Session) -> None:
        delay, personality = PERSONAS.get(args.persona, (0.0, ""))
        super().__init__(
            session.id,
            prompt,
            args.model or "scripted-model",
            delay if args.delay is None else args.delay,
            personality if args.personality is None else args.personality,
        )
        self.session = session
        self.done: list[str] = []
        self.answer: str | None = None  # the final message, when a step gives one (PLAN)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> int:
        steps, text = parse(self.prompt)
        if PLAN_BEGIN in text and not any(keyword == "PLAN" for keyword, _, _ in steps):
            steps.append(("PLAN", "", None))
        earlier = list(self.session.data["turns"])
        # Kept from the start, as real CLIs write their transcript as they go: a run stopped
        # midway (SIGTERM, a crash) can still be resumed with --resume.
        turn: dict[str, Any] = {
            "prompt": self.prompt[:500],
            "result": None,
            "at": _now().isoformat(),
        }
        self.session.data["turns"].append(turn)
        self.session.save()
        self.emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": os.getcwd(),
                "model": self.model,
                "tools": ["Bash", "Edit", "Read", "Write"],
                "permissionMode": "acceptEdits",
                "apiKeySource": "none",
                "resumed": self.session.resumed,
                "turn": len(earlier) + 1,
            }
        )
        task = next((line for line in text if line.strip()), "")
        opening = f"Working on: {task}" if task else "Working on the instructions."
        if earlier:
            opening += f" (continuing; earlier I was asked: {earlier[-1]['prompt'][:80]})"
        self.say(opening)
        code = 0
        try:
            for keyword, argument, body in steps:
                self.step(keyword, argument, body)
            summary = "; ".join(self.done) or "nothing to change"
            final = f"{self.personality} Done: {summary}.".strip()
            if self.answer is not None:
                final = self.answer
            self.result(final)
        except Stop as stop:
            code = stop.code
            final = "(stopped)"
        turn["result"] = final
        self.session.save()
        return code

    def step(self, keyword: str, argument: str, body: str | None) -> None:
        handler = getattr(self, f"do_{keyword.lower()}")
        handler(argument, body)

    def do_write(self, argument: str, body: str | None) -> None:
        path, _, inline = argument.partition(" ")
        content = body if body is not None else inline + "\n"

        def write() -> str:
            target = self.inside(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            return f"File created successfully at: {path}"

        self.tool("Write", {"file_path": path, "content": content}, write)
        self.done.append(f"wrote {path}")

    def do_append(self, argument: str, body: str | None) -> None:
        path, _, inline = argument.partition(" ")
        content = body if body is not None else inline + "\n"

        def append() -> str:
            target = self.inside(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as handle:
                handle.write(content)
            return f"The file {path} has been updated successfully."

        self.tool("Edit", {"file_path": path, "append": content}, append)
        self.done.append(f"appended to {path}")

    def do_delete(self, argument: str, body: str | None) -> None:
        path = argument.strip()

        def delete() -> str:
            self.inside(path).unlink()
            return f"removed {path}"

        self.tool("Bash", {"command": f"rm -- {path}"}, delete)
        self.done.append(f"deleted {path}")

    def do_read(self, argument: str, body: str | None) -> None:
        path = argument.strip()
        self.tool("Read", {"file_path": path}, lambda: self.inside(path).read_text()[:20000])

    def do_say(self, argument: str, body: str | None) -> None:
        self.pause()
        self.say(argument)

    def do_echo_env(self, argument: str, body: str | None) -> None:
        name = argument.strip()
        value = os.environ.get(name)
        self.say(f"{name}={value}" if value is not None else f"{name} is not set")

    def do_print_env(self, argument: str, body: str | None) -> None:
        name, *flags = argument.split()
        value = os.environ.get(name, "")
        if "base64" in flags:
            import base64  # here: the rare step that needs it is not paid by every start

            value = base64.b64encode(value.encode()).decode()
        widths = [int(flag[6:]) for flag in flags if flag.startswith("width=")]
        width = max(1, widths[0]) if widths else len(value) or 1
        lines = [value[at : at + width] for at in range(0, len(value), width)]
        if "say" in flags:
            self.say("\n".join(lines))
            return
        stream = sys.stderr if "stderr" in flags else sys.stdout
        for line in lines:
            stream.write(line + "\n")
            stream.flush()

    def do_sleep(self, argument: str, body: str | None) -> None:
        time.sleep(float(argument or 0))

    def do_spend(self, argument: str, body: str | None) -> None:
        words = argument.split()
        options = dict(word.split("=", 1) for word in words[2:] if "=" in word)
        tokens_in, tokens_out = int(words[0]), int(words[1])
        for number in range(int(options.get("times", "1"))):
            if number:
                time.sleep(float(options.get("every", "0")))
            usage = {"input_tokens": tokens_in, "output_tokens": tokens_out}
            self.assistant([{"type": "text", "text": f"Step {number + 1}."}], usage)
            self.spent[0] += tokens_in
            self.spent[1] += tokens_out
            self.turns += 1

    def do_wait_for(self, argument: str, body: str | None) -> None:
        path, _, limit = argument.partition(" ")
        gate = Path(path) if os.path.isabs(path) else Path.cwd() / path
        deadline = time.monotonic() + float(limit or 60)
        while not gate.exists():
            if time.monotonic() >= deadline:
                self.result(f"WAIT_FOR {path}: not there after {limit or 60} s", error=True)
                raise Stop(1)
            time.sleep(0.05)

    def do_fail(self, argument: str, body: str | None) -> None:
        self.result(argument or "failed", error=True)
        raise Stop(1)

    def do_rate_limit(self, argument: str, body: str | None) -> None:
        options = dict(word.partition("=")[::2] for word in argument.split())
        key = f"RATE_LIMIT {argument}".strip()
        served = self.session.data["rate_limits"].get(key, 0)
        if served >= int(options.get("times", 1)):
            self.say("The rate limit has lifted; carrying on.")
            return
        self.session.data["rate_limits"][key] = served + 1
        resets = _reset_time(options.get("reset", "60"))
        retry = {"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 1}
        retry.update(retry_delay_ms=500, error_status=429, error="rate_limit")
        self.emit(retry)
        info = {"status": "rejected", "resetsAt": int(resets.timestamp())}
        self.emit({"type": "rate_limit_event", "rate_limit_info": info | {"rateLimitType": "5h"}})
        message = (
            "API Error: Request rejected (429) · rate limit exceeded (scripted); "
            f"resets at {resets.isoformat()}"
        )
        self.assistant([{"type": "text", "text": message}])
        self.result(message, error=True, status=429)
        raise Stop(1)

    def do_auth_error(self, argument: str, body: str | None) -> None:
        message = "Failed to authenticate. API Error: 401 invalid API key (scripted)"
        self.result(message, error=True, status=401)
        raise Stop(1)

    def do_deny(self, argument: str, body: str | None) -> None:
        path = argument.strip()
        self.denials.append({"tool_name": "Write", "tool_input": {"file_path": path}})

        def refuse() -> str:
            raise ValueError(
                f"Claude requested permissions to write to {path}, but you haven't granted it yet."
            )

        self.tool("Write", {"file_path": path, "content": ""}, refuse)

    def do_hang(self, argument: str, body: str | None) -> None:
        while True:
            time.sleep(3600)

    def do_ignore_term(self, argument: str, body: str | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def do_crash(self, argument: str, body: str | None) -> None:
        name = argument.strip().upper() or "SIGKILL"
        number = getattr(signal, name if name.startswith("SIG") else f"SIG{name}")
        sys.stdout.flush()
        os.kill(os.getpid(), number)
        time.sleep(5)  # a catchable signal with a handler would land here

    def do_exit(self, argument: str, body: str | None) -> None:
        raise Stop(int(argument or 0))

    def do_plan(self, argument: str, body: str | None) -> None:
        options = dict(word.partition("=")[::2] for word in argument.split())
        _, text = parse(self.prompt)
        goal = between(text, GOAL_BEGIN, GOAL_END)
        round_number = next(
            (int(m.group(1)) for line in text if (m := ROUND.match(line.strip()))), 1
        )

        def listing() -> str:
            names = sorted(os.listdir("."))
            return "\n".join(f"{n}/" if os.path.isdir(n) else n for n in names) or "(empty)"

        self.tool("Glob", {"pattern": "*"}, listing)
        invalid = round_number <= int(options.get("invalid", "0") or 0)
        tasks = invalid_plan(goal) if invalid else plan(goal)
        self.say(f"A plan of {len(tasks)} task(s) for: {goal[0] if goal else 'the goal'}")
        block = json.dumps({"tasks": tasks}, indent=2)
        self.answer = f"Here is the plan.\n{PLAN_BEGIN}\n{block}\n{PLAN_END}"
        self.done.append("planned")

    def inside(self, path: str) -> Path:
        root = Path.cwd().resolve()
        target = (root / path).resolve()
        if not path or Path(path).is_absolute() or not target.is_relative_to(root):
            raise ValueError(f"{path!r} is outside the working directory")
        return target


def _reset_time(value: str) -> datetime:
    try:
        return _now() + timedelta(seconds=float(value))
    except ValueError:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _safe_id(value: str) -> bool:
    return bool(value) and all(c.isalnum() or c in "-_." for c in value) and ".." not in value


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter at the width it would take, without the ``shutil`` (and ``bz2``,
    ``lzma``) it imports for it: ``COLUMNS``, else the terminal's, else 80, less 2."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return argparse.HelpFormatter(prog, width=columns - 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripted-cli", description="An offline stand-in CLI.", formatter_class=_help_formatter
    )
    parser.add_argument("-p", "--print", dest="prompt", help="the prompt (default: stdin)")
    parser.add_argument("--output-format", default="stream-json", choices=["stream-json"])
    parser.add_argument("--resume", help="continue the session with this id")
    parser.add_argument("--model")
    parser.add_argument("--persona", default="default")
    parser.add_argument("--delay", type=float, help="seconds between steps")
    parser.add_argument("--personality", help="text that prefixes every message")
    parser.add_argument("--version", action="store_true")
    args = parser.parse_args(argv)
    if args.version:
        print(f"scripted-cli {VERSION} (cli-council)")
        return 0
    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    try:
        session = Session(args.resume)
    except LookupError:
        failure = {"type": "result", "subtype": "error_during_execution", "is_error": True}
        failure.update(result=f"No conversation found with session ID: {args.resume}")
        print(json.dumps(failure | {"session_id": args.resume}), flush=True)
        return 1
    return Cli(args, prompt, session).run()


if __name__ == "__main__":
    sys.exit(main())
