"""The Python API is ``orchestrator.__all__``, and it stays honest: every name there loads, from
where it is defined; nothing a Python user needs (the facade, the config loader, every error
of the tree, the event and state types) is missing; and importing the package costs nothing
until a name is used."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import orchestrator
from orchestrator import errors, events
from orchestrator.state import protocol


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
