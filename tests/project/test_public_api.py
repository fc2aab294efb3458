"""The Python API is ``orchestrator.__all__``, and it stays honest: every name there loads, from
where it is defined; nothing a Python user needs (the facade, the config loader, every error
of the tree, the event and state types) is missing; importing the package costs nothing
until a name is used; and a type checker sees what the runtime exports (each package's
``__init__.pyi``, written from its ``_NAMES``)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api as mypy_api

import orchestrator
from orchestrator import errors, events, lazy_names, lazy_stubs
from orchestrator.state import protocol

ROOT = Path(__file__).resolve().parents[2]


def test_every_exported_name_loads_from_the_module_that_defines_it() -> None:
    for name in orchestrator.__all__:
        value = getattr(orchestrator, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("orchestrator."), name
            assert value.__name__ == name, f"{name} is exported under another name"


def test_all_lists_each_name_once_sorted() -> None:
    assert orchestrator.__all__ == sorted(set(orchestrator.__all__))


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from orchestrator import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == orchestrator.__all__


def test_every_error_of_the_tree_is_exported() -> None:
    tree = {
        name
        for name in errors.__all__
        if inspect.isclass(getattr(errors, name))
        and issubclass(getattr(errors, name), errors.CouncilError)
    }
    assert tree <= set(orchestrator.__all__), sorted(tree - set(orchestrator.__all__))
    assert "ConfigIssue" in orchestrator.__all__  # what ConfigError carries


def test_the_facade_config_events_and_state_types_are_exported() -> None:
    needed = {"Council", "load_config", "RunConfig", "TaskConfig", "RunReport", "FileStateStore"}
    needed |= {name for name in events.__all__}
    needed |= {"StateStore"} & set(protocol.__all__)
    assert needed <= set(orchestrator.__all__), sorted(needed - set(orchestrator.__all__))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Councill'"):
        orchestrator.Councill  # noqa: B018
    assert "Council" in dir(orchestrator)


def test_importing_the_package_loads_none_of_it() -> None:
    code = (
        "import sys, orchestrator\n"
        "print(sorted(m for m in sys.modules if m.startswith('orchestrator.')))\n"
        "from orchestrator import CouncilError\n"
        "print('orchestrator.council' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, council_loaded = out.stdout.splitlines()
    assert loaded == "['orchestrator.lazy_names']"  # the loader of the names, and nothing else
    assert council_loaded == "False"  # an error class needs nothing of the run machinery


def test_each_lazy_package_has_a_stub_current_with_its_names() -> None:
    assert lazy_stubs.stale() == [], "stale stubs: run python -m orchestrator.lazy_stubs"
    for package in lazy_stubs.PACKAGES:
        text = lazy_stubs.stub_text(package)
        module = __import__(package, fromlist=["__all__"])
        for name in module.__all__:
            assert f"    {name},\n" in text and f'    "{name}",\n' in text, (package, name)


def test_mypy_strict_reads_the_exports_as_a_user_does(tmp_path: Path) -> None:
    """``public_api_typed.py`` imports as a user does; only the packages' stubs are followed
    (what the names are is the defining modules' own business, checked by mypy on the package),
    so mypy answers in seconds."""
    config = tmp_path / "mypy.ini"
    followed = "".join(
        f"[mypy-{package}]\nfollow_imports = normal\n" for package in lazy_stubs.PACKAGES
    )
    config.write_text(
        f"[mypy]\npython_version = 3.11\nstrict = True\nfollow_imports = skip\n{followed}"
    )
    args = ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache")]
    out, err, status = mypy_api.run(
        [*args, str(ROOT / "tests" / "support" / "public_api_typed.py")]
    )
    assert status == 0, out + err
    out, err, status = mypy_api.run(
        [
            *args,
            "-c",
            "from orchestrator import Council, Councill\nfrom orchestrator.events import Nope",
        ]
    )
    assert status == 1, out + err
    assert 'Module "orchestrator" has no attribute "Councill"' in out, out
    assert 'Module "orchestrator.events" has no attribute "Nope"' in out, out


def test_a_name_listed_twice_or_a_bare_string_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"pkg: 'A' is listed under both pkg\.one and pkg\.two"):
        lazy_names.exports("pkg", {"pkg.one": ("A",), "pkg.two": ("B", "A")})
    with pytest.raises(TypeError, match=r"pkg: the names of pkg\.one must be a tuple, not 'A'"):
        lazy_names.exports("pkg", {"pkg.one": "A"})
    with pytest.raises(ValueError, match=r"pkg: eager modules \['pkg\.two'\] list no names"):
        lazy_names.exports("pkg", {"pkg.one": ("A",)}, eager=("pkg.two",))


def test_events_binds_its_base_names_at_once_and_the_families_on_first_use() -> None:
    code = (
        "import sys, orchestrator.events as e\n"
        "names = ('Event', 'EventType', 'TaskEvent', 'TaskDispatched')\n"
        "print(sorted(n for n in names if n in vars(e)))\n"
        "print(sorted(m for m in sys.modules if m.startswith('orchestrator.events.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    bound, loaded = out.stdout.splitlines()
    assert bound == "['Event', 'EventType', 'TaskEvent']"
    assert loaded == "['orchestrator.events.base', 'orchestrator.events.kinds']"
