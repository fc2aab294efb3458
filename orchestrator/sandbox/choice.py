"""Which sandbox a run's CLIs get: ``sandbox.mode`` against what this machine has.

- ``bubblewrap``: ``bwrap`` must be on PATH and work here (a probe runs it once per process,
  as every sandbox starts: in a user namespace of its own with no capability; some machines
  forbid user namespaces, a container's seccomp profile or ``user.max_user_namespaces=0``
  among them); otherwise the run refuses to start, saying why;
- ``auto`` (the default): bubblewrap when it works, else none, with the reason, which the
  run says when it starts and ``council doctor`` shows;
- ``network: open`` under bubblewrap: a network namespace of the CLI's own whose way out is
  ``slirp4netns`` (``sandbox.network``: no host loopback), where the machine has what it needs,
  else the machine's network, said with the reason;
- ``network: model`` under bubblewrap: no route out but an allow-list proxy to the model's
  API hosts (``sandbox.proxy``), which needs nothing of the machine but bubblewrap;
- ``none``: no sandbox; the orchestrator's own checks (``orchestrator.git.seal``, the tamper
  guard) still hold, before and after each CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio.to_thread

from orchestrator.config.sandbox import LimitsConfig, SandboxConfig
from orchestrator.errors import ConfigError, ConfigIssue
from orchestrator.process.command import run_short
from orchestrator.process.limits import Limits, find_prlimit
from orchestrator.sandbox import bubblewrap, network
from orchestrator.sandbox.plan import SandboxSettings

__all__ = ["limits_of", "probe", "settings_for"]

_PROBE_TIMEOUT = 20.0
_probed: dict[str, str | None] = {}  # bwrap path -> why it does not work, None when it does


async def probe() -> tuple[str | None, str]:
    """``bwrap``'s path when it works on this machine (else None), and why, for a human."""
    if not sys.platform.startswith("linux"):
        return None, f"no sandbox for {sys.platform} yet (bubblewrap is Linux only)"
    binary = bubblewrap.find()
    if binary is None:
        return None, "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt install bubblewrap)"
    if binary not in _probed:
        argv = [binary, *bubblewrap.PROBE]
        # In a worker thread: starting a process opens files, which the loop never does.
        result = await anyio.to_thread.run_sync(
            lambda: run_short(argv, cwd=Path("/"), timeout=_PROBE_TIMEOUT)
        )
        _probed[binary] = None if result.ok else _why(result.output)
    problem = _probed[binary]
    if problem is not None:
        return None, f"{binary} does not work here: {problem}"
    return binary, f"bubblewrap ({binary})"


def _why(output: str) -> str:
    said = (output.strip() or "it failed")[-300:]
    if any(word in said.lower() for word in ("namespace", "uid map", "setting up uid")):
        return f"user namespaces are not allowed here ({said})"
    return said


def limits_of(config: LimitsConfig) -> Limits:
    """The run config's ``limits`` as the process layer takes them."""
    memory, file_size = config.memory, config.file_size
    return Limits(
        processes=config.processes,
        memory=None if memory is None else int(memory),
        file_size=None if file_size is None else int(file_size),
    )


async def settings_for(config: SandboxConfig, where: str = "sandbox") -> SandboxSettings:
    """The resolved settings of ``config`` (``where`` names it in an error)."""
    open_ = config.network != "none"
    read, write = tuple(config.read), tuple(config.write)
    if config.mode == "none":
        return SandboxSettings("none", None, open_, read, write, "sandbox: none (configured)")
    binary, reason = await probe()
    if binary is None:
        if config.mode == "bubblewrap":
            raise ConfigError(
                [ConfigIssue("<run config>", None, f"{where}.mode", f"bubblewrap: {reason}")]
            )
        return SandboxSettings("none", None, open_, read, write, f"no sandbox: {reason}")
    limits = limits_of(config.limits)
    if limits.any and find_prlimit() is None:
        problem = "prlimit (util-linux) is not installed, which sets them; or say `limits: none`"
        raise ConfigError([ConfigIssue("<run config>", None, f"{where}.limits", problem)])
    if config.network == "model":  # no route out but the proxy: no helper needed
        reason = f"{reason}; network: model"
        return SandboxSettings(
            "bubblewrap", binary, True, read, write, reason, limits=limits, only_model=True
        )
    uplink, reason = await _uplink(config, reason)
    return SandboxSettings(
        "bubblewrap", binary, open_, read, write, reason, uplink=uplink, limits=limits
    )


async def _uplink(config: SandboxConfig, reason: str) -> tuple[str | None, str]:
    """The network helper an open network gets (``sandbox.network``), and the reason said."""
    if config.network != "open":
        return None, f"{reason}; network: none"
    known, why = network.probed()  # probed once per process: later launches need no thread
    if not known:
        why = await anyio.to_thread.run_sync(network.problem)
    helper = network.find()
    if why is not None or helper is None:
        return None, f"{reason}; network: the machine's ({why})"
    return helper, f"{reason}; network: its own ({network.HELPER}: no host loopback)"
