"""Which sandbox a run's CLIs get here (``orchestrator.sandbox.choice``), run-wide and for each
adapter that sets its own: bubblewrap where it works, a warning where a run would go without,
saying what the verify and setup commands (code a CLI wrote) get then: a private HOME only."""

from __future__ import annotations

from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import SandboxConfig, merged_sandbox
from orchestrator.errors import ConfigError
from orchestrator.run.doctor.checklist import Check
from orchestrator.sandbox.choice import settings_for

__all__ = ["sandbox_checks"]

_FIX = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap), or say `sandbox: none`"
# What the verify and setup commands (code a CLI wrote) get where there is no sandbox.
_COMMANDS = (
    "; verify and setup commands get a private HOME (HOME and the XDG directories), not a "
    "sandbox: they can still name your files by path"
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
    network = "" if settings.network else ", no network"
    if settings.kind == "bubblewrap":
        return Check.ok(
            "sandbox", name, f"{settings.reason}{network}: each CLI reaches only its own work"
        )
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
