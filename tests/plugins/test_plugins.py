"""Plugin loading, the adapter registry, and observer hooks that cannot break a run."""

from __future__ import annotations

import ast
import inspect
import logging
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.command import CommandAdapter
from adapters.scripted import Scripted
from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    Outcome,
    OutcomeKind,
    Stream,
)
from orchestrator.config import adapter_entry
from orchestrator.errors import AdapterError, PluginError
from orchestrator.events import Event
from orchestrator.plugins import hookspecs
from orchestrator.plugins import host as plugins
from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.registry import AdapterRegistry, PluginInfo
from orchestrator.plugins.session_info import SessionInfo
from tests.support.timing import patience

OURS = ("adapters.command", "adapters.scripted")


class Echo(Adapter):
    name = "echo-cli"
    executable = "echo"

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return CommandSpec(argv=[self.binary, request.prompt])

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        return []


def plugin_module(name: str, **hooks: Callable[..., Any]) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def registers(*classes: type) -> Callable[..., None]:
    def register_adapters(register: Callable[[type], None]) -> None:
        for adapter_class in classes:
            register(adapter_class)

    return register_adapters


@dataclass
class FakeEntryPoint:
    name: str
    plugin: object
    value: str = "fake.module"

    def load(self) -> object:
        if isinstance(self.plugin, Exception):
            raise self.plugin
        return self.plugin


def load(*entry_points: FakeEntryPoint, **environ: str) -> plugins.PluginHost:
    return plugins.load_plugins(builtins=OURS, entry_points=entry_points, environ=environ)


# -- built-ins -------------------------------------------------------------------------------


def test_builtins_register_their_adapters() -> None:
    host = load()
    assert host.registry.names() == ["command", "scripted"]
    assert host.registry.get("scripted") is Scripted
    assert host.registry.get("command") is CommandAdapter
    assert host.registry.plugin_of("scripted") == PluginInfo("adapters.scripted", "built-in")


def test_the_builtin_tuple_lists_every_adapter_module_once() -> None:
    assert len(set(plugins.BUILTIN_PLUGINS)) == len(plugins.BUILTIN_PLUGINS) == 9
    assert set(OURS) <= set(plugins.BUILTIN_PLUGINS)
    assert all(path.startswith("adapters.") for path in plugins.BUILTIN_PLUGINS)


def test_each_builtin_registers_the_adapters_it_is_listed_with() -> None:
    """``BUILTIN_ADAPTERS`` names each built-in's adapters without importing it: what each
    module's ``register_adapters`` registers, exactly."""
    import importlib

    assert set(plugins.BUILTIN_ADAPTERS) == set(plugins.BUILTIN_PLUGINS)
    for path, names in plugins.BUILTIN_ADAPTERS.items():
        registered: list[str] = []
        importlib.import_module(path).register_adapters(
            register=lambda cls, found=registered: found.append(cls.name)
        )
        assert registered == list(names), path


def test_a_run_imports_only_the_builtin_adapters_it_asks_for() -> None:
    """A load knows every built-in adapter by name; its module is imported when the adapter
    is first asked for (a run pays for the adapters it uses, not all nine)."""
    code = (
        "import sys\n"
        "from orchestrator.plugins.host import load_plugins\n"
        "host = load_plugins(entry_points=[], environ={})\n"
        "before = sorted(m for m in sys.modules if m.startswith('adapters.'))\n"
        "names = host.registry.names()\n"
        "model = host.registry.options_models()['scripted']\n"
        "after = sorted(m for m in sys.modules if m.startswith('adapters.'))\n"
        "print(before, names, model.__qualname__, after, sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=patience(60),
    )
    before, names, model, after = done.stdout.strip().split("|")
    assert before == "[]"
    assert names == str(sorted(p.removeprefix("adapters.") for p in plugins.BUILTIN_PLUGINS))
    assert model == "Scripted.Config"
    others = {p for p in plugins.BUILTIN_PLUGINS if p != "adapters.scripted"}
    assert "adapters.scripted" in after and not others & set(ast.literal_eval(after))


def test_a_builtin_that_breaks_when_first_used_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported on first use, a built-in that fails says which, as it did at load."""
    # (the built-ins given: a load of its own, not the one the suite keeps, tests/support)
    host = plugins.load_plugins(builtins=plugins.BUILTIN_PLUGINS, entry_points=[], environ={})

    def broken(path: str) -> object:
        raise PluginError(f"built-in plugin {path!r} failed to import: ImportError: gone")

    monkeypatch.setattr(plugins, "_import_builtin", broken)
    with pytest.raises(PluginError, match=r"built-in plugin 'adapters.codex' failed to import"):
        host.registry.get("codex")
    assert "codex" in host.registry.names()  # still known: asked again, it says so again


def test_a_missing_builtin_is_named() -> None:
    with pytest.raises(PluginError, match=r"built-in adapter plugin 'adapters.nope' is missing"):
        plugins.load_plugins(builtins=(*OURS, "adapters.nope"), entry_points=(), environ={})


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("raise RuntimeError('half-written module')", "RuntimeError: half-written module"),
        ("import no_such_dependency_xyz", "No module named 'no_such_dependency_xyz'"),
    ],
)
def test_a_builtin_that_fails_to_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, cause: str
) -> None:
    (tmp_path / "council_broken_plugin.py").write_text(source + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "council_broken_plugin", raising=False)
    with pytest.raises(PluginError, match="'council_broken_plugin' failed to import") as caught:
        plugins.load_plugins(builtins=("council_broken_plugin",), entry_points=(), environ={})
    assert cause in str(caught.value)


# -- third-party plugins ---------------------------------------------------------------------


def test_entry_point_plugins_register_adapters() -> None:
    host = load(
        FakeEntryPoint("echo_cli", plugin_module("echo_plugin", register_adapters=registers(Echo)))
    )
    assert "echo-cli" in host.registry
    assert host.registry.plugin_of("echo-cli") == PluginInfo("echo_cli", "entry point fake.module")


def test_disable_env_skips_third_party_plugins() -> None:
    entry = FakeEntryPoint("echo_cli", plugin_module("p", register_adapters=registers(Echo)))
    assert "echo-cli" not in load(entry, COUNCIL_DISABLE_PLUGINS="1").registry
    assert "echo-cli" in load(entry, COUNCIL_DISABLE_PLUGINS="0").registry


def test_disable_env_never_scans_the_installed_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The scan reads every installed distribution's metadata (tens of ms a load); disabled,
    # it is not done at all, even with COUNCIL_PLUGINS set; any other value still scans.
    def no_scan() -> list[plugins.EntryPointLike]:
        raise AssertionError("entry points scanned although plugins are disabled")

    monkeypatch.setattr(plugins, "_discover", no_scan)
    for value in ("1", "true", " YES ", "on"):
        environ = {"COUNCIL_DISABLE_PLUGINS": value, "COUNCIL_PLUGINS": "absent"}
        host = plugins.load_plugins(builtins=OURS, environ=environ)
        assert [info.origin for info in host.plugins] == ["built-in", "built-in"]
    with pytest.raises(AssertionError, match="scanned"):
        plugins.load_plugins(builtins=OURS, environ={"COUNCIL_DISABLE_PLUGINS": "0"})


def test_allow_list_env_keeps_only_the_named_entry_points() -> None:
    class Other(Echo):
        name = "other-cli"

    entries = (
        FakeEntryPoint("echo_cli", plugin_module("a", register_adapters=registers(Echo))),
        FakeEntryPoint("other", plugin_module("b", register_adapters=registers(Other))),
    )
    host = load(*entries, COUNCIL_PLUGINS=" other ,")
    assert host.registry.names() == ["command", "other-cli", "scripted"]
    with pytest.raises(PluginError, match=r"COUNCIL_PLUGINS names 'typo'.*installed: echo_cli"):
        load(*entries, COUNCIL_PLUGINS="other,typo")


def test_the_test_suite_hides_installed_plugins() -> None:
    # conftest.py sets COUNCIL_DISABLE_PLUGINS for every test; the loader reads os.environ.
    entry = FakeEntryPoint("echo_cli", plugin_module("p", register_adapters=registers(Echo)))
    host = plugins.load_plugins(builtins=OURS, entry_points=[entry])
    assert [info.origin for info in host.plugins] == ["built-in", "built-in"]


def test_a_plugin_that_fails_to_load_is_named() -> None:
    entry = FakeEntryPoint("shaky", ImportError("No module named 'numpy'"))
    with pytest.raises(
        PluginError, match=r"plugin 'shaky'.*failed to load.*numpy.*COUNCIL_DISABLE"
    ):
        load(entry)


def test_a_plugin_that_raises_while_registering_is_named() -> None:
    def register_adapters(register: Callable[[type], None]) -> None:
        raise RuntimeError("kaboom")

    entry = FakeEntryPoint("bad", plugin_module("bad", register_adapters=register_adapters))
    with pytest.raises(PluginError, match=r"plugin 'bad'.*register_adapters: RuntimeError: kaboom"):
        load(entry)


# -- mistakes plugins make -------------------------------------------------------------------


def test_duplicate_adapter_names_name_both_plugins() -> None:
    class Impostor(Echo):
        name = "scripted"

    entry = FakeEntryPoint("impostor", plugin_module("i", register_adapters=registers(Impostor)))
    with pytest.raises(PluginError) as caught:
        load(entry)
    message = str(caught.value)
    assert "adapter name 'scripted' is registered twice" in message
    assert "plugin 'adapters.scripted' (built-in)" in message
    assert "plugin 'impostor' (entry point fake.module)" in message


def test_two_entry_points_with_one_name_are_refused() -> None:
    first = FakeEntryPoint("same", plugin_module("a"))
    second = FakeEntryPoint("same", plugin_module("b"))
    with pytest.raises(PluginError, match="two plugins are named 'same'"):
        load(first, second)


def test_a_misspelt_hook_fails_and_suggests_the_real_one() -> None:
    entry = FakeEntryPoint("typo", plugin_module("t", register_adapter=registers(Echo)))
    with pytest.raises(PluginError) as caught:
        load(entry)
    assert "plugin 'typo'" in str(caught.value)
    assert "'register_adapter', which is not a CLI Council hook" in str(caught.value)
    assert "did you mean 'register_adapters'?" in str(caught.value)


def test_a_hook_with_a_wrong_argument_name_fails() -> None:
    def register_adapters(registry: object) -> None:
        pass

    entry = FakeEntryPoint("args", plugin_module("a", register_adapters=register_adapters))
    with pytest.raises(PluginError, match=r"plugin 'args'.*registry"):
        load(entry)


def test_observer_hooks_cannot_be_wrappers() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_event(self, event: Event) -> Any:
            return (yield)

    with pytest.raises(PluginError, match="on_event cannot be a hook wrapper"):
        plugins.load_plugins(builtins=OURS, extra=[Wrapper()], entry_points=(), environ={})


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (object, "not a subclass of orchestrator.adapter.Adapter"),
        (type("Nameless", (Echo,), {"name": "Bad Name"}), "has name 'Bad Name'"),
        (type("NoBinary", (Echo,), {"executable": ""}), "must set `executable`"),
        (type("Abstract", (Adapter,), {"name": "abstract", "executable": "x"}), "does not impl"),
        (type("BadConfig", (Echo,), {"Config": dict}), "Config must subclass"),
    ],
)
def test_invalid_adapter_classes_are_refused_with_the_plugin_named(bad: type, message: str) -> None:
    entry = FakeEntryPoint("sloppy", plugin_module("s", register_adapters=registers(bad)))
    with pytest.raises(PluginError, match=message) as caught:
        load(entry)
    assert "plugin 'sloppy'" in str(caught.value)


# -- the registry ----------------------------------------------------------------------------


def test_unknown_adapter_lists_the_known_names() -> None:
    registry = load().registry
    with pytest.raises(AdapterError, match="unknown adapter 'claud'; known adapters: command, "):
        registry.get("claud")
    with pytest.raises(AdapterError, match=r"unknown adapter 'scriptd' \(did you mean 'scripted'"):
        registry.get("scriptd")
    with pytest.raises(AdapterError):
        registry.plugin_of("claud")


def test_create_validates_options_and_names_the_adapter_and_option() -> None:
    registry = load().registry
    config = adapter_entry.AdapterConfig(type="scripted", options={"persona": "quick", "dely": 1})
    with pytest.raises(AdapterError) as caught:
        registry.create("bob", config)
    message = str(caught.value)
    assert "adapter 'bob' (type 'scripted')" in message
    assert "unknown option 'dely'" in message and "valid options: persona, delay" in message
    bad_value = adapter_entry.AdapterConfig(type="scripted", options={"delay": -1})
    with pytest.raises(AdapterError, match="option 'delay': Input should be greater"):
        registry.create("bob", bad_value)


def test_create_builds_a_configured_instance() -> None:
    registry = load().registry
    config = adapter_entry.AdapterConfig(
        type="scripted", executable="/usr/bin/python3", options={"persona": "careful"}
    )
    adapter = registry.create("alice", config)
    assert isinstance(adapter, Scripted)
    assert adapter.binary == "/usr/bin/python3" and adapter.config.persona == "careful"
    assert isinstance(registry.create("scripted"), Scripted)  # type defaults to the name
    with pytest.raises(AdapterError, match="adapter 'x' \\(type 'nope'\\): unknown adapter"):
        registry.create("x", adapter_entry.AdapterConfig(type="nope"))


def test_create_reports_an_adapter_whose_init_fails() -> None:
    class Fragile(Echo):
        name = "fragile"

        def __init__(self, config: Any = None, executable: str | None = None) -> None:
            raise RuntimeError("no")

    registry = AdapterRegistry()
    registry.add(Fragile, "tests")
    with pytest.raises(AdapterError, match="adapter 'fragile': could not be created: no"):
        registry.create("fragile")


def test_in_process_classes_can_be_added_directly() -> None:
    registry = AdapterRegistry()
    registry.add(Echo)
    assert registry.names() == ["echo-cli"]
    assert str(registry.plugin_of("echo-cli")) == "plugin 'in-process' (in-process)"


# -- observers -------------------------------------------------------------------------------


def session() -> SessionInfo:
    return SessionInfo(
        session_id="s1", task_id="t1", phase="build", adapter="alice", workdir=Path("/w")
    )


def test_observer_hooks_receive_what_happens() -> None:
    seen: list[tuple[str, object]] = []

    class Recorder:
        @hookimpl
        def on_session_start(self, session: SessionInfo) -> None:
            seen.append(("start", session.task_id))

        @hookimpl
        def on_event(self, event: Event) -> None:
            seen.append(("event", event.type))

        @hookimpl
        def on_session_end(self, outcome: Outcome) -> None:  # may take fewer arguments
            seen.append(("end", outcome.kind))

    host = plugins.load_plugins(builtins=(), extra=[Recorder()], entry_points=(), environ={})
    host.session_started(session())
    host.event(Event(type="claim.acquired"))
    host.session_ended(session(), Outcome(kind=OutcomeKind.SUCCEEDED))
    assert seen == [("start", "t1"), ("event", "claim.acquired"), ("end", "succeeded")]


def test_a_failing_observer_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    class Broken:
        @hookimpl
        def on_event(self, event: Event) -> None:
            raise ValueError("observer bug")

    class Fine:
        @hookimpl
        def on_event(self, event: Event) -> None:
            calls.append(event.type)

    host = plugins.load_plugins(builtins=(), extra=[Broken(), Fine()], entry_points=(), environ={})
    with caplog.at_level(logging.ERROR, logger="orchestrator.plugins.host"):
        host.event(Event(type="state.updated"))
        host.event(Event(type="state.updated"))
    assert calls == ["state.updated", "state.updated"]
    assert "plugin 'Broken' failed in on_event; ignored" in caplog.text
    assert "observer bug" in caplog.text


# -- the hook contract stays documented and used ---------------------------------------------


def test_every_hook_is_documented_and_called_by_the_host() -> None:
    specs = [
        name
        for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, f"{hookspecs.PROJECT}_spec")
    ]
    assert sorted(specs) == sorted(
        [
            "register_adapters",
            "register_forges",
            "register_record_rules",
            *hookspecs.OBSERVER_HOOKS,
        ]
    )
    host_source = inspect.getsource(plugins)
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f'"{name}"' in host_source or f"hook.{name}" in host_source, name
