"""The package as users get it: the sdist and the wheel built offline (``python -m build
--no-isolation``, the wheel from the sdist), what each holds, the sdist running its own tests,
and the wheel installed in a fresh virtual environment running ``council demo``."""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.timing import patience

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
NAME = "cli_council-0.1.0"
SDIST_DIRS = ("tests", "configs", "examples", "docs", "bench")
# Environment variables that would make a process import this checkout instead of the package.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built once for every worker of the run: ``build`` writes its
    staging tree into the checkout itself, so two workers building at once break each
    other's (the one that builds holds the lock, the others wait and take what it built)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's, above each worker's own
    out = shared / "dist"
    with (shared / "dist.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "built").exists():
            built = subprocess.run(
                [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                capture_output=True,
                text=True,
                env=ENV,
                timeout=patience(180),
            )
            assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
            (out / "built").touch()
    return out


def test_the_wheel_ships_the_demo_and_no_test_helper_command(dist: Path) -> None:
    with zipfile.ZipFile(dist / f"{NAME}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        shipped = (ROOT / "orchestrator" / "run" / "demo.yaml").read_bytes()
        assert wheel.read("orchestrator/run/demo.yaml") == shipped
        assert {"orchestrator/py.typed", "adapters/py.typed", "adapters/scripted_cli.py"} <= names
        assert not any(name.startswith(("tests/", "configs/", "examples/")) for name in names)

        entry_points = configparser.ConfigParser()
        entry_points.read_string(wheel.read(f"{NAME}.dist-info/entry_points.txt").decode())
        assert dict(entry_points["console_scripts"]) == {"council": "orchestrator.cli.app:main"}

        metadata = Parser().parsestr(wheel.read(f"{NAME}.dist-info/METADATA").decode())
        assert metadata["License-Expression"] == "MIT"
        assert metadata.get_all("License-File") == ["LICENSE"]
        license_text = wheel.read(f"{NAME}.dist-info/licenses/LICENSE")
        assert license_text == (ROOT / "LICENSE").read_bytes()
        assert license_text.startswith(b"MIT License\n\nCopyright (c) ")
        assert b" CLI Council contributors\n" in license_text

    (typer,) = [
        Requirement(line)
        for line in metadata.get_all("Requires-Dist") or []
        if line.startswith("typer")
    ]
    assert any(spec.operator == "<" for spec in typer.specifier)
    assert typer.specifier.contains(version("typer"))


def test_the_sdist_holds_its_tests_and_what_they_read(dist: Path) -> None:
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        names = {name.removeprefix(f"{NAME}/") for name in sdist.getnames()}
    for top in ("LICENSE", "README.md", "pyproject.toml", "MANIFEST.in"):
        assert top in names
    assert "orchestrator/run/demo.yaml" in names
    for directory in SDIST_DIRS:
        on_disk = {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / directory).rglob("*")
            if path.is_file()
            and "__pycache__" not in path.parts
            and not any(part.endswith(".egg-info") for part in path.parts)
        }
        assert on_disk, directory
        assert on_disk <= names, sorted(on_disk - names)[:10]


def test_the_sdist_runs_its_own_tests(dist: Path, tmp_path: Path) -> None:
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        # Python's data filter from 3.11.4 on (Debian 12's 3.11.2 has none): our own sdist.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        sdist.extractall(tmp_path, **safe)
    source = tmp_path / NAME
    # Every process of the run below, the council commands the tests start included, imports
    # the sdist's own code.
    env = {**ENV, "PYTHONPATH": str(source)}
    where = subprocess.run(
        [sys.executable, "-c", "import orchestrator, adapters; print(orchestrator.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(source)

    chosen = [
        "tests/config/test_config.py::test_demo_config_validates",
        "tests/cli/test_cli_demo.py::test_the_shipped_config_is_configs_demo_yaml_but_for_its_repository",
        "tests/cli/test_cli_demo.py::test_a_directory_that_cannot_be_made_is_one_line_and_exit_2",
        "tests/adapters/test_adapter_scripted.py::test_the_stand_in_runs_as_a_module_and_needs_no_command_on_path",
    ]
    # A base temp of its own: pytest's default one is shared with every run on this machine,
    # and a run rotates it, deleting the oldest runs' directories (after a full suite, gigabytes:
    # a minute and more of this test's time).
    inner = ["-p", "no:cacheprovider", "-n", "0", "-q", "--basetemp", str(tmp_path / "temp")]
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", *inner, *chosen],
        capture_output=True,
        text=True,
        env=env,
        cwd=source,
        timeout=patience(240),
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert f"{len(chosen)} passed" in ran.stdout


def test_the_wheel_installed_in_a_fresh_environment_runs_the_demo(
    dist: Path, tmp_path: Path
) -> None:
    wheel = dist / f"{NAME}-py3-none-any.whl"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, env=ENV)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        ).stdout.strip()
    )
    # Offline: the dependencies come from this environment's site-packages, a plain path in a
    # .pth file (its own .pth files, the editable install of this checkout among them, are not
    # read from there), so the package itself can only come from the wheel.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    offline = ["--no-deps", "--no-index", "--no-cache-dir", "--quiet"]
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", *offline, wheel],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(120),
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert sorted(p.name for p in (venv / "bin").glob("council*")) == ["council"]

    work = tmp_path / "work"
    work.mkdir()
    our_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in ENV.get("PATH", "").split(os.pathsep) if p != our_bin)
    demo = subprocess.run(
        [venv / "bin" / "council", "demo", "--json"],
        capture_output=True,
        text=True,
        cwd=work,
        # The plugins installed beside this environment's packages are not the wheel's.
        env={**ENV, "PATH": path, "COUNCIL_DISABLE_PLUGINS": "1"},
        timeout=patience(240),
    )

    assert demo.returncode == 0, demo.stderr[-3000:]
    report = json.loads(demo.stdout)
    assert len(report["tasks"]) == 7
    assert report["totals"]["done"] == 7
    repo = work / ".council-demo" / "repo"
    assert (work / ".council-demo" / "demo.yaml").is_file()
    # The scripted CLIs ran from the installed package, with no command of their own.
    (log, *_) = sorted((repo / ".council" / "logs").glob("add-cli-build-*.log"))
    argv = next(line for line in log.read_text().splitlines() if line.startswith("# argv: "))
    assert argv.startswith(f"# argv: {python} -I -S {site / 'adapters' / 'scripted_cli.py'} ")
