"""The crash sweep: a small run killed with SIGKILL at every git command and at every durable
state write it makes, whatever the command or record, then resumed and checked at the content
level.

The run (``CONFIG``): three tasks of two phases each, with canary secrets in the environment.
``one`` and ``two`` append to one shared file (``shared.txt``, declared by both, so ``two``
waits for ``one``'s lock); ``one`` and ``three`` both rewrite ``README.md`` while running side by
side, so whichever lands second meets a merge conflict and gets its resolve round; ``two``'s
verify command is a script its CLI wrote that dumps its environment into a file.

``trace`` runs it once with ``COUNCIL_CRASH_TRACE`` to count the steps: N git commands
(``git.ran``) and M durable writes (``write.replaced``), each with its kind (``worktree add``,
``commit``, ``merge-tree``, ``tasks/...json``). Then, for every k of both, a fresh copy of the
run is killed at its k-th step (for even k the user's checkout is their own work in progress
on another branch, for odd k a clean checkout of the base), checked as the kill left it
(``invariants``: nothing lost, nothing twice; ``content_invariants``: no base file lost, no
edit applied twice, nothing landed that no CLI wrote), resumed to the end (a sample of the
resumes is killed too, then resumed again) and checked again: every task done, every content
promise, the user's checkout, no canary secret anywhere in git's objects or under
``.council/``.

The schedule of two sessions varies a little between runs, so the k-th step of a killed run
is not always the k-th step of the traced one; ``points`` keeps every kind of step covered
regardless. Each armed run is traced too, so the sweep counts what it did rather than expect
a number of kills: a run killed at ``point:k`` reached its k-th step of that point, and a run
that ended by itself (its schedule, on a loaded machine or not, had fewer) reached fewer than k.
``COUNCIL_SWEEP_EVERY=<n>`` runs every n-th k only (the default, 1, runs all).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import TRACE_ENV
from tests.support import canary, content_invariants, invariants
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
BASE_ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1", **canary.CANARIES}
for _name in (CRASH_ENV, TRACE_ENV):
    BASE_ENV.pop(_name, None)
SWEPT = ("git.ran", "write.replaced")
EVERY = int(os.environ.get("COUNCIL_SWEEP_EVERY", "1"))
WORKERS = 2  # one killed run or resume per core

# The verify command of ``two``: a script its CLI wrote, run by the orchestrator in the
# worktree, that would carry any secret it is given into a file.
DUMP_ENV = "import json, os; open('env.json', 'w').write(json.dumps(dict(os.environ)))"

PHASES: dict[str, dict[str, str]] = {
    "one": {
        "plan": "SAY FILES: shared.txt",
        "build": "APPEND shared.txt appended by one\nWRITE README.md written by one",
    },
    "two": {
        "plan": "SAY FILES: shared.txt\nECHO_ENV ANTHROPIC_API_KEY",
        "build": (
            "APPEND shared.txt appended by two\n"
            f"WRITE dump_env.py {DUMP_ENV}\n"
            "ECHO_ENV GITHUB_TOKEN"
        ),
    },
    "three": {
        "plan": "SAY I will rewrite README.md",
        "build": "WRITE README.md written by three\nAPPEND three.txt appended by three",
    },
}
EDITS = {task: content_invariants.edits_of(phases.values()) for task, phases in PHASES.items()}

CONFIG = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
default_adapter: cli
capacity: {sessions: 2}
workflow: {phases: [{name: plan}, {name: build}]}
retry: {max_retries: 3, backoff_initial: 0.02, backoff_max: 0.1}
scheduler: {tick: 0.02, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
"""


def task_entry(task_id: str) -> str:
    entry: dict[str, Any] = {
        "id": task_id,
        "prompt": f"Task {task_id}.",
        "metadata": {"phase_instructions": PHASES[task_id]},
    }
    if task_id in ("one", "two"):
        entry["files"] = ["shared.txt"]
    if task_id == "two":
        entry["verify"] = [["python3", "dump_env.py"]]
    return f"  - {json.dumps(entry)}\n"


@dataclass(frozen=True)
class Run:
    root: Path
    repo: Path
    config: Path
    before: content_invariants.Before


def prepare(root: Path, *, busy_checkout: bool = False) -> Run:
    """A fresh repository and run. Its checkout is a clean one of the base (fast-forwarded as
    work lands), or with ``busy_checkout`` the user's own work in progress on another branch
    (a changed file, an untracked one), which must stay byte for byte as it is. The repository
    is a copy of one made once per process for each kind of checkout (``_template``): every
    run of the sweep starts from the same bytes, and git is not run a dozen times to make them."""
    root.mkdir(parents=True, exist_ok=True)
    template, before = _template(busy_checkout)
    repo = root / "repo"
    shutil.copytree(template, repo, symlinks=True)
    config = root / "run.yaml"
    config.write_text(CONFIG + "".join(task_entry(t) for t in PHASES))
    return Run(root, repo, config, before)


_TEMPLATES: dict[bool, tuple[Path, content_invariants.Before]] = {}
_TEMPLATES_LOCK = threading.Lock()


def _template(busy_checkout: bool) -> tuple[Path, content_invariants.Before]:
    """The repository every run of one kind of checkout starts from, made with git the first
    time it is asked for in this process (the sweep's threads share it), and the photograph of
    it the content checks compare with (a copy holds the same bytes, so the same photograph)."""
    with _TEMPLATES_LOCK:
        if busy_checkout not in _TEMPLATES:
            where = Path(tempfile.mkdtemp(prefix="council-sweep-template-"))
            atexit.register(shutil.rmtree, where, True)
            repo = new_repo(where)
            if busy_checkout:
                switch = ["git", "-C", str(repo), "switch", "-q", "-c", "feature"]
                subprocess.run(switch, check=True)
                (repo / "README.md").write_text("hello\nmy unsaved edit\n")
                (repo / "notes.txt").write_text("untracked notes\n")
            _TEMPLATES[busy_checkout] = repo, content_invariants.before_run(repo)
        return _TEMPLATES[busy_checkout]


def council(
    run: Run, command: str, *, crash_at: str | None = None, trace: Path | None = None
) -> tuple[int, str]:
    """Run ``council COMMAND`` to its end (or its SIGKILL): (exit status, what it printed).
    The timeout is a safety net for a hung run (``timing.patience``)."""
    env = dict(BASE_ENV)
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    if trace is not None:
        env[TRACE_ENV] = str(trace)
    done = subprocess.run(
        [*COUNCIL, command, str(run.config), "--json"],
        cwd=run.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=patience(120),
    )
    return done.returncode, done.stdout[-2000:] + done.stderr[-3000:]


def next_command(run: Run) -> str | None:
    """``resume`` a session left unfinished, ``run`` again when none was recorded yet, or
    None when the kill came after the run had recorded its end (nothing is left to do)."""
    if not invariants.recorded_sessions(run.repo):
        return "run"
    return "resume" if invariants.resumable_sessions(run.repo) else None


def settled_problems(run: Run) -> list[str]:
    """Everything that must hold once the run has ended by itself."""
    found = invariants.problems(run.repo, all_done=True, root=run.root)
    found += content_invariants.problems(run.repo, run.before, EDITS)
    found += canary.leaks(run.repo)
    return found


def killed_problems(run: Run) -> list[str]:
    """What must hold the moment a kill left the run (the checkout may lag a moved base until
    the resume fast-forwards it, and the dead run's CLIs may still be running)."""
    found = invariants.problems(run.repo, settled=False)
    content = content_invariants.problems(run.repo, run.before, EDITS)
    found += [p for p in content if "the user's checkout" not in p and "HEAD of" not in p]
    found += canary.leaks(run.repo)
    return found


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """One run to the end with the trace on: (point, what) of every step, in order."""
    run = prepare(tmp_path_factory.mktemp("trace"))
    steps = run.root / "trace.txt"
    status, output = council(run, "run", trace=steps)
    assert status == 0, output
    assert not settled_problems(run), settled_problems(run)
    lines = steps.read_text().splitlines()
    return [(point, what) for point, _, what in (line.partition("\t") for line in lines)]


def kind(point: str, what: str) -> str:
    """The kind of a step: the git subcommand, or the kind of record a write replaced."""
    if point == "write.replaced":
        parts = Path(what).parts
        state = parts.index("state") if "state" in parts else len(parts) - 2
        return "/".join(parts[state + 1 : state + 2] + parts[state + 2 : -1][:1]) or what
    return what


def points(steps: list[tuple[str, str]], point: str) -> list[int]:
    """The k to kill at: every ``EVERY``-th, plus the first of each kind of step."""
    of_point = [kind(p, what) for p, what in steps if p == point]
    first: dict[str, int] = {}
    for k, step in enumerate(of_point, start=1):
        first.setdefault(step, k)
    return sorted({*range(1, len(of_point) + 1, EVERY), *first.values()})


def reached(trace: Path, point: str) -> int:
    """How many steps of ``point`` a traced run reached."""
    if not trace.exists():
        return 0
    return sum(line.partition("\t")[0] == point for line in trace.read_text().splitlines())


def count_problems(where: str, point: str, k: int, killed: bool, steps: int) -> list[str]:
    """A kill at ``point:k`` comes at the k-th step (a step of another thread may be traced
    between the arrival and the SIGKILL); a run it did not kill ended having made fewer than k
    (a shorter schedule), never k or more (a missed kill)."""
    if killed and steps < k:
        return [f"{where}: killed after {steps} {point} steps, before the {k}th"]
    if not killed and steps >= k:
        return [f"{where}: reached {steps} {point} steps and was never killed at the {k}th"]
    return []


@dataclass(frozen=True)
class Outcome:
    where: str
    killed: bool
    problems: list[str]


def kill_resume_check(root: Path, point: str, k: int, resume_crash: str | None) -> Outcome:
    """Kill a fresh run at ``point:k``, check, (kill its resume at ``resume_crash``, check,)
    resume to the end, check."""
    run = prepare(root, busy_checkout=k % 2 == 0)  # both kinds of checkout at every step kind
    steps = root / "armed-trace.txt"
    status, output = council(run, "run", crash_at=f"{point}:{k}", trace=steps)
    where = f"{point}:{k}" + (" (checkout busy on another branch)" if k % 2 == 0 else "")
    killed = status == -signal.SIGKILL
    problems = count_problems(where, point, k, killed, reached(steps, point))
    if not killed:
        # This run's schedule had fewer steps than k: it ended by itself, and must be whole.
        problems += [] if status == 0 else [f"ended {status} unkilled: {output}"]
        return Outcome(where, False, problems + settled_problems(run))
    problems += [f"after the kill: {p}" for p in killed_problems(run)]
    status = -signal.SIGKILL
    command = next_command(run)
    if resume_crash is not None and command is not None:
        status, output = council(run, command, crash_at=resume_crash)
        where += f" then {resume_crash}"
        if status == -signal.SIGKILL:
            problems += [f"after the resume's kill: {p}" for p in killed_problems(run)]
        elif status != 0:  # 0: the resume had fewer steps than its count and finished
            problems.append(f"the armed resume ended {status}: {output}")
        command = next_command(run)
    if status == -signal.SIGKILL and command is not None:
        status, output = council(run, command)
        if status != 0:
            problems.append(f"the resume ended {status}: {output}")
    problems += [f"at the end: {p}" for p in settled_problems(run)]
    return Outcome(where, True, problems)


def sweep(tmp: Path, plan: list[tuple[str, int, str | None]]) -> Iterator[Outcome]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [
            pool.submit(kill_resume_check, tmp / f"{point}-{k}", point, k, resume_crash)
            for point, k, resume_crash in plan
        ]
        for future in futures:
            yield future.result()


def report(outcomes: list[Outcome]) -> str:
    failed = [o for o in outcomes if o.problems]
    return "\n".join(f"{o.where}:\n  - " + "\n  - ".join(o.problems) for o in failed)


def test_the_traced_run_covers_every_kind_of_step(trace: list[tuple[str, str]]) -> None:
    counts = Counter(point for point, _ in trace)
    git_kinds = {what for point, what in trace if point == "git.ran"}
    # The steps that make the run: worktrees, commits (built from the files: ``own_commit``),
    # merges, ref moves; and tasks' records.
    assert {"worktree add", "add", "write-tree", "merge-tree", "commit-tree", "update-ref"} <= (
        git_kinds
    )
    assert {"worktree remove"} <= git_kinds
    assert counts["git.ran"] > 30 and counts["write.replaced"] > 20, counts
    assert counts["merge.committed"] >= 3  # three landings, one after a conflict
    write_kinds = {kind(p, what) for p, what in trace if p == "write.replaced"}
    assert {"tasks", "sessions"} <= {k.split("/")[0] for k in write_kinds}, write_kinds


# Each sweep is cut into slices (k = slice+1, slice+1+SLICES, ...) so that no test runs for
# over 30 s beside the rest of the suite: a slice is three or four kills, two at a time (the
# traced run: 96 git commands, 87 durable writes; a kill of the resume too costs three runs,
# so those slices are two or three). Seven kills a slice took 37-44 s under the full suite.
SLICES = {"git.ran": 28, "write.replaced": 24}
RESUME_SLICES = 12


def sliced(ks: list[int], index: int, count: int) -> list[int]:
    return [k for position, k in enumerate(ks) if position % count == index]


@pytest.mark.parametrize(
    ("point", "index"),
    [(point, index) for point, count in SLICES.items() for index in range(count)],
    ids=lambda value: str(value),
)
def test_sweep_kill_at_every_step_then_resume(
    trace: list[tuple[str, str]], tmp_path: Path, point: str, index: int
) -> None:
    ks = sliced(points(trace, point), index, SLICES[point])
    assert ks, f"the traced run has too few {point} steps for slice {index}"
    outcomes = list(sweep(tmp_path, [(point, k, None) for k in ks]))
    assert not report(outcomes), report(outcomes)
    # Schedules differ a little from the traced one (more on a loaded machine): a count past
    # a run's last step lets it finish by itself, checked whole and checked to have made
    # fewer than k steps (count_problems). The first k of every slice is reached by any run.
    assert any(o.killed for o in outcomes), f"no run of {ks} was killed"


@pytest.mark.parametrize("index", range(RESUME_SLICES))
def test_sweep_kill_the_resume_too(
    trace: list[tuple[str, str]], tmp_path: Path, index: int
) -> None:
    # A sample: the run killed at every 6th step of both kinds, its resume killed at a step
    # of the other kind, then resumed to the end.
    n = {point: sum(p == point for p, _ in trace) for point in SWEPT}
    plan: list[tuple[str, int, str | None]] = []
    for k in range(2, n["git.ran"], 6):
        plan.append(("git.ran", k, f"write.replaced:{1 + k % n['write.replaced']}"))
    for k in range(3, n["write.replaced"], 6):
        plan.append(("write.replaced", k, f"git.ran:{1 + (3 * k) % n['git.ran']}"))
    outcomes = list(sweep(tmp_path, plan[index::RESUME_SLICES]))
    assert not report(outcomes), report(outcomes)
