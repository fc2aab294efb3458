"""Each CLI a run would use: on PATH, its version command answers, and it has a login.

Whether the CLI's release actually works with CLI Council is a live run against a local fake
model (``council adapters check --live``), which the command line adds when asked: it starts
the CLI for real.
"""

from __future__ import annotations

from orchestrator.run.doctor.checklist import Check
from orchestrator.run.setup.cli_detect import CliState
from orchestrator.run.setup.cli_fixes import install_fix, login_fix

__all__ = ["cli_checks", "no_cli_found"]

_GROUP = "cli"


def cli_checks(cli: CliState, *, configured: bool) -> list[Check]:
    """The checks of ``cli``; ``configured`` when a run config declares it (its fixes may
    then point at the config's settings)."""
    setting = f"adapters.{cli.name}.executable" if configured else None
    if not cli.found:
        detail = f"{cli.binary!r} is not on PATH"
        fix = install_fix(cli.adapter_type, cli.binary, setting)
        return [Check.fail(_GROUP, cli.name, detail, fix)]
    if cli.version is None and cli.version_timed_out_after is not None:
        # A slow start (node on a loaded machine), not a broken install: no "reinstall".
        limit = f"{cli.version_timed_out_after:g} s"
        detail = f"found at {cli.path}, but `{cli.binary} --version` timed out after {limit}"
        fix = f"run `{cli.path} --version` to see how long it takes; check again when idle"
        return [Check.warn(_GROUP, cli.name, detail, fix)]
    if cli.version is None:
        detail = f"found at {cli.path}, but `{cli.binary} --version` failed"
        again = install_fix(cli.adapter_type, cli.binary)
        fix = f"run `{cli.path} --version` to see why, or reinstall ({again})"
        return [Check.fail(_GROUP, cli.name, detail, fix)]
    checks = [Check.ok(_GROUP, cli.name, f"{cli.version} ({cli.path})")]
    login = cli.login
    if login.needed:
        name = f"{cli.name} login"
        if login.found:
            checks.append(Check.ok(_GROUP, name, login.where))
        else:
            fix = login.out_of_reach or login_fix(cli.adapter_type, login.keys)
            checks.append(Check.fail(_GROUP, name, "no login found", fix))
    return checks


def no_cli_found() -> Check:
    """Without a run config, and no CLI on this machine."""
    return Check.fail(
        _GROUP,
        "AI coding CLIs",
        "none found on PATH",
        f"{install_fix('claude_code', 'claude')} (or another); meanwhile `council demo` "
        "shows a whole run with offline stand-ins",
    )
