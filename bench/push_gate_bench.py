"""What the secret check before a team publication costs (``merge.push_gate``, issue 46).

A bare remote and a clone; each round makes two fresh session branches with the same phase of
work (``--files`` files of ``--kib`` KiB of random numbers, one commit, each branch its
own bytes) and publishes one
without a check and one through the push gate (order alternating, so machine noise hits both
alike), then a second phase's commit on the gated branch (one more file) published again, and
last the landing's own check of that tip. Printed: the median wall time of each, and the git
processes the gated publications and the landing check started (``GitCalls.count``: the
landing check of a tip found clean at its publication starts none). No figure is asserted
anywhere; ``--json`` prints them for a script.

    python bench/push_gate_bench.py [--files 20] [--kib 64] [--rounds 7] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.git.merge_tree import GitCalls  # noqa: E402
from orchestrator.git.publish import publish_branch  # noqa: E402
from orchestrator.git.repo import Git  # noqa: E402
from orchestrator.merge.push_gate import PushGate  # noqa: E402
from orchestrator.merge.secret_gate import SecretGate  # noqa: E402

SECRET = "bench-push-gate-5f0c2a9e1d7b"


def _git(repo: Path, *args: str, data: bytes | None = None, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True)
    if done.returncode and check:
        raise SystemExit(f"git {' '.join(args)} failed in {repo}: {done.stderr.decode().strip()}")
    return done.stdout.decode().strip()


def _commit(repo: Path, branch: str, files: dict[str, bytes]) -> str:
    """One commit of ``files`` on ``branch`` (made at main when missing), without a checkout."""
    parent = _git(
        repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
    )
    parent = parent or _git(repo, "rev-parse", "main")
    index = repo / ".git" / "bench-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    subprocess.run(["git", "-C", str(repo), "read-tree", parent], env=env, check=True)
    for name, content in files.items():
        blob = _git(repo, "hash-object", "-w", "--stdin", data=content)
        subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "update-index",
                "--add",
                "--cacheinfo",
                f"100644,{blob},{name}",
            ],
            env=env,
            check=True,
        )
    tree = (
        subprocess.run(
            ["git", "-C", str(repo), "write-tree"], env=env, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    commit = _git(repo, "commit-tree", tree, "-p", parent, "-m", "phase work")
    _git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def _work(files: int, kib: int, tag: str) -> dict[str, bytes]:
    """``files`` files of ``kib`` KiB each, different every time: lines of random numbers, as
    unlike each other as random base64 but never what a credential detector takes for a key
    (random base64 sometimes was, and the gate refused the bench's own work)."""
    return {f"src/{tag}-{n}.txt": _numbers(kib * 1024) for n in range(files)}


def _numbers(size: int) -> bytes:
    lines: list[str] = []
    written = 0
    while written < size:
        line = f"v{len(lines)} = {random.getrandbits(64)}\n"
        lines.append(line)
        written += len(line)
    return "".join(lines).encode()


async def _round(repo: Path, number: int, files: int, kib: int) -> dict[str, float]:
    git = Git(repo, repo / ".council" / "git-hooks")
    common = repo / ".git"
    secrets = SecretGate(lambda: {SECRET: "BENCH_TOKEN"})
    gate = PushGate(secrets, ["refs/remotes/origin/main", "refs/heads/main"], common)
    plain, gated = f"council/plain{number}/1", f"council/gated{number}/1"
    _commit(repo, plain, _work(files, kib, f"r{number}-plain"))  # as much, not the same
    _commit(repo, gated, _work(files, kib, f"r{number}-gated"))
    counted: list[int] = []

    def check(calls: GitCalls, ref: str, tip: str, published: str | None) -> None:
        before = calls.count
        gate.check(calls, ref, tip, published)
        counted.append(calls.count - before)

    figures: dict[str, float] = {}
    order = [("plain", plain, None), ("gated", gated, check)]
    for name, branch, given in order if number % 2 else reversed(order):
        start = time.perf_counter()
        await publish_branch(git, "origin", branch, common, given)
        figures[name] = time.perf_counter() - start
    second = _commit(repo, gated, _work(1, kib, f"r{number}-next"))
    start = time.perf_counter()
    await publish_branch(git, "origin", gated, common, check)
    figures["gated_next"] = time.perf_counter() - start
    calls = GitCalls(git)
    start = time.perf_counter()
    secrets.check(calls, gated, second, _git(repo, "rev-parse", "origin/main"), common)
    figures["landing_check"] = time.perf_counter() - start
    figures["git_first"], figures["git_next"] = counted
    figures["git_landing"] = calls.count
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--kib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="4 files, 2 rounds (CI)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.files, args.rounds = 4, 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        remote, repo = root / "remote.git", root / "ws"
        _git(root, "init", "-q", "--bare", "-b", "main", str(remote))
        _git(root, "clone", "-q", str(remote), str(repo))
        _git(repo, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-q",
             "--allow-empty", "-m", "first")  # fmt: skip
        _git(repo, "push", "-q", "origin", "main")
        _git(repo, "fetch", "-q", "origin")
        os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
        os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@x")
        os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
        os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@x")
        rounds = [
            anyio.run(_round, repo, n, args.files, args.kib) for n in range(1, args.rounds + 1)
        ]
    keys = rounds[0].keys()
    medians = {key: statistics.median(r[key] for r in rounds) for key in keys}
    if args.json:
        print(json.dumps(medians))
        return
    mib = args.files * args.kib / 1024
    print(f"one phase of {args.files} files, {mib:.2f} MiB; median of {args.rounds} rounds")
    print(f"publish, no check:             {medians['plain'] * 1000:8.1f} ms")
    print(
        f"publish through the push gate: {medians['gated'] * 1000:8.1f} ms "
        f"({medians['git_first']:.0f} git processes for the check)"
    )
    print(
        f"next phase's publication:      {medians['gated_next'] * 1000:8.1f} ms "
        f"({medians['git_next']:.0f} git processes; only the new commit read)"
    )
    print(
        f"the landing's check after:     {medians['landing_check'] * 1000:8.1f} ms "
        f"({medians['git_landing']:.0f} git processes)"
    )


if __name__ == "__main__":
    main()
