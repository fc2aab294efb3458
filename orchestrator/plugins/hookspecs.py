"""The hooks a CLI Council plugin can implement: the whole plugin contract is on this page.

A plugin is any module or object with functions marked ``@hookimpl`` whose names and argument
names match a hook below (a plugin may take fewer arguments than the hook offers, never
others). A misspelt hook name is an error at load time, not a silently ignored function.

Adding a CLI from its own distribution takes two files::

    # council_mycli.py
    from orchestrator.plugins.hookspecs import hookimpl
    from orchestrator.adapter import Adapter

    class MyCli(Adapter):
        ...

    @hookimpl
    def register_adapters(register):
        register(MyCli)

    # pyproject.toml
    [project.entry-points.cli_council]
    mycli = "council_mycli"

Built-in adapters (``adapters/*.py``) are plugins of exactly this shape. Two environment
variables control third-party plugins: ``COUNCIL_DISABLE_PLUGINS=1`` loads none, and
``COUNCIL_PLUGINS=name1,name2`` loads only the entry points with those names.

Hooks are synchronous. ``register_adapters`` only registers: it runs once, when plugins load,
and must not start processes or do I/O. The observer hooks (``on_*``) run on the orchestrator's
event loop, so they must return quickly (hand slow work to a thread or a queue of your own);
an exception raised in one is logged and ignored, so an observer can never break a run.
Observer hooks cannot be hook wrappers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from orchestrator.adapter import Adapter, Outcome
    from orchestrator.events import Event
    from orchestrator.plugins.record_rule import RecordRule
    from orchestrator.plugins.session_info import SessionInfo

__all__ = [
    "OBSERVER_HOOKS",
    "PROJECT",
    "hookimpl",
    "hookspec",
    "on_event",
    "on_session_end",
    "on_session_start",
    "register_adapters",
    "register_forges",
    "register_record_rules",
]

PROJECT = "cli_council"
"""The pluggy project name, and the entry-point group third-party plugins are found through."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

OBSERVER_HOOKS = ("on_session_start", "on_event", "on_session_end")


@hookspec
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    """Call ``register(AdapterSubclass)`` once for each adapter this plugin provides.

    The class must subclass ``orchestrator.adapter.Adapter``, implement its abstract methods and
    carry a safe ``name`` (``^[a-z0-9][a-z0-9._-]{0,63}$``) that no other plugin uses: a name
    registered twice fails the load with an error naming both plugins.
    """


@hookspec
def register_forges(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Call ``register(name, factory)`` once for each forge type this plugin provides (a
    forge for ``forge: {type: name}``: GitLab, Gitea or Forgejo, or an issue tracker such as
    Linear or Jira as a source of tasks). ``factory(config, repo, environ)`` gets the run
    config's ``forge:`` section (its ``options`` are the plugin's own settings), the
    repository's path and the environment, and returns an object implementing
    ``orchestrator.forge.base.Forge`` (or, as a coroutine function, awaits to one). It is
    called when a run connects, not at load time. ``github`` is built in; a name registered
    twice fails the load naming both plugins (``orchestrator.plugins.forge_types``).
    """


@hookspec
def register_record_rules(register: Callable[[RecordRule], None]) -> None:
    """Call ``register(RecordRule(name, check, kinds))`` for each rule every write of a run's
    state records must pass (``orchestrator.plugins.record_rule``): a write that breaks one is
    refused with ``RecordRejected`` naming the rule, and nothing is written. Like
    ``register_adapters`` it runs once, when plugins load; a rule name must be unique.
    """


@hookspec
def on_session_start(session: SessionInfo) -> None:
    """A CLI session is about to start (``session`` says which task, phase and adapter)."""


@hookspec
def on_event(event: Event) -> None:
    """Something happened (an ``orchestrator.events.Event``: state changes, claims, merges,
    and what the CLIs said, as the scheduler reports it). Called often: keep it cheap."""


@hookspec
def on_session_end(session: SessionInfo, outcome: Outcome) -> None:
    """A CLI session finished; ``outcome`` is how its run was classified (succeeded,
    rate_limited, timed_out, ...)."""
