"""Plugins: load the built-in adapters and third-party plugins, and call the observer hooks.

The only module besides ``hookspecs`` that imports pluggy. Loading goes:

1. every module in ``BUILTIN_PLUGINS`` (the built-in adapters are plugins like any other); a
   missing one is a ``PluginError`` naming it. Those of ``BUILTIN_ADAPTERS`` are imported when
   one of their adapters is first asked for (``AdapterRegistry.add_later``): a run imports the
   adapters it uses; any other is imported here;
2. plugin objects passed in-process (``load_plugins(extra=[...])``);
3. third-party plugins, found through the ``cli_council`` entry-point group, unless
   ``COUNCIL_DISABLE_PLUGINS=1``; ``COUNCIL_PLUGINS=a,b`` keeps only the entry points named;
4. a check that every ``@hookimpl`` names a real hook (a typo fails loudly, with a suggestion);
5. each plugin's ``register_adapters`` fills the ``AdapterRegistry``; a duplicate adapter name
   fails with both plugins named; ``register_record_rules`` gives the record rules and
   ``register_forges`` the forge types (``ForgeTypes``).

Any failure is a ``PluginError`` that says which plugin; nothing half-loaded is returned.
Observer hooks run each plugin separately: one that raises is logged and skipped, so a plugin
can never break a run.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from orchestrator.errors import PluginError
from orchestrator.plugins import hookspecs
from orchestrator.plugins.forge_types import ForgeTypes
from orchestrator.plugins.record_rule import RecordRule
from orchestrator.plugins.registry import AdapterRegistry, PluginInfo

if TYPE_CHECKING:
    from orchestrator.adapter import Outcome
    from orchestrator.events import Event
    from orchestrator.plugins.session_info import SessionInfo

__all__ = [
    "ALLOW_ENV",
    "BUILTIN_PLUGINS",
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "EntryPointLike",
    "PluginHost",
    "default_plugins",
    "load_plugins",
]

log = logging.getLogger(__name__)

BUILTIN_PLUGINS: tuple[str, ...] = (
    "adapters.claude_code",
    "adapters.codex",
    "adapters.gemini",
    "adapters.qwen",
    "adapters.opencode",
    "adapters.aider",
    "adapters.ollama",
    "adapters.command",
    "adapters.scripted",
)
# The adapters each built-in plugin registers (``register_adapters``), known without importing
# it (tests/plugins checks each module registers exactly these).
BUILTIN_ADAPTERS: Mapping[str, tuple[str, ...]] = {
    path: (path.removeprefix("adapters."),) for path in BUILTIN_PLUGINS
}
ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "COUNCIL_DISABLE_PLUGINS"
ALLOW_ENV = "COUNCIL_PLUGINS"
_TRUE = frozenset({"1", "true", "yes", "on"})
_HOOKS = (
    "register_adapters",
    "register_forges",
    "register_record_rules",
    *hookspecs.OBSERVER_HOOKS,
)


class EntryPointLike(Protocol):
    """What is needed of an ``importlib.metadata.EntryPoint`` (tests pass look-alikes)."""

    @property
    def name(self) -> str: ...

    def load(self) -> Any: ...


class PluginHost:
    """The loaded plugins: the adapter registry they filled, and their observer hooks."""

    def __init__(
        self,
        manager: pluggy.PluginManager,
        registry: AdapterRegistry,
        plugins: list[PluginInfo],
        record_rules: list[RecordRule] | None = None,
        forges: ForgeTypes | None = None,
    ) -> None:
        self.registry = registry
        self.forges = forges or ForgeTypes()  # what ``register_forges`` gave
        self.plugins = plugins
        self.record_rules = record_rules or []  # what ``register_record_rules`` gave
        # Plugins never change after loading, so the per-call lookup is done once here.
        self._observers = {
            name: getattr(manager.hook, name).get_hookimpls() for name in hookspecs.OBSERVER_HOOKS
        }

    def session_started(self, session: SessionInfo) -> None:
        self._notify("on_session_start", session=session)

    def event(self, event: Event) -> None:
        self._notify("on_event", event=event)

    def session_ended(self, session: SessionInfo, outcome: Outcome) -> None:
        self._notify("on_session_end", session=session, outcome=outcome)

    def _notify(self, hook: str, **kwargs: Any) -> None:
        for impl in self._observers[hook]:
            try:
                impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception:
                log.exception("plugin %r failed in %s; ignored", impl.plugin_name, hook)


def load_plugins(
    *,
    builtins: Iterable[str] | None = None,
    extra: Iterable[object] = (),
    entry_points: Iterable[EntryPointLike] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PluginHost:
    """Load plugins as the module docstring describes.

    ``builtins`` defaults to ``BUILTIN_PLUGINS``; ``entry_points`` to the installed
    ``cli_council`` entry points; ``environ`` (for the two variables) to ``os.environ``.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    registry = AdapterRegistry()
    for path in BUILTIN_PLUGINS if builtins is None else builtins:
        info = PluginInfo(path, "built-in")
        if path in BUILTIN_ADAPTERS and path not in infos:  # imported on first use
            infos[path] = info
            for name in BUILTIN_ADAPTERS[path]:
                registry.add_later(name, info, functools.partial(_load_builtin, registry, info))
        else:
            _register(manager, infos, _import_builtin(path), info)
    for plugin in extra:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        _register(manager, infos, plugin, PluginInfo(str(name), "in-process"))
    env = os.environ if environ is None else environ
    # Disabled: no scan of the installed distributions' entry points at all (15-35 ms a load,
    # and the test suite starts thousands of council processes with plugins disabled).
    if _disabled(env):
        found: list[EntryPointLike] = []
    else:
        found = _discover() if entry_points is None else list(entry_points)
    for entry_point in _selected(found, env):
        info = PluginInfo(entry_point.name, _origin(entry_point))
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"{info} failed to load: {type(exc).__name__}: {exc} "
                f"(set {DISABLE_ENV}=1 to run without third-party plugins)"
            ) from exc
        _register(manager, infos, plugin, info)
    _check_hooks(manager, infos)
    _each_registration(
        manager,
        infos,
        "register_adapters",
        lambda info: functools.partial(registry.add, plugin=info),
    )
    rules = _record_rules(manager, infos)
    forges = ForgeTypes()
    _each_registration(
        manager,
        infos,
        "register_forges",
        lambda info: lambda name, factory: forges.add(name, factory, plugin=info),
    )
    return PluginHost(manager, registry, list(infos.values()), rules, forges)


def _each_registration(
    manager: pluggy.PluginManager,
    infos: dict[str, PluginInfo],
    hook: str,
    register_for: Callable[[PluginInfo], Callable[..., None]],
) -> None:
    """Call each plugin's ``hook`` with the ``register`` function made for it; what it raises
    becomes a ``PluginError`` naming the plugin and the hook."""
    for impl in getattr(manager.hook, hook).get_hookimpls():
        info = infos[impl.plugin_name]
        try:
            impl.function(**dict.fromkeys(impl.argnames, register_for(info)))
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"{info} failed in {hook}: {type(exc).__name__}: {exc}") from exc


def _record_rules(manager: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> list[RecordRule]:
    """Every ``RecordRule`` the plugins register; a wrong object or a name taken twice is a
    ``PluginError`` naming the plugin."""
    rules: dict[str, tuple[RecordRule, PluginInfo]] = {}

    def register_for(info: PluginInfo) -> Callable[[Any], None]:
        def register(rule: Any) -> None:
            if not isinstance(rule, RecordRule):
                raise PluginError(f"{info} registered {rule!r}, which is not a RecordRule")
            if rule.name in rules:
                raise PluginError(
                    f"{info} registered record rule {rule.name!r}, "
                    f"already registered by {rules[rule.name][1]}"
                )
            rules[rule.name] = (rule, info)

        return register

    _each_registration(manager, infos, "register_record_rules", register_for)
    return [rule for rule, _ in rules.values()]


@functools.cache
def default_plugins() -> PluginHost:
    """The process-wide plugins, loaded on first use (``default_plugins.cache_clear()``
    makes the next call load them again)."""
    return load_plugins()


def _import_builtin(path: str) -> object:
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (path == exc.name or path.startswith(exc.name + ".")):
            raise PluginError(
                f"built-in adapter plugin {path!r} is missing (no module named {exc.name!r}); "
                "the installation of cli-council is incomplete"
            ) from None
        raise PluginError(f"built-in plugin {path!r} failed to import: {exc}") from exc
    except Exception as exc:
        raise PluginError(
            f"built-in plugin {path!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def _load_builtin(registry: AdapterRegistry, info: PluginInfo) -> None:
    """A built-in plugin of ``BUILTIN_ADAPTERS``, imported and its adapters added, when one of
    them is first asked for; what its ``register_adapters`` raises is a ``PluginError`` naming
    it, as at load."""
    plugin = _import_builtin(info.name)
    try:
        plugin.register_adapters(register=functools.partial(registry.add, plugin=info))  # type: ignore[attr-defined]
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(
            f"{info} failed in register_adapters: {type(exc).__name__}: {exc}"
        ) from exc


def _register(
    manager: pluggy.PluginManager, infos: dict[str, PluginInfo], plugin: object, info: PluginInfo
) -> None:
    if info.name in infos:
        raise PluginError(f"two plugins are named {info.name!r}: {infos[info.name]} and {info}")
    try:
        manager.register(plugin, name=info.name)
    except pluggy.PluginValidationError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise PluginError(f"{info}: {detail}") from None
    except ValueError:
        other = manager.get_name(plugin) or "?"
        first = infos.get(other, other)
        raise PluginError(f"{info} is the same plugin object as {first}") from None
    infos[info.name] = info


def _check_hooks(manager: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    # pluggy's check_pending only says "unknown hook"; name the plugin and suggest the hook
    # that was probably meant, since a misspelt hook would otherwise never be called.
    for name, info in infos.items():
        plugin = manager.get_plugin(name)
        for attribute in dir(plugin):
            if attribute in _HOOKS or manager.parse_hookimpl_opts(plugin, attribute) is None:
                continue
            guess = difflib.get_close_matches(attribute, _HOOKS, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else ""
            raise PluginError(
                f"{info} implements {attribute!r}, which is not a CLI Council hook{hint} "
                f"(hooks: {', '.join(_HOOKS)})"
            )
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from None
    for hook in hookspecs.OBSERVER_HOOKS:
        for impl in getattr(manager.hook, hook).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                raise PluginError(
                    f"{infos[impl.plugin_name]}: {hook} cannot be a hook wrapper; "
                    "observers are plain functions"
                )


def _discover() -> list[EntryPointLike]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _disabled(environ: Mapping[str, str]) -> bool:
    """Whether ``COUNCIL_DISABLE_PLUGINS`` turns every third-party plugin off (a yes value;
    it is never a list: ``COUNCIL_PLUGINS`` is the one that names plugins)."""
    return environ.get(DISABLE_ENV, "").strip().lower() in _TRUE


def _selected(
    entry_points: list[EntryPointLike], environ: Mapping[str, str]
) -> list[EntryPointLike]:
    if _disabled(environ):
        return []
    wanted = [name.strip() for name in environ.get(ALLOW_ENV, "").split(",") if name.strip()]
    if not wanted:
        return entry_points
    available = [entry_point.name for entry_point in entry_points]
    missing = [name for name in wanted if name not in available]
    if missing:
        raise PluginError(
            f"{ALLOW_ENV} names {', '.join(map(repr, missing))}, but no installed plugin has "
            f"that entry-point name (installed: {', '.join(available) or 'none'})"
        )
    return [entry_point for entry_point in entry_points if entry_point.name in wanted]


def _origin(entry_point: EntryPointLike) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is not None:
        return f"distribution {dist.name} {dist.version}"
    return f"entry point {getattr(entry_point, 'value', entry_point.name)}"
