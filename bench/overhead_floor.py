"""The bare script: the least work that lands ``--tasks`` one-file tasks, ``--capacity`` at once.

``overhead_bench.py`` runs it as a process (``python -I -S bench/overhead_floor.py REPO ...``:
standard library only, no site-packages) against ``council run`` on a copy of the same
repository. Per task, in a thread of a pool of ``--capacity``:

1. ``git worktree add -q -B bare/tN <worktree> main``: branch and checkout in one process, no
   lock of ours around it (git locks what it writes; where a concurrent git held a lock it
   needed, what the failed add left is cleared and it is tried again: each retry is said on
   stderr and counted);
2. the CLI, as the ``scripted`` adapter starts it (``python -I -S scripted_cli.py ... -p
   PROMPT``), in the worktree with a private ``HOME``;
3. ``git add -A`` and ``git commit``;
4. landing, under one in-process lock (landings are serial in Council too): ``git merge-tree
   --write-tree TIP bare/tN``, ``git commit-tree`` (a merge commit with the task's
   ``Council-Task`` trailer) and ``git merge --ff-only`` in the base's checkout (the branch and
   the checked-out files move in one process, as Council's base checkout follows its tip); the
   tip is kept in memory;
5. ``git worktree remove --force`` and ``git branch -D`` (no lock of ours either).

That is 8 git processes and one CLI per task; nothing is written but what git writes (no state,
no logs), so nothing is fsynced beyond git's own defaults, on both sides. It prints one JSON
line: the git processes it started and the seconds it took.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPTED = Path(__file__).resolve().parent.parent / "adapters" / "scripted_cli.py"
BASE = "main"
TRIES = 5


class Floor:
    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.merge_lock = threading.Lock()
        self.count_lock = threading.Lock()
        self.git_processes = 0
        self.retries = 0
        self.tip = self.git(repo, "rev-parse", BASE).strip()
        self.worktrees = repo / ".bare" / "worktrees"
        self.homes = repo / ".bare" / "homes"
        self.worktrees.mkdir(parents=True)
        with (repo / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write(".bare/\n")

    def git(self, where: Path, *args: str, tries: int = 1) -> str:
        for attempt in range(tries):
            with self.count_lock:
                self.git_processes += 1
            done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True)
            if done.returncode == 0:
                return done.stdout
            if attempt + 1 < tries:
                self.retried(args, done.stderr)
                time.sleep(0.01)
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")

    def retried(self, args: tuple[str, ...], error: str) -> None:
        with self.count_lock:
            self.retries += 1
        print(f"tried again: git {' '.join(args)}: {error.strip()}", file=sys.stderr)

    def add_worktree(self, branch: str, path: Path) -> None:
        """``worktree add -b``; where git's locking made it fail half-way, what it left is
        cleared (its directory, its record, the branch it had made) and it is tried again."""
        for attempt in range(TRIES):
            with self.count_lock:
                self.git_processes += 1
            argv = ["git", "-C", str(self.repo), "worktree", "add", "-q", "-B", branch, str(path)]
            done = subprocess.run([*argv, BASE], capture_output=True, text=True)
            if done.returncode == 0:
                return
            if attempt + 1 == TRIES:
                raise RuntimeError(f"git worktree add {path} failed: {done.stderr}")
            self.retried(("worktree", "add", str(path)), done.stderr)
            shutil.rmtree(path, ignore_errors=True)
            self.git(self.repo, "worktree", "prune")
            time.sleep(0.01)

    def task(self, n: int) -> None:
        branch, path, home = f"bare/t{n}", self.worktrees / f"t{n}", self.homes / f"t{n}"
        self.add_worktree(branch, path)
        home.mkdir(parents=True)
        argv = [sys.executable, "-I", "-S", str(SCRIPTED), "--output-format", "stream-json"]
        argv += ["--persona", "default", "--delay", "0.0", "-p", prompt_for(n)]
        env = {**os.environ, "HOME": str(home)}
        subprocess.run(argv, cwd=path, env=env, check=True, capture_output=True)
        self.git(path, "add", "-A")
        self.git(path, "commit", "-q", "-m", f"t{n}: build")
        with self.merge_lock:
            old = self.tip
            tree = self.git(self.repo, "merge-tree", "--write-tree", old, branch).split()[0]
            message = f"Merge {branch}\n\nCouncil-Task: t{n}\n"
            new = self.git(
                self.repo, "commit-tree", tree, "-p", old, "-p", branch, "-m", message
            ).strip()
            self.git(self.repo, "merge", "-q", "--ff-only", new)
            self.tip = new
        self.git(self.repo, "worktree", "remove", "--force", str(path), tries=TRIES)
        self.git(self.repo, "branch", "-q", "-D", branch, tries=TRIES)


def prompt_for(n: int) -> str:
    return f"WRITE f{n}.txt written by task {n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--capacity", type=int, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    floor = Floor(args.repo.resolve())
    with ThreadPoolExecutor(max_workers=args.capacity) as pool:
        for future in [pool.submit(floor.task, n) for n in range(args.tasks)]:
            future.result()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {"git_processes": floor.git_processes, "retries": floor.retries, "seconds": seconds}
        )
    )


if __name__ == "__main__":
    main()
