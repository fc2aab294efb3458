"""What a CLI's start needs made ready, before ``cli_run`` spawns it: its private HOME
(``prepared``: the adapter's home files, its logins linked or not, the user's config carried),
its environment and the secrets it holds (``environment``: every value it was given remembered
as a secret, under the name a report may say, ``secret_names``), and, in a sandbox, its
confined command and network (``confined_command``)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    CommandSpec,
)
from orchestrator.process.command import marked
from orchestrator.process.env import child_env, home_ready, prepare_home
from orchestrator.runner.cli_network import CliNetwork, cli_network
from orchestrator.runner.launch import not_found
from orchestrator.runner.login_secrets import login_secrets
from orchestrator.runner.logins import link_credentials, unlink_credentials
from orchestrator.runner.user_config import Carried, carry_user_config
from orchestrator.safety import secret_mask
from orchestrator.safety.redaction import Redactor
from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.plan import Sandbox, confinement

__all__ = ["confined_command", "environment", "prepared", "secret_names"]

log = logging.getLogger(__name__)


def confined_command(
    adapter: Adapter,
    request: AdapterRequest,
    spec: CommandSpec,
    env: dict[str, str],
    sandbox: Sandbox,
    user_paths: Sequence[Path],
) -> tuple[list[str], CliNetwork]:
    """The CLI's command inside the sandbox (blocking: it looks at the disk) and its network
    (``orchestrator.runner.cli_network``: its own, with its model's loopback endpoint relayed
    in, or only its model's API hosts, or none), with what the log says of the sandbox; the
    CLI's program found on its PATH first, so one that is not installed is said as such."""
    settings, reach = sandbox.settings, sandbox.reach
    assert settings.binary is not None and reach is not None
    logins = (
        [credential.source(os.environ) for credential in adapter.credentials]
        if request.share_credentials
        else []
    )
    plan = confinement(
        settings,
        reach,
        workdir=Path(os.path.abspath(request.workdir)),
        home=Path(os.path.abspath(request.home)),
        argv=spec.argv,
        env=env,
        logins=[*logins, *user_paths, *map(Path, adapter.readable_dirs())],
        nested=adapter.sandboxes_itself(),
    )
    if not os.path.isabs(plan.executable):  # not found on the CLI's PATH
        raise not_found(adapter, spec.argv[0])
    net = cli_network(settings, plan, adapter, request, env, sandbox)
    argv: Sequence[str] = spec.argv
    plan = net.plan
    if net.relay is not None:  # its listeners first, then the CLI
        argv = net.relay.launcher(plan.executable, spec.argv)
        plan = dataclasses.replace(plan, executable=argv[0])
    joined = net.joined
    join, resolv = (sandbox.join, sandbox.resolv) if joined else (None, None)
    return bubblewrap.command(settings.binary, plan, argv, net.uplink, join, resolv), net


def prepared(home: Path, spec: CommandSpec, adapter: Adapter, request: AdapterRequest) -> Carried:
    # One worker-thread hop for all of it: this runs at every CLI start.
    credentials = adapter.credentials
    if spec.home_files or spec.stderr_files or not home_ready(home):
        prepare_home(home, spec.home_files, spec.stderr_files)
    if request.share_credentials:
        link_credentials(home, credentials)
        # The CLI can read its logins: their tokens are secrets the run knows from now on.
        secret_mask.remember_named(login_secrets(credentials))
    else:
        unlink_credentials(home, credentials)
    return carry_user_config(home, spec, adapter.user_files, request)


def environment(
    adapter: Adapter, request: AdapterRequest, spec: CommandSpec
) -> tuple[Path, dict[str, str], Redactor]:
    home = Path(os.path.abspath(request.home))
    names = (*adapter.env_names(), *request.pass_env)
    env, secrets = child_env(names, spec.env, request.env, home)
    # A variable the user names for this CLI (``pass_env``, a key variable its options name)
    # is passed for a reason, often a key under a name of their own: its value is a secret
    # whatever the name says.
    named = [env[name] for name in names if name not in adapter.passthrough_env and name in env]
    given = [*secrets, *named, *spec.secrets]
    secret_mask.remember_named(secret_names(adapter.name, env, request.env, given))
    secret_mask.remember(given)  # masked in everything stored from now on
    # Its log and events also hide what it was not given but may have found anyway: this
    # process's environment is readable through /proc by any process of the same user.
    return home, marked(env), Redactor([*given, *secret_mask.known()])


def secret_names(
    adapter: str, env: Mapping[str, str], config_env: Mapping[str, str], given: Sequence[str]
) -> dict[str, str]:
    """Each secret of ``given`` under the name a report may say (never the value): the run
    config's ``adapters.<name>.env.<VAR>``, else the variable it was passed as."""
    secret = set(given)
    named: dict[str, str] = {}
    for name, value in env.items():
        if value in secret:
            config = config_env.get(name) == value
            named[f"adapters.{adapter}.env.{name}" if config else name] = value
    return named
