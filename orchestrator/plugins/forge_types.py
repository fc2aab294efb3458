"""The forge types plugins provide: name -> factory, filled by ``register_forges``.

A factory is called by ``orchestrator.forge.connect`` with the run config's ``forge:`` section
(``ForgeConfig``, its ``options`` the plugin's own settings), the repository's path and the
environment, and returns (or, when it is a coroutine function, awaits to) an object that
implements ``orchestrator.forge.base.Forge``. ``github`` is built in and cannot be taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.config.suggest import did_you_mean
from orchestrator.errors import PluginError, UsageError
from orchestrator.ids import is_safe_id
from orchestrator.plugins.registry import PluginInfo

__all__ = ["BUILTIN_FORGES", "ForgeFactory", "ForgeTypes"]

BUILTIN_FORGES = ("github",)

ForgeFactory = Callable[..., Any]
"""``factory(config, repo, environ) -> Forge`` (or an awaitable of one)."""


class ForgeTypes:
    def __init__(self) -> None:
        self._factories: dict[str, ForgeFactory] = {}
        self._plugins: dict[str, PluginInfo] = {}

    def add(self, name: Any, factory: Any, plugin: PluginInfo | str = "in-process") -> None:
        """Register ``factory`` as forge type ``name``; refuse a bad name, a name taken, or a
        factory that is not callable, naming the plugin."""
        info = plugin if isinstance(plugin, PluginInfo) else PluginInfo(plugin)
        if not isinstance(name, str) or not is_safe_id(name):
            raise PluginError(
                f"{info} registered forge type {name!r}; a name must match "
                "^[a-z0-9][a-z0-9._-]{0,63}$"
            )
        if name in BUILTIN_FORGES:
            raise PluginError(f"{info} registered forge type {name!r}, which is built in")
        if name in self._factories:
            raise PluginError(
                f"forge type {name!r} is registered twice: by {self._plugins[name]} and by {info}"
            )
        if not callable(factory):
            raise PluginError(
                f"{info} registered forge type {name!r} with {factory!r}, which is not callable"
            )
        self._factories[name] = factory
        self._plugins[name] = info

    def names(self) -> list[str]:
        return sorted([*BUILTIN_FORGES, *self._factories])

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN_FORGES or name in self._factories

    def factory(self, name: str) -> ForgeFactory:
        """The factory of plugin forge type ``name``; ``UsageError`` listing the known types."""
        try:
            return self._factories[name]
        except KeyError:
            raise UsageError(
                f"unknown forge type {name!r}{did_you_mean(name, self.names())}; known: "
                f"{', '.join(self.names())} (forge.type in the run config; a plugin's forge "
                "registers its type with `register_forges`)"
            ) from None

    def plugin_of(self, name: str) -> PluginInfo:
        self.factory(name)
        return self._plugins[name]
