"""No task record key outside its part: what the run's features keep in a task record's
``metadata`` is named in ``orchestrator.task_meta`` alone (issue 47). The package's modules
are read as syntax, and every way a key could be named beside it is refused: a record's
``metadata`` read, tested or popped by a key (``state.metadata.get("pull")``,
``"pull" in state.metadata``), a key written into a copy of it (``{**state.metadata, "x":
1}``, ``meta["outcome"] = ...``), or a ``"metadata"`` update spelled as a literal mapping. A
key is found as text or as a module constant, imported or not. A session record's
``metadata`` (``session.metadata``: who runs it, its team) is not a task's and is left alone.

``orchestrator/testing/`` is left out (its store contract writes arbitrary keys to prove they
are kept), and so is a run's *config* (``TaskConfig.metadata``: the user's own keys, checked by
the config's schema), whose two keys (``candidates``, ``phase_instructions``) no part keeps."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import orchestrator
from orchestrator.task_meta import TaskMeta

ROOT = Path(orchestrator.__file__).parent
KEYS = TaskMeta.keys()


@functools.cache
def _modules() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package, parsed once, when a test first asks (not as the suite is
    collected: each worker collects every module, and the parse is seconds of CPU)."""
    found: dict[str, tuple[Path, ast.Module]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        found[".".join(parts)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


def _constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            value, targets = node.value, node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            value, targets = node.value, [node.target]
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out |= {t.id: value.value for t in targets if isinstance(t, ast.Name)}
    return out


@functools.cache
def _all_constants() -> dict[str, dict[str, str]]:
    return {name: _constants(tree) for name, (_, tree) in _modules().items()}


class _Scan(ast.NodeVisitor):
    def __init__(self, module: str, tree: ast.Module) -> None:
        constants = _all_constants()
        self.names = dict(constants[module])
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in constants:
                for alias in node.names:
                    value = constants[node.module].get(alias.name)
                    if value is not None:
                        self.names[alias.asname or alias.name] = value
        self.found: list[tuple[int, str]] = []

    def _key(self, node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        return None

    def _say(self, node: ast.AST, key: str, how: str) -> None:
        self.found.append((getattr(node, "lineno", 0), f"{how} {key!r}"))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("get", "pop", "setdefault")
            and _is_metadata(func.value)
            and node.args
            and (key := self._key(node.args[0])) in KEYS
        ):
            self._say(node, str(key), f"metadata.{func.attr}")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = self._key(node.slice)
        if key in KEYS and (_is_metadata(node.value) or "meta" in ast.unparse(node.value)):
            self._say(node, str(key), "metadata[...]")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        key = self._key(node.left)
        if key in KEYS and any(_is_metadata(c) for c in node.comparators):
            self._say(node, str(key), "in metadata")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        spreads = any(
            k is None and _is_metadata(v) and "session" not in ast.unparse(v)
            for k, v in zip(node.keys, node.values, strict=True)
        )
        for key_node, value in zip(node.keys, node.values, strict=True):
            key = self._key(key_node)
            if spreads and key is not None:
                self._say(node, key, "written beside **metadata:")
            if key == "metadata" and isinstance(value, ast.Dict):
                for inner in value.keys:
                    if (name := self._key(inner)) in KEYS:
                        self._say(node, str(name), "a literal metadata update names")
        self.generic_visit(node)


def _is_metadata(node: ast.AST) -> bool:
    """``<anything>.metadata`` or a name ``metadata``."""
    return (isinstance(node, ast.Attribute) and node.attr == "metadata") or (
        isinstance(node, ast.Name) and node.id == "metadata"
    )


def _findings() -> Iterator[str]:
    for module, (path, tree) in _modules().items():
        if module == "orchestrator.task_meta" or module.startswith("orchestrator.testing"):
            continue
        scan = _Scan(module, tree)
        scan.visit(tree)
        for line, what in scan.found:
            yield f"{path.relative_to(ROOT.parent)}:{line}: {what}"


def test_no_task_record_key_is_named_outside_the_typed_record() -> None:
    assert list(_findings()) == []


def test_the_scan_finds_each_way_of_naming_a_key() -> None:
    source = """
from orchestrator.task_meta import TaskMeta
PULL = "pull"
a = state.metadata.get(PULL)
b = state.metadata["outcome"]
c = "held" in state.metadata
d = {**state.metadata, "anything": 1}
e = {"metadata": {"issue": 3, "not_a_key": 4}}
f = {**snapshot.session.metadata, "orchestrator": 1}
meta["conflicts"] = []
fine = state.metadata.get("phase_instructions")
"""
    tree = ast.parse(source)
    _all_constants()["probe"] = _constants(tree)
    try:
        scan = _Scan("probe", tree)
        scan.visit(tree)
    finally:
        del _all_constants()["probe"]
    assert sorted(line for line, _ in scan.found) == [4, 5, 6, 7, 8, 10]
