"""Which sandbox a run's CLIs get here (``orchestrator.sandbox.choice``), run-wide and for each
adapter that sets its own: bubblewrap where it works, a warning where a run would go without,
saying what the verify and setup commands (code a CLI wrote) get then: a private HOME only.

A bubblewrap sandbox is not taken on its word: a real escape attempt runs inside the very
command line a CLI would get, as the user this runs as (``orchestrator.sandbox.escape_check``),
and the check fails, naming what got out, when it does not hold. Its limits are said too, with
a warning where a process limit cannot hold (root with no cgroup to make); with ``network:
model``, what that lets a CLI reach and which CLIs honour its proxy."""

from __future__ import annotations

from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import SandboxConfig, merged_sandbox
from orchestrator.errors import ConfigError
from orchestrator.process.limits import cgroups, describe, unbounded_as_root
from orchestrator.run.doctor.checklist import Check
from orchestrator.sandbox import escape_check
from orchestrator.sandbox.choice import settings_for
from orchestrator.sandbox.plan import SandboxSettings

__all__ = ["sandbox_checks"]

_FIX = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap), or say `sandbox: none`"
# What the verify and setup commands (code a CLI wrote) get where there is no sandbox.
_COMMANDS = (
    "; verify and setup commands get a private HOME (HOME and the XDG directories), not a "
    "sandbox: they can still name your files by path"
)
# Seen with the releases the real-CLI tier pins: each sent a CONNECT for its API to the proxy
# HTTPS_PROXY named. Ollama's model is on this machine by default: relayed, no proxy needed.
MODEL_ONLY = (
    "on the network each CLI reaches only its model's API hosts, through the orchestrator's "
    "allow-list proxy (HTTPS_PROXY: claude, codex, gemini, qwen, opencode and aider honour "
    "it; a CLI that ignores it reaches no network at all, and a model on this machine's "
    "loopback is relayed in, that port alone)"
)


async def sandbox_checks(config: RunConfig | None) -> list[Check]:
    run = config.sandbox if config is not None else SandboxConfig()
    checks = [await _check("sandbox", run, "sandbox")]
    for name, adapter in (config.adapters if config is not None else {}).items():
        if adapter.sandbox is not None:
            where = f"adapters.{name}.sandbox"
            checks.append(
                await _check(f"{name} sandbox", merged_sandbox(run, adapter.sandbox), where)
            )
    return checks


async def _check(name: str, config: SandboxConfig, where: str) -> Check:
    try:
        settings = await settings_for(config, where)
    except ConfigError as exc:
        return Check.fail("sandbox", name, str(exc), _FIX)
    if settings.kind == "bubblewrap":
        return await _tried(name, settings)
    if config.mode == "none":
        return Check.warn(
            "sandbox",
            name,
            "none (configured): each CLI reaches whatever you can; the orchestrator's own "
            f"checks still run before and after it{_COMMANDS}",
            "remove `sandbox: none` to confine the CLIs where the machine can",
        )
    return Check.warn(
        "sandbox",
        name,
        f"{settings.reason}: each CLI reaches whatever you can; the orchestrator's own checks "
        f"still run before and after it{_COMMANDS}",
        _FIX,
    )


async def _tried(name: str, settings: SandboxSettings) -> Check:
    """The sandbox as an escape attempt from inside it found it."""
    network = "" if settings.network else ", no network"
    outcome = await escape_check.attempt(settings)
    if outcome.problem:
        return Check.fail(
            "sandbox",
            name,
            f"{settings.reason}: an escape attempt inside it could not run, so nothing says "
            f"it holds: {outcome.problem}",
            "run `council doctor` again; if it persists, say `sandbox: none` knowingly",
        )
    if outcome.escaped:
        return Check.fail(
            "sandbox",
            name,
            f"{settings.reason}{network} does NOT hold here: from inside it a CLI could "
            + "; ".join(outcome.escaped),
            "upgrade bubblewrap (0.8 or later: --disable-userns) and run as a user; until "
            "then a CLI reaches what you can",
        )
    limits = describe(settings.limits)
    untried = f" (not installed, untried: {', '.join(outcome.missing)})" if outcome.missing else ""
    detail = (
        f"{settings.reason}{network}, in a user namespace with no capability: an escape "
        f"attempt from inside ({len(outcome.held)} ways: umount, remount, nested namespace"
        f"{untried}) was refused; each CLI reaches only its own work; limits: {limits}"
    )
    if settings.only_model:
        detail = f"{detail}; {MODEL_ONLY}"
    if unbounded_as_root(settings.limits):
        return Check.warn(
            "sandbox",
            name,
            f"{detail} ({cgroups().problem or 'no cgroup'})",
            "as root a process limit needs a cgroup this process can make (cgroup v1 "
            "`pids`, or a v2 tree with the pids controller); or run as a user",
        )
    return Check.ok("sandbox", name, detail)
