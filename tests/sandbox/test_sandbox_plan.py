"""The sandbox's plan and its bubblewrap command line (``orchestrator.sandbox``), the run
config's ``sandbox:`` section, and what a run and ``council doctor`` say of the sandbox a
machine can or cannot give. Pure, but for the files a plan looks at."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.command import CommandAdapter
from orchestrator.adapter import AdapterRequest
from orchestrator.config.sandbox import SandboxConfig, merged_sandbox
from orchestrator.council import Council
from orchestrator.errors import AdapterError, ConfigError
from orchestrator.run.doctor.sandbox_checks import sandbox_checks
from orchestrator.run.preflight import check_sandbox
from orchestrator.runner.cli_run import Sandbox, run_cli
from orchestrator.sandbox import bubblewrap, choice
from orchestrator.sandbox.plan import GitReach, SandboxSettings, confinement
from tests.support.scheduler_helpers import new_repo, run_config


def layout(tmp_path: Path) -> tuple[GitReach, Path, Path, Path]:
    repo = tmp_path / "repo"
    council = repo / ".council"
    worktree = council / "worktrees" / "s1"
    home = council / "homes" / "t1" / "cli" / "build"
    objects = repo / ".git" / "objects"
    admin = repo / ".git" / "worktrees" / "s1"
    for directory in (worktree, home, objects, admin):
        directory.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {admin}\n")
    (admin / "commondir").write_text("../..\n")
    reach = GitReach(repo, council, (objects, admin), (worktree / ".git", admin / "commondir"))
    user = tmp_path / "user"
    (user / ".ssh").mkdir(parents=True)
    (user / ".claude").mkdir()
    (user / ".claude" / ".credentials.json").write_text("{}")
    (user / ".nvm" / "bin").mkdir(parents=True)
    return reach, worktree, home, user


def test_deeper_mounts_come_later_and_the_seals_last(tmp_path: Path) -> None:
    reach, worktree, home, user = layout(tmp_path)
    login = user / ".claude" / ".credentials.json"
    settings = SandboxSettings("bubblewrap", "/usr/bin/bwrap")
    plan = confinement(
        settings,
        reach,
        workdir=worktree,
        home=home,
        argv=["sh", "-c", "true"],
        env={"PATH": f"{user / '.nvm' / 'bin'}:/usr/bin:/bin"},
        logins=[login, user / ".codex" / "auth.json"],  # the second one the user has not
        user_home=str(user),
    )
    kinds = dict((path, kind) for kind, path in plan.ordered)
    assert kinds[user] == "hide" and kinds[reach.council_dir] == "hide"
    assert kinds[Path("/tmp")] == "hide"
    assert kinds[reach.repo_root] == "read" and kinds[login] == "read"
    assert kinds[user / ".nvm"] == "read"  # a PATH entry under the hidden HOME, shown whole
    assert user / ".codex" / "auth.json" not in kinds  # a login the user does not have
    assert kinds[worktree] == "write" and kinds[home] == "write"
    depths = [len(path.parts) for kind, path in plan.ordered if kind != "seal"]
    assert depths == sorted(depths)
    assert [kind for kind, _ in plan.ordered[-2:]] == ["seal", "seal"]
    assert user in plan.frozen and reach.council_dir in plan.frozen
    assert Path("/tmp") not in plan.frozen  # a writable scratch


def test_the_bubblewrap_command(tmp_path: Path) -> None:
    reach, worktree, home, _ = layout(tmp_path)
    settings = SandboxSettings("bubblewrap", "/usr/bin/bwrap", network=False)
    plan = confinement(
        settings, reach, workdir=worktree, home=home, argv=["sh", "-c", "x"], env={"PATH": "/bin"}
    )
    argv = bubblewrap.command("/usr/bin/bwrap", plan, ["sh", "-c", "x"])
    # Its own user namespace, no capability, no nested namespace: root too is confined.
    assert argv[:5] == ["/usr/bin/bwrap", "--unshare-user", "--cap-drop", "ALL", "--disable-userns"]
    assert argv[5:9] == ["--ro-bind", "/", "/", "--dev"]
    assert "--unshare-pid" in argv and "--unshare-net" in argv
    assert "--new-session" not in argv  # the CLI stays in the group the orchestrator stops
    at = argv.index("--")
    assert argv[at + 1].endswith("/sh") and argv[at + 2 :] == ["-c", "x"]
    assert argv[argv.index("--chdir") + 1] == str(worktree)
    remounts = [argv[i + 1] for i, word in enumerate(argv) if word == "--remount-ro"]
    assert str(reach.council_dir) in remounts and "/tmp" not in remounts
    sealed = str(worktree / ".git")
    assert argv[argv.index(sealed) - 1] == "--ro-bind"


@pytest.mark.parametrize(
    ("status", "expected"), [(0, (0, None)), (1, (1, None)), (137, (None, 9)), (139, (None, 11))]
)
def test_the_sandboxs_exit_status_reads_as_the_clis(
    status: int, expected: tuple[int | None, int | None]
) -> None:
    assert bubblewrap.exit_status(status) == expected


def test_the_config_section_takes_a_word_or_a_mapping_and_adapters_lay_theirs_over() -> None:
    assert SandboxConfig.model_validate("none").mode == "none"
    run = SandboxConfig.model_validate({"mode": "bubblewrap", "read": ["/opt/data"]})
    merged = merged_sandbox(run, SandboxConfig.model_validate({"network": "none"}))
    assert (merged.mode, merged.network, merged.read) == ("bubblewrap", "none", [Path("/opt/data")])
    assert merged_sandbox(run, None) is run
    with pytest.raises(ValidationError, match="mode"):
        SandboxConfig.model_validate("firejail")
    with pytest.raises(ValidationError, match="netwrk"):
        SandboxConfig.model_validate({"netwrk": "none"})


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice.bubblewrap, "find", lambda path=None: None)


async def test_a_required_sandbox_this_machine_lacks_is_refused_before_anything(
    tmp_path: Path, no_bwrap: None
) -> None:
    repo = new_repo(tmp_path)
    config = run_config(repo, [{"id": "t1", "prompt": "p"}], sandbox={"mode": "bubblewrap"})
    with pytest.raises(ConfigError, match=r"sandbox\.mode: bubblewrap: bubblewrap \(bwrap\) is"):
        await check_sandbox(config)
    assert not (repo / ".council").exists()
    adapters = {"alpha": {"type": "scripted", "sandbox": "bubblewrap"}}
    config = run_config(repo, [{"id": "t1", "prompt": "p"}], adapters=adapters)
    with pytest.raises(ConfigError, match=r"adapters\.alpha\.sandbox\.mode"):
        await check_sandbox(config)


async def test_auto_without_a_sandbox_warns_and_doctor_says_it(
    tmp_path: Path, no_bwrap: None, caplog: pytest.LogCaptureFixture
) -> None:
    config = run_config(new_repo(tmp_path), [{"id": "t1", "prompt": "p"}])
    with caplog.at_level(logging.WARNING):
        await check_sandbox(config)
    assert "CLIs run unconfined" in caplog.text and "apt install bubblewrap" in caplog.text
    # What code a CLI wrote gets then: a private environment, not a sandbox.
    assert "verify and setup commands get a private HOME" in caplog.text
    [check] = await sandbox_checks(config)
    assert check.status == "warn" and "bubblewrap" in (check.fix or "")
    assert "can still name your files by path" in check.detail


async def test_a_run_says_it_runs_unconfined_once(
    tmp_path: Path, no_bwrap: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The command's early preflight and the run's own both check the sandbox: the warning
    is said once a run (it was said twice on every run, the demo's first screen too)."""
    config = run_config(new_repo(tmp_path), [{"id": "t1", "prompt": "p"}])
    council = Council(config)
    with caplog.at_level(logging.WARNING):
        await council.preflight()
        await council.preflight()
    assert caplog.text.count("CLIs run unconfined") == 1, caplog.text


@pytest.mark.sandbox
async def test_doctor_names_the_sandbox_a_run_will_use(tmp_path: Path) -> None:
    config = run_config(new_repo(tmp_path), [{"id": "t1", "prompt": "p"}])
    [check] = await sandbox_checks(config)
    assert check.status == "ok" and "bubblewrap" in check.detail


@pytest.mark.sandbox
async def test_doctor_says_what_network_model_lets_a_cli_reach(tmp_path: Path) -> None:
    config = run_config(
        new_repo(tmp_path), [{"id": "t1", "prompt": "p"}], sandbox={"network": "model"}
    )
    [check] = await sandbox_checks(config)
    assert check.status == "ok" and "network: model" in check.detail, check
    assert "only its model's API hosts" in check.detail and "HTTPS_PROXY" in check.detail


@pytest.mark.sandbox
async def test_a_confined_cli_that_is_not_installed_is_said_as_such(tmp_path: Path) -> None:
    reach, worktree, home, _ = layout(tmp_path)
    binary, reason = await choice.probe()
    assert binary is not None, reason
    adapter = CommandAdapter({"binary": "no-such-cli-anywhere", "args": ["{prompt}"]})
    request = AdapterRequest(prompt="p", workdir=worktree, home=home, task_id="t1")
    sandbox = Sandbox(SandboxSettings("bubblewrap", binary, reason=reason), reach)
    with pytest.raises(AdapterError, match="'no-such-cli-anywhere' not found"):
        await run_cli(adapter, request, log_dir=tmp_path / "logs", sandbox=sandbox)


@pytest.mark.sandbox
async def test_a_confined_cli_runs_with_its_log_naming_the_sandbox(tmp_path: Path) -> None:
    reach, worktree, home, _ = layout(tmp_path)
    binary, reason = await choice.probe()
    assert binary is not None, reason
    adapter = CommandAdapter({"binary": "sh", "args": ["-c", "echo {prompt}; ls /proc | wc -l"]})
    request = AdapterRequest(prompt="hello", workdir=worktree, home=home, task_id="t1")
    sandbox = Sandbox(SandboxSettings("bubblewrap", binary, reason=reason), reach)

    run = await run_cli(adapter, request, log_dir=tmp_path / "logs", sandbox=sandbox)

    assert run.ok, run.outcome
    log = run.log_path.read_text()
    assert f" sandbox: {reason}\n# argv: " in log and "hello" in log
    assert not run.survivors


def test_the_users_agents_and_runtime_directory_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reach, worktree, home, user = layout(tmp_path)
    runtime, agent = tmp_path / "run-user", tmp_path / "ssh-agent"
    runtime.mkdir()
    agent.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent / "agent.1234"))
    settings = SandboxSettings("bubblewrap", "/usr/bin/bwrap")
    plan = confinement(
        settings, reach, workdir=worktree, home=home, argv=["sh"], env={"PATH": "/bin"},
        user_home=str(user),
    )  # fmt: skip
    assert runtime in plan.hidden and agent in plan.hidden
    assert runtime in plan.frozen and agent in plan.frozen
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")  # never a system directory
    plan = confinement(
        settings, reach, workdir=worktree, home=home, argv=["sh"], env={"PATH": "/bin"},
        user_home=str(user),
    )  # fmt: skip
    assert Path("/run") not in plan.hidden
