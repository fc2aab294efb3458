"""The built-in plugins loaded once per test process, for the loads every test would repeat.

``tests/conftest.py`` clears ``default_plugins``'s cache around every test, so a test's first
call loads the plugins as that test's environment says. A load registers the nine built-in
adapters with pluggy, checks every hook and reads every installed distribution's entry points
(read even with ``COUNCIL_DISABLE_PLUGINS=1``, which then drops them): 15-35 ms, made 1,446
times by the 2,629 tests of ``tests/adapters`` alone (27 s of that directory's 75 s, at load 5).

A load of the built-ins alone (no built-ins or in-process plugins given; no entry points
given, or those installed turned off as the fixture turns them off: ``COUNCIL_DISABLE_PLUGINS=1``,
no ``COUNCIL_PLUGINS``), with nothing the loader reads changed by the test (its list of
built-ins, its own helpers, the adapter modules themselves), gives the same plugins every time:
``load_plugins`` here answers it with the host it loaded the first time, and loads anew
whenever that host no longer holds what it held when it was loaded (a test added to its
registry: nothing does today). Every other call is the real ``load_plugins``. The contract
tests' own ``load_plugins(entry_points=[], environ={})``, once per test, is such a load too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.plugins import host as plugins

__all__ = ["load_plugins"]

_real_load = plugins.load_plugins
# What the real loader reads besides the environment, as this process imported it.
_READS = ("BUILTIN_PLUGINS", "_import_builtin", "_discover", "_selected", "_register")
_as_imported = {name: getattr(plugins, name) for name in _READS}
_kept: tuple[plugins.PluginHost, tuple[object, ...]] | None = None


def load_plugins(
    *,
    builtins: Iterable[str] | None = None,
    extra: Iterable[object] = (),
    entry_points: Iterable[plugins.EntryPointLike] | None = None,
    environ: Mapping[str, str] | None = None,
) -> plugins.PluginHost:
    """``orchestrator.plugins.host.load_plugins``, a load of the built-ins alone kept (module
    doc)."""
    global _kept
    if not _builtins_alone(builtins, extra, entry_points, environ):
        given: dict[str, Any] = {"builtins": builtins, "extra": extra}
        given |= {"entry_points": entry_points, "environ": environ}
        return _real_load(**given)
    if _kept is None or _contents(_kept[0]) != _kept[1]:
        host = _real_load(entry_points=[], environ={})
        _kept = host, _contents(host)
    return _kept[0]


def _builtins_alone(
    builtins: Iterable[str] | None,
    extra: Iterable[object],
    entry_points: Iterable[plugins.EntryPointLike] | None,
    environ: Mapping[str, str] | None,
) -> bool:
    """Would the real loader load the built-in adapters and nothing else, as this process
    imported them? No built-ins or in-process plugins given, no third-party plugin selected
    (none given, or those installed turned off by ``COUNCIL_DISABLE_PLUGINS=1``), no allow-list
    (which fails on a name it does not find), and none of the loader's parts patched."""
    environ = os.environ if environ is None else environ
    if entry_points is None:
        third_party_off = environ.get(plugins.DISABLE_ENV) == "1"
    else:  # only a list or a tuple: an iterator would be used up by looking at it
        third_party_off = isinstance(entry_points, list | tuple) and not entry_points
    return (
        builtins is None
        and isinstance(extra, list | tuple)
        and not extra
        and third_party_off
        and plugins.ALLOW_ENV not in environ
        and all(getattr(plugins, name) is value for name, value in _as_imported.items())
    )


def _contents(host: plugins.PluginHost) -> tuple[object, ...]:
    """What a host holds: its adapters (with their classes), its forge types, its plugins, its
    record rules, and the adapter modules it was loaded from."""
    registry, forges = host.registry, host.forges
    return (
        tuple((name, registry.get(name)) for name in registry.names()),
        tuple(forges.names()),  # a name is never registered twice: names say it all
        tuple(map(str, host.plugins)),
        tuple(id(rule) for rule in host.record_rules),
        tuple(id(sys.modules.get(path)) for path in plugins.BUILTIN_PLUGINS),
    )
