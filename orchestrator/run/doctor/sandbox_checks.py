"""Which sandbox a run's CLIs get here (``orchestrator.sandbox.choice``), run-wide and for each
adapter that sets its own: bubblewrap where it works, a warning where a run would go without;
with ``network: model``, what that lets a CLI reach and which CLIs honour its proxy."""

from __future__ import annotations

from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import SandboxConfig, merged_sandbox
from orchestrator.errors import ConfigError
from orchestrator.run.doctor.checklist import Check
from orchestrator.sandbox.choice import settings_for

__all__ = ["sandbox_checks"]

_FIX = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap), or say `sandbox: none`"
# Seen with the releases the real-CLI tier pins: each sent a CONNECT for its API to the proxy
# HTTPS_PROXY named. Ollama's model is on this machine by default: relayed, no proxy needed.
MODEL_ONLY = (
    "each CLI reaches only its own work, and on the network only its model's API hosts, "
    "through the orchestrator's allow-list proxy (HTTPS_PROXY: claude, codex, gemini, qwen, "
    "opencode and aider honour it; a CLI that ignores it reaches no network at all, and a "
    "model on this machine's loopback is relayed in, that port alone)"
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
    if settings.kind == "bubblewrap" and settings.only_model:
        return Check.ok("sandbox", name, f"{settings.reason}: {MODEL_ONLY}")
    if settings.kind == "bubblewrap":
        return Check.ok(
            "sandbox", name, f"{settings.reason}{network}: each CLI reaches only its own work"
        )
    if config.mode == "none":
        return Check.warn(
            "sandbox",
            name,
            "none (configured): each CLI reaches whatever you can; the orchestrator's own "
            "checks still run before and after it",
            "remove `sandbox: none` to confine the CLIs where the machine can",
        )
    return Check.warn(
        "sandbox",
        name,
        f"{settings.reason}: each CLI reaches whatever you can; the orchestrator's own checks "
        "still run before and after it",
        _FIX,
    )
