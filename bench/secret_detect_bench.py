"""What the check for credentials nobody declared costs, per MiB and per landed task.

The landing gate reads the lines a branch adds (``merge.secret_added``: one ``git diff -U0``)
and looks at them with ``safety.secret_detect`` (detect-secrets' plugins and council's own
shapes). Its cost depends on what the lines hold, so the corpus is real code: this
repository's own tracked text files, repeated to ``--mib`` MiB, added by one branch of a fresh
repository. Rounds alternating so machine noise hits all alike, each side runs as a process:

- ``cat``: ``cat`` of the same bytes (one file) to ``/dev/null``, reading them and no more;
- ``detect``: a Python process running ``secret_added.added`` of the branch (the git process
  a landing starts, and the detector on every added line);
- ``python``: the same Python process, its imports done (detect-secrets' too), doing no check:
  subtracted from ``detect`` so the figure is the check's own.

Then the cost per landed task: a process checks ``--tasks`` branches of ``--task-kib`` KiB
each (a task's typical diff), the checker built once as the gate's is, and says the median
wall and CPU of one check. It prints the hits the corpus gave (the detector's false alarms on
this repository's code, which holds no real credential), the figures, and the ratios detect /
cat. No figure is asserted anywhere; ``--json`` prints them for a script.

    python bench/secret_detect_bench.py [--mib 16] [--rounds 5] [--tasks 20] [--quick] [--json]
"""

from __future__ import annotations

import argparse
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


def _cpu_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    wall, cpu = time.perf_counter(), _cpu_children()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - wall, _cpu_children() - cpu, done.stdout


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def _corpus() -> list[tuple[str, bytes]]:
    """This repository's tracked text files (the bench's own corpus of real code)."""
    names = _git(ROOT, "ls-files", "*.py", "*.md", "*.toml", "*.yaml", "*.yml").split("\n")
    files = []
    for name in names:
        path = ROOT / name
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if b"\0" not in data:
                files.append((name, data))
    if not files:
        raise SystemExit(f"no text file tracked in {ROOT}")
    return files


def _repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Bench")
    _git(repo, "config", "user.email", "bench@example.com")
    (repo / "README.md").write_text("bench\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "initial")
    return repo


def _branch(repo: Path, name: str, files: list[tuple[str, bytes]], size: int) -> int:
    """Branch ``name`` off ``main`` adding ``size`` bytes of ``files`` (cycled); its bytes."""
    _git(repo, "switch", "-q", "-c", name, "main")
    written, copy = 0, 0
    while written < size:
        for rel, data in files:
            path = repo / name.replace("/", "-") / str(copy) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written += len(data)
            if written >= size:
                break
        copy += 1
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", name)
    _git(repo, "switch", "-q", "--detach", "main")
    return written


CHILD = """
import json, statistics, sys, time
from pathlib import Path
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.secret_added import added
from orchestrator.safety.secret_detect import Detector
mode, repo, base = sys.argv[1:4]
calls, detector = GitCalls(Git(Path(repo), None)), Detector(allow=[])
if mode == "detect":
    found = added(calls, "big", base, detector)
    assert found.late is None
    print(json.dumps({"hits": len(found.hits), "lines": found.lines}))
elif mode == "tasks":
    walls, cpus = [], []
    for tip in sys.argv[4:]:
        wall, cpu = time.perf_counter(), time.process_time()
        added(calls, tip, base, detector)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    print(json.dumps({"wall": statistics.median(walls), "cpu": statistics.median(cpus)}))
"""


def main(mib: int, rounds: int, tasks: int, task_kib: int, as_json: bool) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C"}
    files = _corpus()
    with tempfile.TemporaryDirectory() as tmp:
        repo = _repo(Path(tmp))
        size = _branch(repo, "big", files, mib << 20)
        flat = Path(tmp) / "flat"
        _git(repo, "switch", "-q", "big")
        with flat.open("wb") as out:  # the same bytes, one file, for cat
            for path in sorted((repo / "big").rglob("*")):
                if path.is_file():
                    out.write(path.read_bytes())
        _git(repo, "switch", "-q", "--detach", "main")
        base = _git(repo, "rev-parse", "main")
        small = [f"task/{n}" for n in range(tasks)]
        shift = files[len(files) // 3 :] + files[: len(files) // 3]
        for n, name in enumerate(small):
            _branch(repo, name, shift[n % len(shift) :] + shift[: n % len(shift)], task_kib << 10)
        python = [sys.executable, "-c", CHILD]
        sides = {
            "cat": ["cat", str(flat)],
            "detect": [*python, "detect", str(repo), base],
            "python": [*python, "none", str(repo), base],
        }
        walls: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        said: dict[str, int] = {}
        for _ in range(rounds):
            for name, argv in sides.items():
                wall, cpu, out = _timed(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                if name == "detect":
                    said = json.loads(out)
        per_task = json.loads(_timed([*python, "tasks", str(repo), base, *small], env)[2])
    scanned = size / (1 << 20)
    wall = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    wall["detect"] = max(wall["detect"] - wall["python"], 1e-9)
    cpu["detect"] = max(cpu["detect"] - cpu["python"], 1e-9)
    per_mib = {
        name: {"wall_ms": wall[name] * 1000 / scanned, "cpu_ms": cpu[name] * 1000 / scanned}
        for name in ("cat", "detect")
    }
    ratio = {
        "wall": wall["detect"] / max(wall["cat"], 1e-9),
        "cpu": cpu["detect"] / max(cpu["cat"], 1e-9),
    }
    result: dict[str, object] = {
        "mib": round(scanned, 2),
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "lines": said.get("lines", 0),
        "hits_in_corpus": said.get("hits", 0),
        "python_start_ms": {"wall": wall["python"] * 1000, "cpu": cpu["python"] * 1000},
        "per_mib": per_mib,
        "detect / cat": ratio,
        "per_task": {
            "kib": task_kib,
            "tasks": tasks,
            "wall_ms": per_task["wall"] * 1000,
            "cpu_ms": per_task["cpu"] * 1000,
        },
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return result
    print(
        f"{scanned:.1f} MiB of this repository's code added ({result['lines']} lines), "
        f"{rounds} rounds, {os.cpu_count()} CPUs (Python's start and imports, "
        f"{wall['python'] * 1000:.0f} ms, taken out); hits in the corpus: "
        f"{result['hits_in_corpus']}"
    )
    for name, cost in per_mib.items():
        print(f"  {name:7} wall {cost['wall_ms']:8.2f} ms/MiB   cpu {cost['cpu_ms']:8.2f} ms/MiB")
    print(f"detect / cat: wall {ratio['wall']:.1f}x, cpu {ratio['cpu']:.1f}x")
    print(
        f"per landed task ({task_kib} KiB added, median of {tasks}): "
        f"wall {per_task['wall'] * 1000:.1f} ms, cpu {per_task['cpu'] * 1000:.1f} ms"
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=16, help="code added by the big branch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20, help="task branches checked")
    parser.add_argument("--task-kib", type=int, default=32, help="what each task adds")
    parser.add_argument("--quick", action="store_true", help="4 MiB, 3 rounds, 10 tasks (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if min(args.mib, args.rounds, args.tasks, args.task_kib) < 1:
        parser.error("--mib, --rounds, --tasks and --task-kib must each be at least 1")
    if args.quick:
        main(4, 3, 10, args.task_kib, args.json)
    else:
        main(args.mib, args.rounds, args.tasks, args.task_kib, args.json)
