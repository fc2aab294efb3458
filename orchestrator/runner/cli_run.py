"""One AI CLI invocation through its adapter, end to end.

``run_cli`` runs one AI CLI invocation through its adapter, end to end::

    run = await run_cli(adapter, request, log_dir=repo / ".council" / "logs",
                        idle_timeout=90, total_timeout=600, on_event=table.update)
    run.outcome.kind      # succeeded | failed | rate_limited | timed_out | crashed | ...
    run.outcome.native_session_id   # pass as resume_session_id to continue the conversation

- the command comes from ``adapter.build_command`` (``adapter.resume_command`` when a
  ``resume_session_id`` is given or the request carries one) and runs without a shell, with stdin
  closed (or fed ``CommandSpec.stdin``, then closed), as the leader of a new process group, in
  ``request.workdir``, with the allow-listed environment and private HOME/XDG/TMPDIR under
  ``request.home`` described in ``orchestrator.process.env`` (``CommandSpec.home_files`` are written
  there first, and its ``stderr_files`` linked to the CLI's stderr);
- stdout and stderr are read line by line into ``adapter.parse_line``; memory stays bounded whatever
  the CLI prints (``orchestrator.process.output``, ``orchestrator.runner.event_tail``); every line
  goes, redacted, to ``<log_dir>/<task>-<phase>-<time>-<pid>-<n>.log`` (capped at 50 MB);
- ``idle_timeout`` (seconds without a byte of output), ``total_timeout`` or setting the
  ``cancel`` event (or ``halt``, this call's own: the spend meter's) stop the CLI gracefully:
  SIGTERM to its group and to the family members that left it (``orchestrator.process.tree``:
  descendants, and processes carrying the CLI run's mark in their environment, double-forked
  ``setsid()`` daemons included), ``grace`` seconds, then
  SIGKILL, then one more sweep for marked processes started meanwhile; they return a ``CliRun``
  classified ``timed_out`` or ``cancelled``. Cancelling the calling task means stop now (the
  orchestrator's second Ctrl-C): SIGKILL at once, also when a graceful stop is already waiting
  out its grace period, and the cancellation is re-raised once the group is dead;
- after a normal exit the group and every marked process are killed too, so daemons the CLI forked
  die with it, even those that called ``setsid()`` (the group at once; those that left it after
  the output's short drain, in the one worker-thread call that ends the run: swept, the CLI's
  objects taken in, its log closed, then its ``cli-runs`` record removed). One that also
  dropped its environment escapes (``orchestrator.process.tree`` says why); the runner then
  stops reading its output after a short drain instead of waiting for it;
- an event that settles the run (``Adapter.ends_run``: an auth error; a rate limit where the
  CLI's own retries cannot be capped) stops the CLI at once, gracefully like a timeout, and the
  result says ``ended_early``: no CLI spends minutes retrying what no retry can fix;
- ``adapter.classify`` turns the result and the kept events into the ``Outcome``;
- ``watch`` (a ``CliWatch``) hears the CLI's pid once it started and again once its group is
  dead, so the caller can record running CLIs durably (``orchestrator.runner.cli_runs``): SIGKILL of
  the orchestrator does not reach a CLI in its own group, and a successor must stop it. Every
  process started here also carries the orchestrator's ``procid.MARKER_ENV`` (who started it,
  where ``COUNCIL_RUN_MARK`` says which CLI run), which finds an orphan whose pid was never
  recorded (``orchestrator.runner.orphans``).

Errors: ``AdapterError`` when the CLI's binary cannot be found or the adapter built no
command, ``RunError`` when the working directory is missing, ``PathEscapeError`` when a home
file would land outside HOME. Everything that happens after the start is in the ``CliRun``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc
import anyio.to_thread

from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    CommandSpec,
    ProcessResult,
)
from orchestrator.errors import AdapterError, RunError
from orchestrator.git.objects import adopt_objects
from orchestrator.git.repo import Git
from orchestrator.process import limits as resource_limits
from orchestrator.process.env import home_ready, prepare_home
from orchestrator.process.output import LOG_LIMIT, LogSink, log_name
from orchestrator.process.procid import start_time
from orchestrator.process.started import (
    alone_since,
    cli_ended,
    cli_started,
    own_processes,
    starting,
)
from orchestrator.process.stop import DEFAULT_GRACE, kill_group, reap_group, swept
from orchestrator.process.tree import MARK_NAME, Family
from orchestrator.runner.cli_network import CliNetwork
from orchestrator.runner.cli_result import CliRun, classified, close_log, not_started
from orchestrator.runner.cli_setup import confined_command, environment, prepared
from orchestrator.runner.launch import spawn_cli
from orchestrator.runner.reader import EventCallback, OutputReader
from orchestrator.runner.supervise import Limits, Stop, supervise
from orchestrator.runner.user_config import Carried, forget
from orchestrator.safety import secret_mask
from orchestrator.safety.crashpoints import crash_point
from orchestrator.safety.redaction import Redactor
from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.plan import GitReach, Sandbox
from orchestrator.sandbox.relay import Relays, relays

__all__ = ["CliRun", "CliWatch", "Sandbox", "classified", "run_cli"]

log = logging.getLogger(__name__)


class CliWatch(Protocol):
    """Told each CLI's pid (it leads its own process group) when it has started, and again
    once that group is dead. ``begin`` (blocking; it may raise) is what the runner does as the
    CLI starts, its log created, and answers the CLI's start as ``procid.start_time`` reads it
    (None when it could not be read: the process is gone): the watch calls it once, before it
    records anything, in the worker-thread call that records the CLI where it can (one hop for
    both); when it raises, nothing is recorded. ``end`` (blocking; it may raise) is the
    runner's end of the run (what the CLI left running killed, its log closed): the watch
    calls it once, before it says the CLI ended, in the worker-thread call that does where
    it can; when it raises, the watch says nothing. The runner does ``end`` itself if the
    watch did not."""

    async def began(self, pid: int, begin: Callable[[], str | None]) -> None: ...

    async def ended(self, pid: int, end: Callable[[], None]) -> None: ...


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
    sandbox: Sandbox | None = None,
    halt: anyio.Event | None = None,
    log_file: str | None = None,
) -> CliRun:
    """Run one CLI invocation as the module docstring describes (``log_file``: the log's
    name under ``log_dir``, when the caller chose it; else one is made)."""
    native = resume_session_id or request.resume_session_id
    spec = adapter.resume_command(request, native) if native else adapter.build_command(request)
    if not spec.argv or not spec.argv[0]:
        raise AdapterError(f"adapter {adapter.name!r} built an empty command")
    home, env, redact = environment(adapter, request, spec)
    mark, since = Family.new_mark()
    env[MARK_NAME] = mark
    carried = Carried()
    make_home = False
    if (
        spec.home_files
        or spec.stderr_files
        or spec.config_files
        or adapter.credentials
        or adapter.user_files
    ):
        carried = await anyio.to_thread.run_sync(prepared, home, spec, adapter, request)
    elif not home_ready(home):
        if _confining(sandbox):
            make_home = True  # made in the call that builds the sandbox's command
        else:
            await anyio.to_thread.run_sync(prepare_home, home, {})
    try:
        async with relays() as serving:  # the CLI's relays, if it gets any, served meanwhile
            return await _run_prepared(
                adapter, request, spec, home, env, redact, mark, since, carried,
                log_dir=log_dir, limits=Limits(idle_timeout, total_timeout, grace, cancel, halt),
                on_event=on_event, log_limit=log_limit, watch=watch, sandbox=sandbox,
                serving=serving, log_file=log_file, make_home=make_home,
            )  # fmt: skip
    finally:
        if carried.written:  # settings and MCP servers, with any token in them, leave .council/
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(forget, home, carried)


async def _run_prepared(
    adapter: Adapter,
    request: AdapterRequest,
    spec: CommandSpec,
    home: Path,
    env: dict[str, str],
    redact: Redactor,
    mark: str,
    since: float,
    carried: Carried,
    *,
    log_dir: Path,
    limits: Limits,
    on_event: EventCallback | None,
    log_limit: int,
    watch: CliWatch | None,
    sandbox: Sandbox | None,
    serving: Relays,
    log_file: str | None = None,
    make_home: bool = False,
) -> CliRun:
    grace = limits.grace
    argv = [secret_mask.hidden(redact(arg) if redact else arg) for arg in spec.argv]
    command: list[str] | None = None  # the sandbox's, around the CLI's
    net: CliNetwork | None = None  # its own network, given once it started
    said = sandbox.settings.reason if sandbox is not None else ""
    if sandbox is not None and _confining(sandbox):
        unlooked = sandbox

        def confine() -> tuple[list[str], CliNetwork, Sandbox]:
            if make_home:  # its private HOME first, in the same worker-thread call
                prepare_home(home, {})
            looked = unlooked.reached()  # what it may reach: looked at in this call too
            made, made_net = confined_command(adapter, request, spec, env, looked, carried.readable)
            return made, made_net, looked

        command, confined_net, sandbox = await anyio.to_thread.run_sync(confine)
        net, said = confined_net, confined_net.said
    path = Path(log_dir) / (log_file or log_name(request.task_id, request.phase))
    sink = LogSink(
        path, log_limit, argv, request.workdir, root=Path(log_dir), sandbox=said,
        notes=carried.notes,
    )  # fmt: skip
    if net is not None and net.proxy is not None:  # what it refuses, the CLI's log says
        net.proxy.on_refused = lambda target: sink.note(f"network: model: refused {target}")
    if any(event is not None and event.is_set() for event in (limits.cancel, limits.halt)):
        # Stopped while it was made ready (a phase past its own look at the stop): no CLI
        # started only to be stopped at once.
        resource_limits.ended(command or ())
        if net is not None:
            await net.close()
        return await not_started(adapter, argv, sink)
    try:
        with starting():
            try:
                process, out_fd, err_fd = await spawn_cli(
                    adapter, spec, request.workdir, env, command,
                    pass_fds=net.child_fds() if net is not None else (),
                )  # fmt: skip
            finally:
                if net is not None:
                    net.started()
            cli_started(process.pid, since)
    except BaseException as exc:
        resource_limits.ended(command or ())  # its cgroup, if it had one, was never joined
        await close_log(sink, f"not started: {exc}")  # the start error matters more
        if net is not None:
            await net.close()
        raise
    pid = process.pid
    roots = (str(request.workdir), str(home))  # resolved where they are compared
    family = Family(pid, mark, since, roots, own_processes, lambda: alone_since(pid))
    if net is not None and net.relay is not None:  # listening once the CLI's command starts
        serving.serve(net.relay)
    if net is not None and net.uplink is not None:
        try:
            await net.uplink.attach(pid)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await kill_group(process, family, 0)
                await _close(process, out_fd, err_fd)
                await net.close()
                await close_log(sink, f"not started: {exc}")
                cli_ended(pid)
            raise
    crash_point("cli.spawned")

    def create_log() -> str | None:
        try:
            sink.create()
        except OSError as exc:
            raise _LogNotWritten(exc) from exc
        return start_time(pid) if watch is not None else None  # what the watch records

    try:
        # After the start, so it overlaps the CLI's own start-up; in a worker thread, as the
        # event loop never opens a file: the watch's (its record's), or one of its own.
        if watch is None:
            await anyio.to_thread.run_sync(create_log)
        else:
            await watch.began(pid, create_log)
    except _LogNotWritten as failed:  # raised before anything was recorded
        with anyio.CancelScope(shield=True):
            await kill_group(process, family, grace)
            await _close(process, out_fd, err_fd)
        raise RunError(f"cannot write the run's log {path}: {failed.error}") from failed.error
    except BaseException:
        if watch is None:
            raise
        with anyio.CancelScope(shield=True):  # its log is there: the record failed
            await kill_group(process, family, grace)
            await _close(process, out_fd, err_fd)
            await close_log(sink, "stopped: the run could not be recorded")
            await _ended(watch, process.pid, _End(lambda: None))  # swept by kill_group
        raise
    stop = Stop()
    reader = OutputReader(adapter, redact, sink, on_event, on_settled=lambda _: stop("settled"))
    started = time.monotonic()
    # Its objects are taken in before any git looks at them: with its log's close on the way
    # out (one worker-thread call), on the spot when the run ends otherwise.
    reach = sandbox.reach if command and sandbox is not None else None
    try:
        to_sweep = await supervise(
            process, family, (out_fd, err_fd), spec.stdin, reader, stop, started, limits
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await kill_group(process, family, 0)  # the caller stops now: no grace
            await close_log(sink, "cancelled: the orchestrator stopped this run")
            await _gone(process, out_fd, err_fd, command)
            await _ended(watch, pid, _End(lambda: _adopt(reach) if reach is not None else None))
            if net is not None:  # ends with the sandbox: waited for, never left behind
                await net.close()
        raise
    with anyio.CancelScope(shield=True):
        await _gone(process, out_fd, err_fd, command, swept=False)
    code = process.returncode
    exit_code = code if code is not None and code >= 0 else None
    killed_by = -code if code is not None and code < 0 else None
    if command and exit_code is not None:  # the sandbox's status says how the CLI ended
        exit_code, killed_by = bubblewrap.exit_status(exit_code)
    result = ProcessResult(
        exit_code=exit_code,
        signal=killed_by,
        timed_out=stop.reason == "timeout",
        idle_timed_out=stop.reason == "idle",
        cancelled=stop.reason == "cancelled",
        ended_early=stop.reason == "settled",
        seconds=time.monotonic() - started,
        stderr_tail=reader.stderr.text(),
    )
    events = reader.tail.events()
    outcome = classified(adapter, result, events)
    footer = (
        f"exit_code={result.exit_code} signal={result.signal} seconds={result.seconds:.2f} "
        f"outcome={outcome.kind}"
    )

    def finish() -> list[str]:
        """The run's blocking end, in one worker-thread call, in this order: what the CLI left
        running outside its group killed (a sandbox's own init reaped first), its objects
        taken in, its log closed; then, in the same call where the store makes one, its
        ``cli-runs`` record removed (``CliWatch.ended``): only once nothing of it runs."""
        # Under the sandbox the CLI had a pid namespace of its own, which the kernel empties
        # once its init (reaped first) ends: nothing of it can be left outside its group, and
        # the machine's processes are not looked through for its mark and its directories.
        looked_for = family if command is None else Family(pid)
        survivors = swept(looked_for, first=lambda: reap_group(pid)) if to_sweep else []
        if reach is not None:
            _adopt(reach)
        sink.close(footer)  # its last buffered lines are written
        return survivors

    end = _End(finish)
    with anyio.CancelScope(shield=True):
        try:
            await _ended(watch, pid, end)
        finally:
            cli_ended(pid)  # after its sweep: what it left is told from others' by its run
            if net is not None:  # ends with the sandbox: waited for, never left behind
                await net.close()
    survivors = end.answer or []
    if survivors:
        log.warning("%s left processes running after it exited: %s", argv[0], survivors)
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


class _LogNotWritten(Exception):
    """The run's log not created (``error``): not the watch's own failure."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _End:
    """A run's blocking end (``work``), done once: in the watch's worker-thread call when it
    makes one, else in one of its own (``_ended``)."""

    def __init__(self, work: Callable[[], list[str] | None]) -> None:
        self.work = work
        self.ran = False
        self.failed = False
        self.answer: list[str] | None = None

    def __call__(self) -> None:
        if self.ran:
            return
        self.ran = True
        try:
            self.answer = self.work()
        except BaseException:
            self.failed = True
            raise


async def _gone(
    process: anyio.abc.Process,
    out_fd: int,
    err_fd: int,
    command: Sequence[str] | None,
    *,
    swept: bool = True,
) -> None:
    """The CLI's process is over: its cgroup freed, its pipes closed; its start forgotten
    once its family is ``swept`` (until then, ``started.alone_since`` lets the sweep take
    what it left behind for its own), else by the caller after the sweep."""
    if swept:
        cli_ended(process.pid)
    resource_limits.ended(command or ())  # its cgroup is the next launch's once empty
    await _close(process, out_fd, err_fd)


async def _ended(watch: CliWatch | None, pid: int, end: _End) -> None:
    """``end`` done, then the watch told the CLI ended (its record removed after ``end``, in
    the same worker-thread call where the store makes one). ``end`` is done whatever the
    watch does; what it raises is raised, after the watch's own failure is only logged."""
    if watch is not None:
        try:
            await watch.ended(pid, end)
        except Exception as exc:
            if end.failed:
                raise
            # The record stays, naming a process that is gone: whoever stops orphans later
            # finds nothing to kill and drops it. Not worth failing a finished run for.
            log.warning("pid %d ended but could not be recorded as ended: %s", pid, exc)
    if not end.ran:
        await anyio.to_thread.run_sync(end)


async def _close(process: anyio.abc.Process, out_fd: int, err_fd: int) -> None:
    # The pumps are done with the descriptors: the task group that ran them has exited.
    os.close(out_fd)
    os.close(err_fd)
    with contextlib.suppress(Exception):
        await process.aclose()  # the process has exited: this only releases its transport


def _adopt(reach: GitReach) -> None:
    if reach.objects is None or reach.shared_objects is None:
        return
    adopted = adopt_objects(reach.objects, reach.shared_objects, Git(reach.repo_root, None))
    if adopted.refused:
        log.warning(
            "objects the CLI wrote that are not what their names say were dropped: %s",
            "; ".join(adopted.refused[:5]),
        )


def _confining(sandbox: Sandbox | None) -> bool:
    """Whether the CLI runs inside ``sandbox`` (it has a reach and a binary to run)."""
    return sandbox is not None and sandbox.confines
