"""What the secret checks cost per MiB scanned, against reading the same bytes.

The merge gate (``merge.secret_scan``) reads every object a landing brings, whatever its
size, streamed through ``safety.secret_stream`` (whitespace taken out, one search per form of
each known secret); the worktree scrub (``safety.secret_scrub``) does the same to a file.
One file of ``--mib`` MiB of base64 text wrapped at 76 characters (random bytes: every byte
is looked at, and the whitespace taken out is real work) is committed in a fresh repository,
then, rounds alternating so machine noise hits all alike, each side runs as a process:

- ``cat``: ``cat <file> > /dev/null``, reading the bytes and nothing else;
- ``git cat-file``: ``git cat-file --batch`` of the commit, its tree and the blob, what the
  gate reads through (git inflating the blob);
- ``gate``: a Python process running ``secret_scan.scan`` of the branch (the same two git
  processes a landing starts);
- ``scrub``: a Python process running ``secret_scrub.scrub_sync`` on the file;
- ``python``: the same Python process doing no scan (its start and imports), subtracted from
  the two above so the figures are the scan's own.

It prints the median wall and CPU (this process's children) per MiB of each side and the
ratios the checks are judged by: gate / cat and scrub / cat (and gate / git cat-file). No
figure is asserted anywhere; ``--json`` prints them for a script.

    python bench/secret_scan_bench.py [--mib 128] [--rounds 5] [--secrets 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "BENCH_SCAN_TOKEN"


def _cpu_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu_children()
    subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - wall, _cpu_children() - cpu


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def _make(root: Path, mib: int) -> tuple[Path, Path, str, str]:
    """A repository whose branch ``big`` adds ``data.b64`` (``mib`` MiB) to ``main``."""
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Bench")
    _git(repo, "config", "user.email", "bench@example.com")
    (repo / "README.md").write_text("bench\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "initial")
    data = root / "data.b64"
    with data.open("wb") as out:
        for _ in range(mib):
            out.write(base64.encodebytes(os.urandom(3 * 1024 * 256))[: 1024 * 1024])
    _git(repo, "switch", "-q", "-c", "big")
    os.link(data, repo / "data.b64")
    _git(repo, "add", "data.b64")
    _git(repo, "commit", "-q", "-m", "data")
    tip, base = _git(repo, "rev-parse", "big"), _git(repo, "rev-parse", "main")
    _git(repo, "switch", "-q", "--detach", "main")
    return repo, data, tip, base


CHILD = """
import sys, time
from pathlib import Path
mode, repo, tip, base, data = sys.argv[1:6]
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge import secret_scan
from orchestrator.safety import secret_mask, secret_scrub
if mode == "gate":
    needles = secret_scan.needles_for(secret_mask.names())
    found = secret_scan.scan(GitCalls(Git(Path(repo), None)), [tip], [base], needles)
    assert not found.findings and not found.late, (found.findings, found.late)
elif mode == "scrub":
    assert secret_scrub.scrub_sync(Path(data).parent, [Path(data).name]) == []
"""


def main(mib: int, rounds: int, count: int, as_json: bool) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C"}
    for n in range(count):
        env[f"{NAME}_{n}"] = f"tok-{os.urandom(16).hex()}"
    with tempfile.TemporaryDirectory() as tmp:
        repo, data, tip, base = _make(Path(tmp), mib)
        python = [sys.executable, "-c", CHILD]
        objects = "\n".join([tip, _git(repo, "rev-parse", "big^{tree}"), "big:data.b64"]) + "\n"
        sides = {
            "cat": (["cat", str(data)], None),
            "git cat-file": (["git", "-C", str(repo), "cat-file", "--batch"], objects.encode()),
            "gate": ([*python, "gate", str(repo), tip, base, str(data)], None),
            "scrub": ([*python, "scrub", str(repo), tip, base, str(data)], None),
            "python": ([*python, "none", str(repo), tip, base, str(data)], None),
        }
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(rounds):
            for name, (argv, stdin) in sides.items():
                wall, cpu = _timed(argv, env, stdin)
                walls[name].append(wall)
                cpus[name].append(cpu)
    wall = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    for name in ("gate", "scrub"):  # the scan's own: Python's start and imports taken out
        wall[name] = max(wall[name] - wall["python"], 1e-9)
        cpu[name] = max(cpu[name] - cpu["python"], 1e-9)
    per_mib = {
        name: {"wall_ms": wall[name] * 1000 / mib, "cpu_ms": cpu[name] * 1000 / mib}
        for name in ("cat", "git cat-file", "gate", "scrub")
    }
    ratios = {
        f"{side} / {ref}": {
            "wall": wall[side] / max(wall[ref], 1e-9),
            "cpu": cpu[side] / max(cpu[ref], 1e-9),
        }
        for side, ref in (("gate", "cat"), ("scrub", "cat"), ("gate", "git cat-file"))
    }
    result: dict[str, object] = {
        "mib": mib,
        "rounds": rounds,
        "secrets": count,
        "cpus": os.cpu_count(),
        "python_start_ms": {"wall": wall["python"] * 1000, "cpu": cpu["python"] * 1000},
        "per_mib": per_mib,
        "ratios": ratios,
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return result
    print(
        f"{mib} MiB of wrapped base64, {count} known secrets, {rounds} rounds, "
        f"{os.cpu_count()} CPUs (Python's start, {wall['python'] * 1000:.0f} ms, taken out)"
    )
    for name, cost in per_mib.items():
        print(f"  {name:13} wall {cost['wall_ms']:7.2f} ms/MiB   cpu {cost['cpu_ms']:7.2f} ms/MiB")
    for name, ratio in ratios.items():
        print(f"{name}: wall {ratio['wall']:.2f}x, cpu {ratio['cpu']:.2f}x")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=128, help="size of the file scanned")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--secrets", type=int, default=3, help="known secrets looked for")
    parser.add_argument("--quick", action="store_true", help="16 MiB, 3 rounds (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.mib < 1 or args.rounds < 1 or args.secrets < 1:
        parser.error("--mib, --rounds and --secrets must each be at least 1")
    mib, rounds = (16, 3) if args.quick else (args.mib, args.rounds)
    main(mib, rounds, args.secrets, args.json)
