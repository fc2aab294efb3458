"""Which AI coding CLIs this machine has, their versions, and whether each has a login.

``council init`` surveys every adapter the plugins provide (``detect_clis``) to write a
starter config; ``council doctor`` looks at the adapters a run config declares
(``cli_state``). A login is looked for where the run would find one (``runner.logins``): the
user's credential files the adapter lists and its options make the CLI use
(``Adapter.logins_used``), unless the adapter is configured ``credentials: isolated``, and the
key variables it passes on, set in the environment or given by the run config. Only paths and
variable names are ever reported, never a value.

Only CLIs that keep an account login (their adapter lists credential files) need one; a CLI
without (a local model server, the scripted stand-in) is not asked for any. AWS profiles and
gcloud's application-default login serve many tools: found alone they say nothing about this
CLI, so they count only while one of its variables naming Bedrock or Vertex is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import anyio

from orchestrator.adapter import AWS_PROFILES, GCLOUD_ADC, Adapter
from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.errors import AdapterError
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.runner.logins import found_credentials, login_summary
from orchestrator.runner.version import version_answer
from orchestrator.safety.redaction import is_sensitive

__all__ = ["SCRIPTED", "CliState", "Login", "cli_state", "detect_clis", "login_of"]

SCRIPTED = "scripted"  # the offline stand-in: always there, never a CLI to detect
# The built-in CLIs in the order a starter config prefers them; plugins' CLIs follow by name.
_PREFERRED = ("claude_code", "codex", "gemini", "qwen", "opencode", "aider", "ollama")
_CLOUD = (AWS_PROFILES, GCLOUD_ADC)
_PARALLEL = 4  # version commands start whole runtimes (node, python): a few at a time


@dataclass(frozen=True)
class Login:
    """Where the CLI would find a login; ``where`` says it in one line, names only."""

    needed: bool  # the CLI keeps an account login (its adapter lists credential files)
    found: bool
    where: str
    keys: list[str] = field(default_factory=list)  # the key variables it reads, by name
    keys_set: list[str] = field(default_factory=list)  # of those, set (or given by the config)
    files: list[str] = field(default_factory=list)  # the credential files found, by path
    out_of_reach: str | None = None  # a login kept where a private HOME cannot see it

    @property
    def ok(self) -> bool:
        return self.found or not self.needed


@dataclass(frozen=True)
class CliState:
    """One configured or detected CLI: the adapter, its binary, version and login."""

    name: str  # the name under `adapters:` (the adapter type when detected)
    adapter_type: str
    binary: str
    path: str | None
    version: str | None
    login: Login
    edits_files: bool
    version_timed_out_after: float | None = None  # its version command's limit, when it hung

    @property
    def found(self) -> bool:
        return self.path is not None


def login_of(
    adapter: Adapter, settings: AdapterConfig | None = None, env: Mapping[str, str] | None = None
) -> Login:
    """The login ``adapter`` would run with, configured as ``settings``, in ``env``."""
    env = os.environ if env is None else env
    settings = settings or AdapterConfig()
    isolated = settings.credentials == "isolated"
    named = (*adapter.env_names(), *settings.pass_env)
    keys = list(dict.fromkeys(name for name in named if is_sensitive(name)))
    # The run's environment, as far as a login goes: the run config's env over the user's.
    used = adapter.logins_used({**env, **settings.env})
    if not _cloud_chosen(adapter, env):
        used = tuple(c for c in used if c not in _CLOUD)
    files = [] if isolated else found_credentials(used, env)
    given = [name for name in settings.env if is_sensitive(name)]
    out_of_reach = adapter.login_out_of_reach()
    where = login_summary(
        used,
        keys,
        isolated=isolated,
        keychain=out_of_reach,
        env=env,
    )
    if given:
        prefix = "" if where.startswith("no login found") else f"{where}; "
        where = f"{prefix}{', '.join(given)} given by the run config"
    elif not adapter.credentials and not keys:
        where = "no login needed"  # an offline persona, a local model, a plain command
    keys_set = [name for name in keys if env.get(name)] + given
    return Login(
        needed=bool(adapter.credentials),
        found=bool(files) or bool(keys_set),
        where=where,
        keys=keys,
        keys_set=keys_set,
        files=[str(path) for _, path in files],
        out_of_reach=out_of_reach,
    )


def _cloud_chosen(adapter: Adapter, env: Mapping[str, str]) -> bool:
    clouds = ("BEDROCK", "VERTEX")
    return any(env.get(name) for name in adapter.env_names() if any(c in name for c in clouds))


async def cli_state(
    name: str,
    adapter: Adapter,
    settings: AdapterConfig | None = None,
    env: Mapping[str, str] | None = None,
) -> CliState:
    """``adapter``'s binary on PATH, its version (None when its version command fails) and
    its login."""
    check = adapter.check()
    answer = await version_answer(adapter) if check.found else None
    return CliState(
        name=name,
        adapter_type=adapter.name,
        binary=adapter.binary,
        path=check.path,
        version=answer.version if answer else None,
        login=login_of(adapter, settings, env),
        edits_files=adapter.edits_files,
        version_timed_out_after=answer.timed_out_after if answer else None,
    )


async def detect_clis(
    registry: AdapterRegistry, env: Mapping[str, str] | None = None
) -> list[CliState]:
    """Every CLI the plugins can drive without options (a preset adapter such as ``command``
    needs some, and the scripted stand-in is left out), installed or not, preferred first."""
    adapters: list[Adapter] = []
    for name in _ordered(registry.names()):
        try:
            adapters.append(registry.create(name))
        except AdapterError:
            continue
    states: list[CliState | None] = [None] * len(adapters)
    limiter = anyio.CapacityLimiter(_PARALLEL)

    async def one(index: int, adapter: Adapter) -> None:
        async with limiter:
            states[index] = await cli_state(adapter.name, adapter, None, env)

    async with anyio.create_task_group() as tasks:
        for index, adapter in enumerate(adapters):
            tasks.start_soon(one, index, adapter)
    return [state for state in states if state is not None]


def _ordered(names: Sequence[str]) -> list[str]:
    known = [name for name in _PREFERRED if name in names]
    return known + sorted(name for name in names if name not in _PREFERRED and name != SCRIPTED)
