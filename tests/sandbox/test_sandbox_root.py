"""The sandbox holds for root as for a user: real bubblewrap, the real orchestrator, hostile
fake CLIs, run once as this test process (root in CI) and once as a spare unprivileged uid
(``setpriv``, the repository and HOME chowned to it).

- the escapes a root CLI had when bwrap kept its capabilities (``fault_clis/root_escape.py``):
  ``umount -l /proc`` then the orchestrator's ``ANTHROPIC_API_KEY`` from ``/proc/*/environ``,
  ``mount -o remount,rw /`` then ``.git/config``, ``umount -l $HOME`` then ``~/.ssh``; after
  the run main's history is intact, the sibling's work is on main, and the secrets are in no
  git object, no file under ``.council/``, no output;
- the resource limits (``fault_clis/hog.py``): a fork bomb, a huge file, a memory hog fail
  that CLI only, at the bound, and a sibling still lands;
- what the CLI writes is owned outside by whoever runs the orchestrator, git commits inside.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.process.limits import Limits
from orchestrator.run.doctor.sandbox_checks import sandbox_checks
from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.plan import GitReach, SandboxSettings, confinement
from tests.support.fault_helpers import FaultRun, as_uid
from tests.support.scheduler_helpers import new_repo

pytestmark = pytest.mark.sandbox

SPARE_UID = 45044  # no account has it: a user with nothing of its own on this machine
# An honest CLI beside the hostile one: its work must land on main whatever the other did.
SIBLING = ("neighbours.py", {"FAULT_WORK": "sibling.txt", "FAULT_DOES": "work", "FAULT_SLEEP": "1"})
ESCAPES = (
    "umount /proc",
    "read the orchestrator's environment",
    "remount / writable",
    "remount the repository writable",
    "append .git/config",
    "umount the hidden HOME",
    "read ~/.ssh",
    "umount the hidden .council",
    "read the run's state",
    "a nested user namespace",
    "mount a new /proc",
)


@pytest.fixture(params=["root", "user"])
def place(request: pytest.FixtureRequest) -> Iterator[tuple[Path, int | None]]:
    """Where a test's run lives, and the uid it runs as (None: this process's own). Not under
    /tmp, which the sandbox hides whole: what hides the user's HOME there is all there is."""
    root = os.geteuid() == 0
    if request.param == "root" and not root:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the root tier must run there")
        pytest.skip("as root needs a root test process (CI runs as root)")
    where = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    base = Path(tempfile.mkdtemp(prefix="council-root-tier-", dir=where))
    base.chmod(0o755)
    try:
        # As a user: a spare uid when this is root, else this process is one already.
        yield base, SPARE_UID if request.param == "user" and root else None
    finally:
        shutil.rmtree(base, ignore_errors=True)


def python_for(uid: int | None) -> tuple[str, dict[str, str]]:
    """An interpreter ``uid`` can run with this one's packages, and the environment that
    finds them: this one where every directory on its way is open to others, else the
    system's of the same version (a virtual environment under ``/root``, mode 700, is not)."""
    own = os.path.realpath(sys.executable)
    if uid is None or all(os.stat(parent).st_mode & 0o001 for parent in Path(own).parents):
        return sys.executable, {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin:/bin")
    if system is None:
        pytest.fail(f"no {version} the spare uid can run (this one is under {own})")
    paths = [p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p]
    return system, {"PYTHONPATH": os.pathsep.join([os.getcwd(), *paths])}


def chown_all(path: Path, uid: int) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, uid)
    os.lchown(path, uid, uid)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def user_home(base: Path) -> tuple[Path, str]:
    home = base / "user-home"
    (home / ".ssh").mkdir(parents=True)
    key = f"PRIVATE KEY {secrets.token_hex(16)}\n"
    (home / ".ssh" / "id_ed25519").write_text(key)
    return home, key


def run_as(
    run: FaultRun,
    uid: int | None,
    home: Path,
    fault_sandbox: dict[str, object] | None = None,
    **env: str,
) -> tuple[int, dict[str, str]]:
    """``council run`` as ``uid``, the ``fault`` adapter's own ``sandbox:`` laid over the
    run's; afterwards everything is the test's again (git refuses a repository another user
    owns)."""
    python, more = python_for(uid)
    run.user, run.python = uid, python
    config = run.config()
    if fault_sandbox is not None:
        config["adapters"]["fault"]["sandbox"] = fault_sandbox
    run.config_path.write_text(json.dumps(config))
    if uid is not None:
        chown_all(run.tmp_path, uid)
    try:
        finished = run.run(env={"HOME": str(home), **more, **env}, timeout=90)
    except FileNotFoundError:  # it never started: say why
        raise AssertionError((run.tmp_path / "council.err").read_text()[-3000:]) from None
    finally:
        if uid is not None:
            chown_all(run.tmp_path, os.geteuid())
    statuses = {task["task_id"]: task["status"] for task in finished.report["tasks"]}
    return finished.returncode, statuses


def test_a_clis_escapes_fail_as_root_and_as_a_user(place: tuple[Path, int | None]) -> None:
    base, uid = place
    home, key = user_home(base)
    api_key = f"sk-ant-{secrets.token_hex(20)}"
    run = FaultRun(
        base,
        "root_escape.py",
        env={"FAULT_USER_HOME": str(home)},
        more={"sibling": SIBLING},
        sandbox="bubblewrap",
    )
    config_before = (run.repo / ".git" / "config").read_bytes()

    code, statuses = run_as(run, uid, home, ANTHROPIC_API_KEY=api_key)

    assert code == 0 and statuses == {"fault": "done", "sibling": "done"}, statuses
    seen = {
        entry["name"]: entry
        for entry in map(json.loads, git(run.repo, "show", "main:escapes.json").splitlines())
    }
    for name in ESCAPES:
        assert not seen[name]["done"], f"{name}: {seen[name]}"
        # Refused by the kernel, not missed for want of a tool (.ci/run installs them).
        assert "is not installed" not in seen[name]["error"], seen[name]
    assert git(run.repo, "show", "main:found.txt").strip() == ""
    assert (run.repo / ".git" / "config").read_bytes() == config_before
    assert (home / ".ssh" / "id_ed25519").read_text() == key
    fsck = subprocess.run(["git", "-C", str(run.repo), "fsck", "--full"], capture_output=True)
    assert fsck.returncode == 0, fsck.stderr  # main's history intact
    assert run.on_main("work.txt") and run.on_main("sibling.txt")
    # No secret anywhere the run keeps: git objects, .council/, its output.
    objects = subprocess.run(
        ["git", "-C", str(run.repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    for secret in (api_key.encode(), key.strip().encode()):
        assert secret not in objects
        for path in run.files():
            assert secret not in path.read_bytes(), path
        for output in ("council.out", "council.err"):
            assert secret not in (base / output).read_bytes()


def hog_run(base: Path, hog: dict[str, str]) -> FaultRun:
    """The hog, an honest sibling, the run's limits (the hog gets its own, laid over them)."""
    return FaultRun(
        base,
        "hog.py",
        env=hog,
        more={"sibling": SIBLING},
        sandbox={"mode": "bubblewrap", "limits": {"processes": 256}},
    )


def hog_said(run: FaultRun) -> tuple[int, str]:
    for log in run.logs():
        for line in log.read_text().splitlines():
            if "hog: " in line:
                _what, count, error = line.split("hog: ", 1)[1].split(" ", 2)
                return int(count), error
    raise AssertionError(f"the hog said nothing: {[p.read_text()[-500:] for p in run.logs()]}")


@pytest.mark.parametrize(
    ("hog", "limits", "bound"),
    [
        ({"FAULT_HOG": "fork", "FAULT_MAX": "400"}, {"processes": 64}, 64),
        ({"FAULT_HOG": "file", "FAULT_BYTES": str(256 << 20)}, {"file_size": "16MiB"}, 16 << 20),
        ({"FAULT_HOG": "memory", "FAULT_BYTES": str(4 << 30)}, {"memory": "256MiB"}, 256 << 20),
    ],
    ids=["fork-bomb", "huge-file", "memory-hog"],
)
def test_a_hog_fails_at_its_limit_and_the_sibling_lands(
    place: tuple[Path, int | None], hog: dict[str, str], limits: dict[str, object], bound: int
) -> None:
    base, uid = place
    home = base / "user-home"
    home.mkdir()
    run = hog_run(base, hog)

    code, statuses = run_as(run, uid, home, {"limits": limits})

    assert statuses == {"fault": "failed", "sibling": "done"}, statuses
    assert code != 0  # a task failed; the run went on
    count, error = hog_said(run)
    assert error != "not refused" and 0 < count <= bound, (count, error)
    assert run.on_main("sibling.txt") and not run.on_main("big.bin")
    fsck = subprocess.run(["git", "-C", str(run.repo), "fsck", "--full"], capture_output=True)
    assert fsck.returncode == 0, fsck.stderr


def test_what_a_confined_cli_writes_is_owned_by_who_runs_it(
    place: tuple[Path, int | None],
) -> None:
    """A real bwrap around a shell that writes a file and commits in a git repository of its
    own: outside, both belong to the uid that ran it (root stays root), and the commit is
    there."""
    base, uid = place
    repo, work, home = base / "repo", base / "repo" / "work", base / "home"
    for directory in (work, home, base / "user-home"):
        directory.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    reach = GitReach(repo, repo / ".council", (), ())
    binary = bubblewrap.find()
    assert binary is not None
    # Only a file size (an rlimit): the command line is built here, as root, and a cgroup
    # made for it would not be the spare uid's to join.
    settings = SandboxSettings("bubblewrap", binary, limits=Limits(file_size=1 << 30))
    script = (
        "echo mine > made.txt && git add made.txt && "
        "git -c user.name=t -c user.email=t@e commit -qm mine && id -u"
    )
    # Nothing of this process's HOME (/root, closed to others) on the way.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home)}
    plan = confinement(
        settings,
        reach,
        workdir=work,
        home=home,
        argv=["sh", "-c", script],
        env=env,
        user_home=str(base / "user-home"),
    )
    argv = bubblewrap.command(binary, plan, ["sh", "-c", script])
    expected = os.geteuid() if uid is None else uid
    if uid is not None:
        chown_all(base, uid)
        argv = [*as_uid(uid), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, timeout=30)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(expected)  # the same uid inside as outside
    assert (work / "made.txt").stat().st_uid == expected
    assert all(path.stat().st_uid == expected for path in (work / ".git" / "objects").rglob("*"))
    log = subprocess.run(
        ["git", "-C", str(work), "-c", f"safe.directory={work}", "log", "--format=%s"],
        capture_output=True,
        text=True,
    )
    assert log.stdout.strip() == "mine", log.stderr


def test_the_sandbox_in_use_has_no_capability_and_its_limits(tmp_path: Path) -> None:
    """What a CLI has inside, read from the kernel: no capability at all, the limits set."""
    binary = bubblewrap.find()
    assert binary is not None
    reach = GitReach(tmp_path, tmp_path / ".council", (), ())
    settings = SandboxSettings(
        "bubblewrap", binary, limits=Limits(processes=300, memory=1 << 30, file_size=1 << 26)
    )
    argv = ["cat", "/proc/self/status", "/proc/self/limits"]
    env = {"PATH": os.environ["PATH"]}
    plan = confinement(settings, reach, workdir=tmp_path, home=tmp_path, argv=argv, env=env)
    done = subprocess.run(
        bubblewrap.command(binary, plan, argv), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    status = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    for name in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[name].strip(), 16) == 0, (name, status[name])
    limits = {line[:26].strip(): line[26:].split() for line in done.stdout.splitlines()}
    assert limits["Max processes"][:2] == ["300", "300"]
    assert limits["Max data size"][:2] == [str(1 << 30)] * 2
    assert limits["Max file size"][:2] == [str(1 << 26)] * 2


def test_doctor_tries_the_sandbox_and_says_it_holds(place: tuple[Path, int | None]) -> None:
    """``council doctor``, as root and as a user, runs an escape attempt inside the sandbox a
    CLI would get and says it held, with the limits."""
    base, uid = place
    repo = new_repo(base)
    config = base / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "repo": str(repo),
                "adapters": {"a": {"type": "scripted"}},
                "default_adapter": "a",
                "sandbox": "bubblewrap",
                "tasks": [{"id": "t1", "prompt": "p"}],
            }
        )
    )
    python, more = python_for(uid)
    prefix = [] if uid is None else as_uid(uid)
    if uid is not None:
        chown_all(base, uid)
    done = subprocess.run(
        [*prefix, python, "-m", "orchestrator.cli.app", "doctor", "--json", str(config)],
        capture_output=True,
        env={**os.environ, "HOME": str(base), "COUNCIL_DISABLE_PLUGINS": "1", **more},
        cwd=base,
        timeout=60,
    )
    checks = json.loads(done.stdout)["checks"]
    [sandbox] = [check for check in checks if check["name"] == "sandbox"]
    assert sandbox["status"] == "ok", sandbox
    assert "escape attempt from inside" in sandbox["detail"] and "refused" in sandbox["detail"]
    assert "2048 processes" in sandbox["detail"] and "2 GiB per file" in sandbox["detail"]


async def test_doctor_fails_where_the_sandbox_keeps_its_capabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line as it was (no user namespace, capabilities kept): as root the escape
    attempt gets out, and doctor fails naming how; as a user bwrap drops them anyway."""
    monkeypatch.setattr(bubblewrap, "NAMESPACES", ())
    [check] = await sandbox_checks(None)
    if os.geteuid() != 0:
        assert check.status == "ok", check
        return
    assert check.status == "fail", check
    assert "does NOT hold" in check.detail and "umount /proc" in check.detail, check.detail
    assert "umount the hidden HOME" in check.detail and "capabilities" in check.detail


def test_the_probe_says_when_user_namespaces_are_not_allowed(tmp_path: Path) -> None:
    """Inside a namespace that allows no user namespace (``--disable-userns``, as a container
    or ``user.max_user_namespaces=0`` does), ``auto`` runs without a sandbox and says why,
    ``bubblewrap`` refuses to start."""
    binary = bubblewrap.find()
    assert binary is not None
    code = (
        "import anyio\n"
        "from orchestrator.config.sandbox import SandboxConfig\n"
        "from orchestrator.errors import ConfigError\n"
        "from orchestrator.sandbox.choice import settings_for\n"
        "async def main():\n"
        "    auto = await settings_for(SandboxConfig())\n"
        "    print('auto:', auto.kind, auto.reason)\n"
        "    try:\n"
        "        await settings_for(SandboxConfig(mode='bubblewrap'))\n"
        "    except ConfigError as exc:\n"
        "        print('bubblewrap: refused:', exc)\n"
        "anyio.run(main)\n"
    )
    outer = [binary, "--unshare-user", "--disable-userns", "--dev-bind", "/", "/"]
    outer += ["--unshare-pid", "--proc", "/proc", "--"]
    done = subprocess.run(
        [*outer, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    auto, refused = done.stdout.splitlines()[-2:]
    assert auto.startswith("auto: none no sandbox:") and "user namespaces are not allowed" in auto
    assert refused.startswith("bubblewrap: refused:") and "sandbox.mode" in refused


def test_a_cli_that_sandboxes_itself_nests_but_cannot_undo_the_sandbox(
    place: tuple[Path, int | None],
) -> None:
    """codex runs its tools in a bubblewrap of its own (``Adapter.sandboxes_itself``): its
    sandbox lets it make one (as root with a uid other than 0 inside, which a nested bwrap
    needs), a file written from inside the nested one is owned outside by who runs it, and in
    a nested namespace, with every capability there, the hidden HOME stays hidden and ``/``
    read-only."""
    base, uid = place
    work, home, user_home = base / "work", base / "home", base / "user-home"
    for directory in (work, home, user_home / ".ssh"):
        directory.mkdir(parents=True)
    (user_home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    binary = bubblewrap.find()
    assert binary is not None
    script = (
        f"bwrap --ro-bind / / --dev /dev --bind {work} {work} --"
        f" sh -c 'echo in > {work}/nested.txt'"
        f" && unshare -Urm sh -c 'umount -l {user_home}; cat {user_home}/.ssh/id_ed25519;"
        " mount -o remount,rw /; touch /planted; echo tried'"
    )
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home)}
    reach = GitReach(base, base / ".council", (), ())
    plan = confinement(
        SandboxSettings("bubblewrap", binary),
        reach,
        workdir=work,
        home=home,
        argv=["sh", "-c", script],
        env=env,
        user_home=str(user_home),
        nested=True,
    )
    argv = bubblewrap.command(binary, plan, ["sh", "-c", script])
    expected = os.geteuid() if uid is None else uid
    if uid is not None:
        chown_all(base, uid)
        argv = [*as_uid(uid), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work, timeout=30)

    assert done.returncode == 0 and "tried" in done.stdout, done.stderr
    assert (work / "nested.txt").read_text() == "in\n"
    assert (work / "nested.txt").stat().st_uid == expected
    assert "PRIVATE KEY" not in done.stdout
    assert not Path("/planted").exists()
