"""The examples and example configs work as their comments say: the Python example runs offline
to exit 0 (on its built-in run, and driving the YAML-preset config), and the configs validate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.timing import patience
from tests.support.worktree_helpers import git

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "run_with_python.py"
WATCH = ROOT / "examples" / "watch_events.py"
CONFIGS = ROOT / "configs"
ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}


def run(
    *argv: str | Path, cwd: Path, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=patience(90),
    )


def council(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "orchestrator.cli.app", *args, cwd=cwd)


def trailers(repo: Path) -> list[str]:
    out = git(repo, "log", "--first-parent", "--format=%(trailers:key=Council-Task,valueonly)")
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def test_run_with_python_runs_its_tasks_offline(tmp_path: Path) -> None:
    script = tmp_path / "run_with_python.py"
    shutil.copy(EXAMPLE, script)

    done = run(sys.executable, script, "--workdir", tmp_path / "work", cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "test-ends: dispatched to ada" in out  # progress, from the event subscriber
    assert out.count("merged into main") == 4
    assert "4 of 4 done, 0 failed" in out  # the report
    assert trailers(tmp_path / "work" / "repo") == [
        "add-first-word",
        "add-last-word",
        "note-in-readme",
        "test-ends",
    ]


def test_the_preset_adapter_config_runs_offline_through_the_example(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(CONFIGS / "preset_adapter.yaml", configs)
    # The preset's binary, python3 of CLI Council's environment, first on PATH as the config
    # asks (`PATH="$PWD/.venv/bin:$PATH"`).
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "python3").exists()
    env = {**ENV, "PATH": f"{venv_bin}{os.pathsep}{ENV.get('PATH', '')}"}

    done = run(
        sys.executable, EXAMPLE, "--config", "configs/preset_adapter.yaml", cwd=tmp_path, env=env
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 of 2 done" in done.stdout
    repo = tmp_path / ".council-demo" / "preset-repo"
    assert trailers(repo) == ["add-char-count", "test-char-count"]
    assert "def char_count" in git(repo, "show", "main:textkit/words.py")
    # The command adapter ran the CLI through the preset: its logs name the stand-in.
    logs = list((repo / ".council" / "logs").glob("add-char-count-build-*.log"))
    assert logs and "python3 -m adapters.scripted_cli" in logs[0].read_text()


def test_the_example_configs_validate_and_plan_without_any_cli(tmp_path: Path) -> None:
    for name in ("claude_codex_gemini.yaml", "preset_adapter.yaml"):
        checked = council("config", "validate", CONFIGS / name, cwd=tmp_path)
        assert checked.returncode == 0, checked.stderr
        assert "OK" in checked.stdout

    # No claude, codex or gemini needed: the dry run only builds the commands. (PATH holds
    # git alone, which CLI Council itself needs.)
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    git_binary = shutil.which("git")
    assert git_binary is not None
    (only_git / "git").symlink_to(git_binary)
    plan = run(
        sys.executable,
        "-m",
        "orchestrator.cli.app",
        "run",
        CONFIGS / "claude_codex_gemini.yaml",
        "--dry-run",
        cwd=tmp_path,
        env={**ENV, "PATH": str(only_git)},
    )
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    scout = next(line for line in lines if line.startswith("   scout "))
    build = next(line for line in lines if line.startswith("   build "))
    review = next(line for line in lines if line.startswith("   review "))
    assert scout.startswith("   scout [gemini -> claude]: gemini ")
    assert build.startswith("   build [claude]: claude ")
    assert "--permission-mode acceptEdits" in build
    assert review.startswith("   review [codex]: codex exec ") and "-s workspace-write" in review
    assert "4. document-api (priority 2, after low-stock-endpoint, files docs/api.md)" in lines


def test_watch_events_reads_the_run_with_async_for(tmp_path: Path) -> None:
    done = run(sys.executable, WATCH, "--workdir", tmp_path / "work", cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for task in ("add-shout", "add-whisper"):  # matched by class, fields by name
        assert f"{task}: build done" in out and f"{task}: review done" in out
        assert f"{task}: landed on main in " in out
    assert "run finished: completed" in out and "2 of 2 done" in out
    assert "task.dispatched 2" in out and "merge.completed 2" in out  # counted by type
    assert "events dropped" not in out
    assert trailers(tmp_path / "work" / "repo") == ["add-shout", "add-whisper"]


def test_services_side_by_side_lands_both_each_on_its_own_port_and_database(
    tmp_path: Path,
) -> None:
    example = ROOT / "examples" / "services_side_by_side.py"
    done = run(sys.executable, example, "--workdir", tmp_path / "work", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "alpha: done" in out and "beta: done" in out
    for task in ("alpha", "beta"):
        assert f"service.ready {{'task_id': '{task}', 'service': 'db'}}" in out
    assert sorted(trailers(tmp_path / "work" / "repo")) == ["alpha", "beta"]
