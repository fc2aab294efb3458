"""Processes: the one module that starts them.

``run_command`` runs a short command to completion (worktree setup commands, verify commands):
an argument list, never a shell; stdin closed; the allow-listed environment of
``process_env.command_env`` unless the caller passes one (never this process's whole
environment, which holds its keys); its own process group, so a timeout or a
cancellation takes down everything it started, grandchildren included (on a timeout SIGTERM,
a grace period, then SIGKILL to the group; a cancelled caller SIGKILLs at once); output
captured up to a bound, keeping the tail, which is where errors are.

``run_cli`` runs one AI CLI invocation through its adapter, end to end::

    run = await run_cli(adapter, request, log_dir=repo / ".council" / "logs",
                        idle_timeout=90, total_timeout=600, on_event=table.update)
    run.outcome.kind      # succeeded | failed | rate_limited | timed_out | crashed | ...
    run.outcome.native_session_id   # pass as resume_session_id to continue the conversation

- the command comes from ``adapter.build_command`` (``adapter.resume_command`` when a
  ``resume_session_id`` is given or the request carries one) and runs without a shell, with
  stdin closed (or fed ``CommandSpec.stdin``, then closed), as the leader of a new process
  group, in ``request.workdir``, with the allow-listed environment and private HOME/XDG/TMPDIR
  under ``request.home`` described in ``orchestrator.process_env`` (``CommandSpec.home_files``
  are written there first);
- stdout and stderr are read line by line into ``adapter.parse_line``; memory stays bounded
  whatever the CLI prints (``orchestrator.process_output``, ``orchestrator.event_tail``); every
  line goes, redacted, to ``<log_dir>/<task>-<phase>-<time>-<pid>-<n>.log`` (capped at 50 MB);
- ``idle_timeout`` (seconds without a byte of output), ``total_timeout`` or setting the
  ``cancel`` event stop the CLI gracefully: SIGTERM to its group and to the family members that
  left it (``orchestrator.process_tree``: descendants, and processes carrying the CLI run's mark
  in their environment, double-forked ``setsid()`` daemons included), ``grace`` seconds, then
  SIGKILL, then one more sweep for marked processes started meanwhile; they return a ``CliRun``
  classified ``timed_out`` or ``cancelled``. Cancelling the calling task means stop now (the
  orchestrator's second Ctrl-C): SIGKILL at once, also when a graceful stop is already waiting
  out its grace period, and the cancellation is re-raised once the group is dead;
- after a normal exit the group and every marked process are killed too, so daemons the CLI
  forked die with it, even those that called ``setsid()``. One that also dropped its
  environment escapes (``process_tree`` says why); the runner then stops reading its output
  after a short drain instead of waiting for it;
- an event that settles the run (``Adapter.ends_run``: an auth error; a rate limit where the
  CLI's own retries cannot be capped) stops the CLI at once, gracefully like a timeout, and the
  result says ``ended_early``: no CLI spends minutes retrying what no retry can fix;
- ``adapter.classify`` turns the result and the kept events into the ``Outcome``;
- ``watch`` (a ``CliWatch``) hears the CLI's pid once it started and again once its group is
  dead, so the caller can record running CLIs durably (``orchestrator.cli_runs``): SIGKILL of
  the orchestrator does not reach a CLI in its own group, and a successor must stop it. Every
  process started here also carries the orchestrator's ``procid.MARKER_ENV`` (who started it,
  where ``COUNCIL_RUN_MARK`` says which CLI run), which finds an orphan whose pid was never
  recorded (``orchestrator.orphans``).

Errors: ``AdapterError`` when the CLI's binary cannot be found or the adapter built no
command, ``RunError`` when the working directory is missing, ``PathEscapeError`` when a home
file would land outside HOME. Everything that happens after the start is in the ``CliRun``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
import anyio.to_thread

from orchestrator import procid, secret_mask
from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    Outcome,
    OutcomeKind,
    ProcessResult,
)
from orchestrator.crashpoints import crash_point
from orchestrator.credentials import Credential, link_credentials, unlink_credentials
from orchestrator.errors import AdapterError, RunError
from orchestrator.process_env import Redactor, child_env, command_env, home_ready, prepare_home
from orchestrator.process_output import LOG_LIMIT, LogSink, log_name
from orchestrator.process_reader import EventCallback, OutputReader
from orchestrator.process_tree import (
    MARK_NAME,
    Family,
    Stray,
    adopted_strays,
    describe,
    find_strays,
    now_ticks,
    reap,
    signal_strays,
)

__all__ = [
    "DEFAULT_GRACE",
    "CliRun",
    "CliWatch",
    "CommandResult",
    "cli_version",
    "kill_group",
    "own_processes",
    "run_cli",
    "run_command",
    "stop_adopted",
]

log = logging.getLogger(__name__)

_OUTPUT_LIMIT = 256 * 1024
DEFAULT_GRACE = 5.0
_DRAIN = 1.0  # after the CLI exited: how long output may still arrive from escaped children
_SWEEPS = 3  # passes over /proc for marked processes: a member may fork while we kill
_PIPE_SIZE = 1024 * 1024
_F_SETPIPE_SZ: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only


# The processes started here and not yet waited for (never taken for a CLI's strays), and
# the CLIs running now with their start (ticks): a double-forked daemon the orchestrator
# adopted while one CLI ran alone is that CLI's (``process_tree``, adoption).
_STARTED: set[int] = set()
_RUNNING_CLIS: dict[int, int] = {}
_last_cli_end = 0
_spawning = 0  # starts under way: a child may exist whose pid is not in _STARTED yet


def own_processes() -> frozenset[int] | None:
    """The processes started here and still running; None while a start is under way (then
    no child of ours can be told from an adopted one)."""
    return None if _spawning else frozenset(_STARTED)


@contextlib.contextmanager
def _starting() -> Iterator[None]:
    global _spawning
    _spawning += 1
    try:
        yield
    finally:
        _spawning -= 1


def _alone_since(pid: int) -> int | None:
    """Since when (ticks) the CLI ``pid`` has been the only one running; None while others run."""
    if any(other != pid for other in _RUNNING_CLIS):
        return None
    return max(_RUNNING_CLIS.get(pid, 0), _last_cli_end)


def _cli_started(pid: int, since: int) -> None:
    _STARTED.add(pid)
    _RUNNING_CLIS[pid] = since


def _cli_ended(pid: int) -> None:
    global _last_cli_end
    _STARTED.discard(pid)
    if _RUNNING_CLIS.pop(pid, None) is not None:
        _last_cli_end = now_ticks()


class CliWatch(Protocol):
    """Told each CLI's pid (it leads its own process group) when it has started, and again
    once that group is dead."""

    async def started(self, pid: int) -> None: ...

    async def ended(self, pid: int) -> None: ...


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int | None  # None when it was killed for its timeout
    output: str  # stdout and stderr interleaved, the last 256 KiB
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclass(frozen=True)
class CliRun:
    """One finished CLI invocation."""

    argv: list[str]  # as run, with secrets shown as ***
    events: list[AgentEvent]  # significant events and the most recent others (bounded)
    result: ProcessResult
    outcome: Outcome
    log_path: Path
    lines: int  # lines read from stdout and stderr
    truncated_lines: int  # lines longer than the cap, of which only the head was kept
    dropped_events: int  # events let go of to bound memory (on_event saw them all)
    log_truncated: bool
    survivors: tuple[str, ...] = ()  # processes it left running after it exited, now stopped

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def native_session_id(self) -> str | None:
        return self.outcome.native_session_id


async def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
) -> CommandResult:
    """Run ``argv`` in ``cwd`` to completion or until ``timeout`` seconds pass."""
    if not argv:
        raise RunError("cannot run an empty command")
    started = time.monotonic()
    try:
        with _starting():
            process = await _open_command(argv, cwd, env)
            _STARTED.add(process.pid)
    except FileNotFoundError:
        raise RunError(f"{argv[0]}: command not found (cwd {cwd})") from None
    except PermissionError:
        raise RunError(f"{argv[0]}: permission denied") from None
    tail = bytearray()
    timed_out = False
    try:
        with anyio.move_on_after(timeout) as scope:
            assert process.stdout is not None
            async for chunk in process.stdout:
                tail += chunk
                if len(tail) > _OUTPUT_LIMIT:
                    del tail[: len(tail) - _OUTPUT_LIMIT]
            await process.wait()
            # Nothing it started may outlive it (a daemon a setup script forked, say).
            _signal_group(process.pid, signal.SIGKILL)
        if scope.cancelled_caught:
            timed_out = True
            with anyio.CancelScope(shield=True):
                await kill_group(process, Family(process.pid), grace)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await kill_group(process, Family(process.pid), 0)  # the caller stops now: no grace
        raise
    finally:
        _STARTED.discard(process.pid)
        with contextlib.suppress(Exception):
            await process.aclose()
    return CommandResult(
        argv=list(argv),
        returncode=None if timed_out else process.returncode,
        output=tail.decode("utf-8", "replace"),
        timed_out=timed_out,
        seconds=time.monotonic() - started,
    )


async def _open_command(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None
) -> anyio.abc.Process:
    return await anyio.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=_marked(command_env()[0] if env is None else env),
        start_new_session=True,
    )


async def kill_group(
    process: anyio.abc.Process, family: Family, grace: float = DEFAULT_GRACE
) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL it.

    Members of ``family`` that left the group get the same signals: found through /proc
    before the leader can die and orphan them, and once more after it died.
    """
    pgid = family.pgid  # start_new_session made the child its group's leader
    alive = process.returncode is None
    strays = await anyio.to_thread.run_sync(lambda: find_strays(family, leader_alive=alive))
    log.debug("pid %d: SIGTERM to its group and %d strays", pgid, len(strays))
    _signal_group(pgid, signal.SIGTERM)
    signal_strays(strays, signal.SIGTERM)
    with anyio.move_on_after(grace) as waited:
        await process.wait()
    if waited.cancelled_caught:
        log.info("pid %d still running %.1fs after SIGTERM; sending SIGKILL", pgid, grace)
    # Even when the leader exited, a child that ignored SIGTERM may live on in the group.
    _signal_group(pgid, signal.SIGKILL)
    signal_strays(strays, signal.SIGKILL)
    await process.wait()
    await anyio.to_thread.run_sync(reap, strays)
    await _sweep(family)


async def _sweep(family: Family) -> list[str]:
    """SIGKILL every member of ``family`` still alive outside its group (the leader has
    exited); what they were."""
    if family.mark is None and not family.roots:
        return []
    stopped: dict[Stray, str] = {}
    for _ in range(_SWEEPS):
        strays = await anyio.to_thread.run_sync(lambda: find_strays(family, leader_alive=False))
        if not strays:
            break
        stopped.update((stray, describe(stray)) for stray in strays if stray not in stopped)
        log.info("pid %d: killing %d processes it left behind", family.pgid, len(strays))
        signal_strays(strays, signal.SIGKILL)
        await anyio.to_thread.run_sync(reap, strays)  # dead before the next look
    return list(stopped.values())


async def stop_adopted(since: int) -> list[str]:
    """SIGKILL every process this orchestrator adopted (a CLI's double-forked daemon, where
    it is a subreaper) that was started since ``since`` (ticks); what they were. For the end
    of a run, when no CLI runs any more to own them."""
    strays: list[Stray] = await anyio.to_thread.run_sync(adopted_strays, since, own_processes)
    if not strays:
        return []
    stopped = [describe(stray) for stray in strays]
    log.warning("stopping %d processes the run's CLIs left behind: %s", len(strays), stopped)
    signal_strays(strays, signal.SIGKILL)
    await anyio.to_thread.run_sync(reap, strays)
    return stopped


def _marked(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this orchestrator's marker, which its successor finds orphans by."""
    return {**env, procid.MARKER_ENV: procid.current().marker()}


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def run_cli(
    adapter: Adapter,
    request: AdapterRequest,
    *,
    log_dir: Path,
    idle_timeout: float | None = None,
    total_timeout: float | None = None,
    grace: float = DEFAULT_GRACE,
    on_event: EventCallback | None = None,
    resume_session_id: str | None = None,
    cancel: anyio.Event | None = None,
    log_limit: int = LOG_LIMIT,
    watch: CliWatch | None = None,
) -> CliRun:
    """Run one CLI invocation as the module docstring describes."""
    native = resume_session_id or request.resume_session_id
    spec = adapter.resume_command(request, native) if native else adapter.build_command(request)
    if not spec.argv or not spec.argv[0]:
        raise AdapterError(f"adapter {adapter.name!r} built an empty command")
    home, env, redact = _environment(adapter, request, spec)
    mark, since = Family.new_mark()
    env[MARK_NAME] = mark
    if spec.home_files or adapter.credentials or not home_ready(home):
        await anyio.to_thread.run_sync(_prepare, home, spec, adapter.credentials, request)
    argv = [redact(arg) for arg in spec.argv] if redact else list(spec.argv)
    path = Path(log_dir) / log_name(request.task_id, request.phase)
    sink = LogSink(path, log_limit, argv, request.workdir, root=Path(log_dir))
    try:
        with _starting():
            process, out_fd, err_fd = await _spawn(adapter, spec, request.workdir, env)
            _cli_started(process.pid, since)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the start error matters more than its log line
            sink.close(f"not started: {exc}")
        raise
    pid = process.pid
    roots = (str(request.workdir), str(home))  # resolved where /proc is read
    family = Family(pid, mark, since, roots, own_processes, lambda: _alone_since(pid))
    crash_point("cli.spawned")
    try:
        sink.create()  # after the start, so it overlaps the CLI's own start-up
    except OSError as exc:
        with anyio.CancelScope(shield=True):
            await kill_group(process, family, grace)
            await _close(process, out_fd, err_fd)
        raise RunError(f"cannot write the run's log {path}: {exc}") from exc
    if watch is not None:
        try:
            await watch.started(process.pid)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await kill_group(process, family, grace)
                await _close(process, out_fd, err_fd)
                sink.close("stopped: the run could not be recorded")
                await _ended(watch, process.pid)
            raise
    stop = _Stop()
    reader = OutputReader(adapter, redact, sink, on_event, on_settled=lambda _: stop("settled"))
    limits = _Limits(idle_timeout, total_timeout, grace, cancel)
    started = time.monotonic()
    try:
        survivors = await _supervise(
            process, family, (out_fd, err_fd), spec.stdin, reader, stop, started, limits
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await kill_group(process, family, 0)  # the caller stops now: no grace
            sink.close("cancelled: the orchestrator stopped this run")
        raise
    finally:
        _cli_ended(pid)
        with anyio.CancelScope(shield=True):
            await _close(process, out_fd, err_fd)
            await _ended(watch, process.pid)
    if survivors:
        log.warning("%s left processes running after it exited: %s", argv[0], survivors)
    code = process.returncode
    result = ProcessResult(
        exit_code=code if code is not None and code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        timed_out=stop.reason == "timeout",
        idle_timed_out=stop.reason == "idle",
        cancelled=stop.reason == "cancelled",
        ended_early=stop.reason == "settled",
        seconds=time.monotonic() - started,
        stderr_tail=reader.stderr.text(),
    )
    events = reader.tail.events()
    outcome = _classify(adapter, result, events)
    sink.close(
        f"exit_code={result.exit_code} signal={result.signal} seconds={result.seconds:.2f} "
        f"outcome={outcome.kind}"
    )
    return CliRun(
        argv=argv,
        events=events,
        result=result,
        outcome=outcome,
        log_path=sink.path,
        lines=reader.lines,
        truncated_lines=reader.truncated_lines,
        dropped_events=reader.tail.dropped,
        log_truncated=sink.truncated,
        survivors=tuple(survivors),
    )


async def _ended(watch: CliWatch | None, pid: int) -> None:
    if watch is None:
        return
    try:
        await watch.ended(pid)
    except Exception as exc:
        # The record stays, naming a process that is gone: whoever stops orphans later finds
        # nothing to kill and drops it. Not worth failing a finished run for.
        log.warning("pid %d ended but could not be recorded as ended: %s", pid, exc)


async def _close(process: anyio.abc.Process, out_fd: int, err_fd: int) -> None:
    # The pumps are done with the descriptors: the task group that ran them has exited.
    os.close(out_fd)
    os.close(err_fd)
    with contextlib.suppress(Exception):
        await process.aclose()  # the process has exited: this only releases its transport


def _prepare(
    home: Path, spec: CommandSpec, credentials: Sequence[Credential], request: AdapterRequest
) -> None:
    # One worker-thread hop for all of it: this runs at every CLI start.
    if spec.home_files or not home_ready(home):
        prepare_home(home, spec.home_files)
    if request.share_credentials:
        link_credentials(home, credentials)
    else:
        unlink_credentials(home, credentials)


def _environment(
    adapter: Adapter, request: AdapterRequest, spec: CommandSpec
) -> tuple[Path, dict[str, str], Redactor]:
    home = Path(os.path.abspath(request.home))
    names = (*adapter.env_names(), *request.pass_env)
    env, secrets = child_env(names, spec.env, request.env, home)
    # A variable the user names for this CLI (``pass_env``, a key variable its options name)
    # is passed for a reason, often a key under a name of their own: its value is a secret
    # whatever the name says.
    named = [env[name] for name in names if name not in adapter.passthrough_env and name in env]
    given = [*secrets, *named, *spec.secrets]
    secret_mask.remember(given)  # masked in everything stored from now on
    # Its log and events also hide what it was not given but may have found anyway: this
    # process's environment is readable through /proc by any process of the same user.
    return home, _marked(env), Redactor([*given, *secret_mask.known()])


@dataclass(frozen=True)
class _Limits:
    idle: float | None
    total: float | None
    grace: float
    cancel: anyio.Event | None


class _Stop:
    """Why the run is being stopped early, and the scope waiting on the CLI to exit."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.scope: anyio.CancelScope | None = None

    def __call__(self, reason: str) -> None:
        if self.reason is None and self.scope is not None:
            self.reason = reason
            self.scope.cancel()


async def _supervise(
    process: anyio.abc.Process,
    family: Family,
    fds: tuple[int, int],
    stdin: str | None,
    reader: OutputReader,
    stop: _Stop,
    started: float,
    limits: _Limits,
) -> list[str]:
    """Run the CLI to its end; the processes it left running after a normal exit (stopped)."""
    survivors: list[str] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(reader.pump, fds[0], "stdout")
        tasks.start_soon(reader.pump, fds[1], "stderr")
        if stdin is not None:
            tasks.start_soon(_feed, process, stdin)
        deadline = started + limits.total if limits.total is not None else math.inf
        with anyio.CancelScope(deadline=deadline) as waiting:
            stop.scope = waiting
            if limits.idle is not None:
                tasks.start_soon(_watch_idle, reader, limits.idle, stop)
            if limits.cancel is not None:
                tasks.start_soon(_watch_cancel, limits.cancel, stop)
            await process.wait()
        if waiting.cancelled_caught:
            if stop.reason is None:
                stop.reason = "timeout"
            await kill_group(process, family, limits.grace)
        else:
            stop.reason = None
            stop.scope = None  # a watchdog waking now must not mark a finished run
            _signal_group(process.pid, signal.SIGKILL)  # daemons it forked die with it
            survivors = await _sweep(family)  # and so do those that left its group
        with anyio.move_on_after(_DRAIN):
            await reader.finished.wait()
        tasks.cancel_scope.cancel()
    return survivors


async def _spawn(
    adapter: Adapter, spec: CommandSpec, cwd: Path, env: dict[str, str]
) -> tuple[anyio.abc.Process, int, int]:
    out_read, out_write = _pipe(_PIPE_SIZE)
    err_read, err_write = _pipe(None)  # stderr is rarely a flood: the default size will do
    try:
        process = await anyio.open_process(
            spec.argv,
            stdin=subprocess.DEVNULL if spec.stdin is None else subprocess.PIPE,
            stdout=out_write,
            stderr=err_write,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(out_read)
        os.close(err_read)
        raise _start_error(exc, adapter, spec.argv[0], cwd) from None
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        # The child holds its own copies; ours must go, or the pipes never reach end of file.
        os.close(out_write)
        os.close(err_write)
    return process, out_read, err_read


def _start_error(error: OSError, adapter: Adapter, binary: str, cwd: Path) -> Exception:
    if isinstance(error, FileNotFoundError | NotADirectoryError) and not Path(cwd).is_dir():
        return RunError(f"working directory {cwd} does not exist")
    if isinstance(error, FileNotFoundError):
        return AdapterError(
            f"adapter {adapter.name!r}: {binary!r} not found (is the CLI installed and on PATH?)"
        )
    if isinstance(error, PermissionError):
        return AdapterError(f"adapter {adapter.name!r}: {binary!r}: permission denied")
    return RunError(f"adapter {adapter.name!r}: cannot start {binary!r}: {error}")


def _pipe(size: int | None) -> tuple[int, int]:
    read, write = os.pipe()  # both ends close-on-exec: only the dup2'd copies reach the child
    if size is not None and _F_SETPIPE_SZ is not None:
        # A bigger pipe means fewer wake-ups under a flood; refused above pipe-max-size.
        with contextlib.suppress(OSError):
            fcntl.fcntl(read, _F_SETPIPE_SZ, size)
    os.set_blocking(read, False)
    return read, write


async def _feed(process: anyio.abc.Process, text: str) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(text.encode("utf-8"))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the CLI exited or closed stdin without reading it all: its choice
    finally:
        with contextlib.suppress(Exception):
            await process.stdin.aclose()


async def _watch_idle(reader: OutputReader, idle_timeout: float, stop: _Stop) -> None:
    while True:
        remaining = reader.last_output + idle_timeout - time.monotonic()
        if remaining <= 0:
            stop("idle")
            return
        await anyio.sleep(remaining)


async def _watch_cancel(cancel: anyio.Event, stop: _Stop) -> None:
    await cancel.wait()
    stop("cancelled")


def _classify(adapter: Adapter, result: ProcessResult, events: list[AgentEvent]) -> Outcome:
    try:
        return adapter.classify(result, events)
    except Exception as exc:
        log.exception("adapter %r: classify raised", adapter.name)
        return Outcome(
            kind=OutcomeKind.FAILED,
            message=f"adapter {adapter.name!r} could not classify the run: "
            f"{type(exc).__name__}: {exc}",
        )


async def cli_version(adapter: Adapter, *, timeout: float = 10.0) -> str | None:
    """The first line ``adapter.version_command()`` prints, or None if it fails or hangs.

    Runs with the allow-listed environment and a throwaway HOME, like a real run.
    """
    argv = adapter.version_command()
    home = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, None, "council-version-"))
    try:
        await anyio.to_thread.run_sync(prepare_home, home, {})
        env, _ = child_env(adapter.env_names(), {}, {}, home)
        result = await run_command(argv, cwd=home, env=env, timeout=timeout, grace=1.0)
    except RunError:
        return None
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, home, True)
    if not result.ok:
        return None
    return next((line.strip()[:200] for line in result.output.splitlines() if line.strip()), None)
