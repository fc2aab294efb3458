"""The adapter registry: adapter name -> class, filled by plugins, queried by everyone else.

Plugins fill it through their ``register_adapters`` hook (see ``orchestrator.plugins.hookspecs``); a
Python caller may also ``add`` a class directly (the second of the three ways to add a CLI).
Every class is checked when it is added, so a broken adapter fails at load time with the name
of the plugin that brought it, not in the middle of a run::

    registry.names()                       # ['aider', 'claude_code', 'command', ...]
    registry.get("codex")                  # the class; AdapterError listing known names if unknown
    registry.plugin_of("codex")            # 'adapters.codex'
    registry.create("fast", run_config.adapters["fast"])   # an instance, options validated

A built-in adapter is known by its name from the start and its class added when it is first
asked for (``add_later``): its plugin's module is imported then, so a run imports the adapters it
uses, not all nine (some 11 ms of every command's start). Its class is checked then, as any
other; a name taken twice is refused at load all the same, the built-in named.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.adapter import Adapter, AdapterConfig
from orchestrator.config import adapter_entry
from orchestrator.config.suggest import did_you_mean
from orchestrator.errors import AdapterError, PluginError
from orchestrator.ids import is_safe_id

__all__ = ["AdapterRegistry", "PluginInfo"]


@dataclass(frozen=True)
class PluginInfo:
    """Where an adapter came from: the plugin's name and how it was found."""

    name: str  # a built-in's module path, or a third-party entry point's name
    origin: str = "in-process"  # "built-in", "distribution <name> <version>", "in-process"

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.origin})"


class AdapterRegistry:
    def __init__(self) -> None:
        self._classes: dict[str, type[Adapter]] = {}
        self._plugins: dict[str, PluginInfo] = {}
        self._later: dict[str, tuple[PluginInfo, Callable[[], None]]] = {}  # (``add_later``)
        # A class asked for in two threads is added once; re-entrant, so a module that asks for
        # another adapter while it is imported gets it rather than waiting on itself.
        self._loading = threading.RLock()

    def add(self, adapter_class: Any, plugin: PluginInfo | str = "in-process") -> None:
        """Register ``adapter_class`` as provided by ``plugin``; refuse anything invalid."""
        info = plugin if isinstance(plugin, PluginInfo) else PluginInfo(plugin)
        name = _check_class(adapter_class, info)
        later = self._later.get(name)
        first = self._plugins.get(name) or (later[0] if later and later[0] != info else None)
        if first is not None:
            raise PluginError(
                f"adapter name {name!r} is registered twice: by {first} "
                f"and by {info}; uninstall one of them or set COUNCIL_PLUGINS to choose"
            )
        self._later.pop(name, None)
        self._classes[name] = adapter_class
        self._plugins[name] = info

    def add_later(self, name: str, plugin: PluginInfo, load: Callable[[], None]) -> None:
        """Adapter ``name`` of ``plugin``, whose class ``load`` adds (``add``) when the name is
        first asked for (module doc). A name taken already is refused as ``add`` refuses it."""
        taken = self._plugins.get(name) or (self._later[name][0] if name in self._later else None)
        if taken is not None:
            raise PluginError(
                f"adapter name {name!r} is registered twice: by {taken} "
                f"and by {plugin}; uninstall one of them or set COUNCIL_PLUGINS to choose"
            )
        self._later[name] = (plugin, load)

    def names(self) -> list[str]:
        return sorted({*self._classes, *self._later})

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._later

    def _load(self, name: str) -> None:
        """The class of an adapter added later, added now (``add_later``)."""
        with self._loading:
            later = self._later.get(name)
            if later is None:
                return
            plugin, load = later
            load()
            if self._later.pop(name, None) is not None:
                raise PluginError(f"{plugin} did not register its adapter {name!r}")

    def get(self, name: str) -> type[Adapter]:
        if name in self._later:
            self._load(name)
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise AdapterError(
                f"unknown adapter {name!r}{did_you_mean(name, self.names())}; known adapters: "
                f"{known} (a plugin's adapter? see `council adapters list`)"
            ) from None

    def options_models(self) -> Mapping[str, type[AdapterConfig]]:
        """Each adapter type's options model (for ``load_config`` and the JSON Schema): a
        mapping whose models are those of the classes, each asked for when it is looked up."""
        return _OptionsModels(self)

    def plugin_of(self, name: str) -> PluginInfo:
        self.get(name)
        return self._plugins[name]

    def create(self, name: str, config: adapter_entry.AdapterConfig | None = None) -> Adapter:
        """An adapter for the run config's ``adapters[name]``; its ``options`` are validated.

        The class is ``config.type`` (which defaults to ``name``); ``config.executable``
        replaces the class's default binary. ``model`` and ``env`` are per request and travel
        in the ``AdapterRequest``, not in the adapter.
        """
        config = config or adapter_entry.AdapterConfig()
        kind = config.type or name
        label = f"adapter {name!r}" + (f" (type {kind!r})" if kind != name else "")
        try:
            adapter_class = self.get(kind)
        except AdapterError as exc:
            raise AdapterError(f"{label}: {exc}") from None
        try:
            options = adapter_class.Config.model_validate(config.options)
        except ValidationError as exc:
            raise AdapterError(f"{label}: {_describe(exc, adapter_class.Config)}") from None
        try:
            return adapter_class(options, executable=config.executable)
        except AdapterError:
            raise
        except Exception as exc:  # a plugin's __init__ is outside code; name whose it is
            raise AdapterError(f"{label}: could not be created: {exc}") from exc


class _OptionsModels(Mapping[str, type[AdapterConfig]]):
    """``AdapterRegistry.options_models``: an adapter's model looked up loads its class."""

    def __init__(self, registry: AdapterRegistry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> type[AdapterConfig]:
        if name not in self._registry:
            raise KeyError(name)
        return self._registry.get(name).Config

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry.names())

    def __len__(self) -> int:
        return len(self._registry.names())


def _check_class(adapter_class: Any, plugin: PluginInfo) -> str:
    if not (isinstance(adapter_class, type) and issubclass(adapter_class, Adapter)):
        raise PluginError(
            f"{plugin} registered {adapter_class!r}, which is not a subclass of "
            "orchestrator.adapter.Adapter"
        )
    where = f"{plugin}: adapter class {adapter_class.__qualname__}"
    name = getattr(adapter_class, "name", None)
    if not isinstance(name, str) or not is_safe_id(name):
        raise PluginError(
            f"{where} has name {name!r}; a name must match ^[a-z0-9][a-z0-9._-]{{0,63}}$"
        )
    executable = getattr(adapter_class, "executable", None)
    if not isinstance(executable, str) or not executable or "\0" in executable:
        raise PluginError(f"{where} must set `executable` to the CLI's binary name")
    if inspect.isabstract(adapter_class):
        missing = ", ".join(sorted(adapter_class.__abstractmethods__))
        raise PluginError(f"{where} does not implement {missing}")
    config = getattr(adapter_class, "Config", None)
    if not (isinstance(config, type) and issubclass(config, AdapterConfig)):
        raise PluginError(f"{where}: its Config must subclass orchestrator.adapter.AdapterConfig")
    return name


def _describe(error: ValidationError, model: type[AdapterConfig]) -> str:
    problems = []
    for issue in error.errors():
        where = ".".join(str(part) for part in issue["loc"]) or "options"
        if issue["type"] == "extra_forbidden":
            problems.append(f"unknown option {where!r}")
        else:
            problems.append(f"option {where!r}: {issue['msg']}")
    valid = ", ".join(model.model_fields) or "none"
    return "; ".join(problems) + f" (valid options: {valid})"
