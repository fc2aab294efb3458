"""What the sandbox adds to one CLI launch: ``run_cli`` of ``/bin/true`` confined by bubblewrap
against the same ``run_cli`` unconfined, and ``bwrap`` around ``/bin/true`` against a bare
``/bin/true``, in the same run, rounds alternating so machine noise hits every side alike.
The confined sides are as a run has them: a user namespace with no capability and the default
resource limits (``prlimit`` inside; as root a cgroup made for each launch and joined by a
``/bin/sh`` outside); ``bwrap as before`` is the command line without either, for the cost of
the two.

Each side is a whole process start (the sandboxed one as the runner builds it: the plan of a
real session worktree, its private HOME, the git pieces a commit needs, a hidden HOME and
``.council/``); with ``slirp4netns`` here, also the default network (a namespace of the CLI's
own, its helper attached before the CLI starts: ``orchestrator.sandbox.network``). Wall time
is per launch; CPU is this process's plus its children's
(``RUSAGE_SELF`` + ``RUSAGE_CHILDREN``) per launch. Medians of the rounds. Goal: the sandbox
adds at most 20 ms of wall time per launch over an unconfined one.

Two more sides measure the relays (``orchestrator.sandbox.relay``): a CLI whose model is on
this machine's loopback (its port relayed into its own network: the launcher in front of the
CLI), and ``network: model`` (no route out, the allow-list proxy relayed in). Then the
relay's throughput: a CLI (Python) reads ``--stream-mb`` MB from a server on the machine's
loopback, unconfined and straight, then confined through the relay; the bytes' share of each
launch's time gives MB/s.

    python bench/sandbox_bench.py [--runs 40] [--rounds 5] [--stream-mb 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from adapters.command import CommandAdapter
from orchestrator.adapter import AdapterRequest
from orchestrator.config.sandbox import LimitsConfig
from orchestrator.process.limits import describe, ended
from orchestrator.process.subreaper import become_subreaper
from orchestrator.runner.cli_run import Sandbox, run_cli
from orchestrator.sandbox import bubblewrap, choice, network
from orchestrator.sandbox.plan import GitReach, SandboxSettings, confinement

TRUE = "/bin/true"
# Reads everything the server at 127.0.0.1:<argv[1]> sends; says how many bytes.
READER = """
import socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
got = 0
while True:
    chunk = conn.recv(1 << 20)
    if not chunk:
        break
    got += len(chunk)
print(got)
"""


class Streamer:
    """A server on the machine's loopback sending ``size`` bytes to each connection (in a
    thread of its own: not the event loop the relay runs in)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        block = b"x" * (1 << 20)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                left = self.size
                while left > 0:
                    conn.sendall(block[: min(left, len(block))])
                    left -= len(block)


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


async def timed(runs: int, once: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Wall and CPU seconds per run of ``once``, run ``runs`` times one after another."""
    wall, used = time.perf_counter(), cpu()
    for _ in range(runs):
        await once()
    return (time.perf_counter() - wall) / runs, (cpu() - used) / runs


def session(root: Path) -> tuple[GitReach, Path, Path]:
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    council = repo / ".council"
    worktree, home = council / "worktrees" / "s1", council / "homes" / "t" / "cli" / "build"
    admin = repo / ".git" / "worktrees" / "s1"
    for directory in (worktree, home, admin, repo / ".git" / "refs" / "heads" / "council" / "t"):
        directory.mkdir(parents=True, exist_ok=True)
    (worktree / ".git").write_text(f"gitdir: {admin}\n")
    for name in ("commondir", "gitdir", "config.worktree"):
        (admin / name).write_text("")
    own_refs = repo / ".git" / "refs" / "heads" / "council" / "t"
    writable = (repo / ".git" / "objects", admin, own_refs)
    sealed = (worktree / ".git", admin / "commondir", admin / "gitdir", admin / "config.worktree")
    return GitReach(repo, council, writable, sealed), worktree, home


async def main(runs: int, rounds: int, stream_mb: int, as_json: bool) -> None:
    binary, reason = await choice.probe()
    if binary is None:
        sys.exit(f"no sandbox to measure: {reason}")
    say = functools.partial(print, file=sys.stderr if as_json else sys.stdout)
    figures: dict[str, object] = {}
    say(f"sandbox: {reason}; child subreaper: {'yes' if become_subreaper() else 'no'}")
    with tempfile.TemporaryDirectory(prefix="council-sandbox-bench-", dir=Path.cwd()) as tmp:
        root = Path(tmp)
        reach, worktree, home = session(root)
        limits = choice.limits_of(LimitsConfig())
        settings = SandboxSettings("bubblewrap", binary, reason=reason, limits=limits)
        say(f"limits: {describe(limits)}")
        adapter = CommandAdapter({"binary": TRUE, "args": ["{prompt}"]})
        request = AdapterRequest(prompt="hello", workdir=worktree, home=home, task_id="bench")
        sandbox = Sandbox(settings, reach)
        # The default network: a namespace of its own, joined by its helper (sandbox.network).
        why = network.problem()
        helper = network.find() if why is None else None
        if helper is None:
            say(f"network namespace: not measured ({why})")
        own_net = Sandbox(dataclasses.replace(settings, uplink=helper), reach)
        plan = confinement(
            settings, reach, workdir=worktree, home=home, argv=[TRUE], env={"PATH": "/usr/bin:/bin"}
        )
        unlimited = confinement(
            SandboxSettings("bubblewrap", binary, reason=reason),
            reach,
            workdir=worktree,
            home=home,
            argv=[TRUE],
            env={"PATH": "/usr/bin:/bin"},
        )
        before = bubblewrap.command(binary, unlimited, [TRUE])
        before = [before[0], *before[1 + len(bubblewrap.NAMESPACES) :]]

        async def bare() -> None:
            await anyio.run_process([TRUE], check=False)

        async def bwrap_before() -> None:
            done = await anyio.run_process(before, check=False)
            assert done.returncode == 0, done.stderr

        async def bwrap() -> None:
            # Built for each launch, as a run does: a cgroup of its own where one is made.
            wrapped = await anyio.to_thread.run_sync(bubblewrap.command, binary, plan, [TRUE])
            done = await anyio.run_process(wrapped, check=False)
            ended(wrapped)  # as a run says it: the cgroup is the next launch's
            assert done.returncode == 0, done.stderr

        async def runner() -> None:
            run = await run_cli(adapter, request, log_dir=root / "logs")
            assert run.ok, run.outcome

        async def confined() -> None:
            run = await run_cli(adapter, request, log_dir=root / "logs", sandbox=sandbox)
            assert run.ok, run.outcome

        async def confined_net() -> None:
            run = await run_cli(adapter, request, log_dir=root / "logs", sandbox=own_net)
            assert run.ok, run.outcome

        # A model on this machine's loopback: its port relayed into the CLI's own network.
        local = request.model_copy(update={"env": {"MODEL_BASE_URL": "http://127.0.0.1:9999"}})
        only_model = Sandbox(dataclasses.replace(settings, only_model=True), reach)

        async def confined_relay() -> None:
            run = await run_cli(adapter, local, log_dir=root / "logs", sandbox=own_net)
            assert run.ok, run.outcome

        async def confined_model() -> None:
            run = await run_cli(adapter, request, log_dir=root / "logs", sandbox=only_model)
            assert run.ok, run.outcome

        sides = {
            "bare": bare,
            "bwrap as before": bwrap_before,
            "bwrap": bwrap,
            "run_cli": runner,
            "run_cli sandboxed": confined,
        }
        if helper is not None:
            sides["run_cli sandboxed+net"] = confined_net
            sides["sandboxed+net+relay"] = confined_relay
        sides["sandboxed, net: model"] = confined_model
        for once in sides.values():  # warm: private home made, caches filled
            await once()
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(rounds):
            for name, once in sides.items():
                wall, used = await timed(runs, once)
                walls[name].append(wall)
                cpus[name].append(used)
        median = {name: statistics.median(values) for name, values in walls.items()}
        spent = {name: statistics.median(values) for name, values in cpus.items()}
        figures["ms"] = {n: {"wall": median[n] * 1e3, "cpu": spent[n] * 1e3} for n in sides}
        for name in sides:
            say(f"{name:<22} wall {median[name] * 1e3:7.2f} ms   cpu {spent[name] * 1e3:7.2f} ms")
        pairs = [
            ("bwrap over bare", "bare", "bwrap"),
            ("userns+limits add", "bwrap as before", "bwrap"),
            ("run_cli: sandbox adds", "run_cli", "run_cli sandboxed"),
        ]
        if helper is not None:
            pairs.append(("run_cli: sandbox+net adds", "run_cli", "run_cli sandboxed+net"))
            pairs.append(("loopback model relay adds", "run_cli", "sandboxed+net+relay"))
        pairs.append(("network: model adds", "run_cli", "sandboxed, net: model"))
        for label, base, other in pairs:
            added = (median[other] - median[base]) * 1e3
            say(
                f"{label:<26} {added:+7.2f} ms wall ({median[other] / median[base]:.2f}x), "
                f"{(spent[other] - spent[base]) * 1e3:+7.2f} ms cpu   "
                f"goal: at most +20 ms wall: {'met' if added <= 20 else 'NOT met'}"
            )

        if helper is not None and stream_mb > 0:
            streamed = await throughput(
                root, reach, worktree, home, own_net, stream_mb, rounds, say
            )
            figures["stream_ms"] = {name: spent * 1e3 for name, spent in streamed.items()}
    if as_json:
        print(json.dumps({"runs": runs, "rounds": rounds, **figures}, indent=2))


async def throughput(
    root: Path,
    reach: GitReach,
    worktree: Path,
    home: Path,
    own_net: Sandbox,
    mb: int,
    rounds: int,
    say: Callable[[str], None],
) -> dict[str, float]:
    """MB/s of a stream from the machine's loopback: straight (unconfined) and through the
    relay (confined, the server's port the model endpoint): each launch's time with the
    stream less its time with an empty one."""
    results: dict[str, list[float]] = {"straight": [], "relayed": []}
    for size in (0, mb << 20):
        server = Streamer(size)
        try:
            adapter = CommandAdapter(
                {"binary": sys.executable, "args": ["-c", READER, str(server.port), "{prompt}"]}
            )
            env = {"MODEL_BASE_URL": f"http://127.0.0.1:{server.port}"}
            request = AdapterRequest(
                prompt="p", workdir=worktree, home=home, task_id="bench", env=env
            )
            for name, sandbox in (("straight", None), ("relayed", own_net)):
                walls = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    run = await run_cli(adapter, request, log_dir=root / "logs", sandbox=sandbox)
                    walls.append(time.perf_counter() - started)
                    assert run.ok, run.outcome
                results[name].append(statistics.median(walls))
        finally:
            server.sock.close()
    added: dict[str, float] = {}
    for name, (empty, full) in results.items():
        spent = added[name] = full - empty
        rate = f"{mb / spent:8.1f} MB/s" if spent > 0 else "below the noise: try more --stream-mb"
        say(f"stream of {mb} MB {name:<9} +{spent * 1e3:8.1f} ms   {rate}")
    return added


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stream-mb", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="5 runs, 2 rounds, 4 MB streamed (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    if options.quick:
        options.runs, options.rounds, options.stream_mb = 5, 2, 4
    anyio.run(main, options.runs, options.rounds, options.stream_mb, options.json)
