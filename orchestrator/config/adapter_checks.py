"""The checks of a run config's ``adapters:`` that need more than the config itself: each
adapter's ``type`` against the types the plugins provide and its ``options`` against its
plugin's options model, and ``${NAME}`` references in its ``env`` against the environment a
run starts with; and the JSON Schema that spells out each adapter type's options.

The plugin host is above this layer, so the options models come in as a mapping (adapter type
-> model), from ``plugins.options_models()``.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.config.checks.problems import Problem
from orchestrator.config.env_refs import references
from orchestrator.config.run import RunConfig
from orchestrator.config.suggest import did_you_mean, literal_choices

__all__ = ["adapter_options_problems", "unset_references", "with_adapter_options"]


def adapter_options_problems(
    config: RunConfig, models: Mapping[str, type[BaseModel]]
) -> list[Problem]:
    """Each adapter whose type no plugin provides, and each option its type's model refuses,
    at its own place in the file (an adapter without ``type:`` is of the type its key names,
    so the key's line is the place)."""
    problems: list[Problem] = []
    for name, adapter in config.adapters.items():
        kind = adapter.type or name
        model = models.get(kind)
        if model is None:
            known = ", ".join(sorted(models)) or "none"
            problems.append(
                (
                    ("adapters", name, "type"),
                    f"unknown adapter type {kind!r}{did_you_mean(kind, models)}; known types: "
                    f"{known} (a plugin's adapter? see `council adapters list`)",
                )
            )
            continue
        try:
            model.model_validate(adapter.options)
        except ValidationError as exc:
            for error in exc.errors():
                loc = ("adapters", name, "options", *error["loc"])
                problems.append((loc, _option_message(kind, model, error)))
    return problems + _phase_options_problems(config, models)


def _phase_options_problems(
    config: RunConfig, models: Mapping[str, type[BaseModel]]
) -> list[Problem]:
    """A phase's ``options`` over each adapter it may run (its tasks' chains), checked by
    that adapter's model: once per phase and adapter, at the phase's options."""
    problems: list[Problem] = []
    checked: set[tuple[int, str]] = set()
    index = {id(phase): i for i, phase in enumerate(config.workflow.phases)}
    known = [phase.name for phase in config.workflow.phases]
    for task in config.tasks:
        # A phase the workflow has no phase of is the checks between fields' to report.
        names = known if task.phases is None else [n for n in task.phases if n in known]
        for phase in (config.phase(name) for name in names):
            if not phase.options or id(phase) not in index:
                continue
            for name in config.adapter_chain(task, phase):
                adapter = config.adapters.get(name)
                key = (index[id(phase)], name)
                if key in checked or adapter is None:
                    continue
                checked.add(key)
                kind = adapter.type or name
                model = models.get(kind)
                if model is None:
                    continue  # the adapter's own entry says so
                try:
                    model.model_validate({**adapter.options, **phase.options})
                except ValidationError as exc:
                    for error in exc.errors():
                        loc = ("workflow", "phases", key[0], "options", *error["loc"])
                        message = _option_message(kind, model, error)
                        problems.append((loc, f"{message}, for adapter {name!r}"))
    return problems


def _option_message(kind: str, model: type[BaseModel], error: Any) -> str:
    allowed = list(model.model_fields)
    if error["type"] == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if not allowed:  # a plugin adapter that declares no options model
            return f"unknown option: adapter type {kind!r} takes no options"
        return f"unknown option for adapter type {kind!r} ({hint}allowed: {', '.join(allowed)})"
    if error["type"] == "literal_error" and isinstance(error["input"], str):
        # A value of a closed set (a persona, a mode): the closest one suggested.
        expected = (error.get("ctx") or {}).get("expected", "")
        field = model.model_fields.get(str(error["loc"][0])) if len(error["loc"]) == 1 else None
        choices = literal_choices(field.annotation) if field is not None else []
        hint = did_you_mean(error["input"], choices)
        return f"must be one of {expected} (got {error['input']!r}){hint} (adapter type {kind!r})"
    return f"{error['msg']} (adapter type {kind!r})"


def unset_references(config: RunConfig, environ: Mapping[str, str]) -> list[Problem]:
    """Each ``${NAME}`` in an adapter's ``env``, an MCP server's ``env`` and ``headers``, or
    ``forge.token``, whose variable ``environ`` lacks."""
    problems: list[Problem] = []
    places: list[tuple[tuple[str, ...], str]] = [
        (("adapters", name, "env", variable), value)
        for name, adapter in config.adapters.items()
        for variable, value in adapter.env.items()
    ]
    for name, server in config.mcp_servers.items():
        for key, values in (("env", server.env), ("headers", server.headers)):
            places += [(("mcp_servers", name, key, var), value) for var, value in values.items()]
    if config.forge is not None and config.forge.token is not None:
        places.append((("forge", "token"), config.forge.token))
    for place, value in places:
        for missing in (ref for ref in references(value) if ref not in environ):
            problems.append(
                (
                    place,
                    f"${{{missing}}} is not set in the environment council runs in "
                    "(export it, or write $${ for a literal ${)",
                )
            )
    return problems


def with_adapter_options(
    schema: dict[str, Any], models: Mapping[str, type[BaseModel]]
) -> dict[str, Any]:
    """``schema`` (a run config's) with each adapter type's ``options`` spelled out.

    An adapter's type is its ``type`` or, without one, its key under ``adapters:``; the schema
    says both: ``if type is T then options match T's model`` on every adapter, and for the key
    ``T`` without a ``type``, the same.
    """
    schema = copy.deepcopy(schema)
    defs = schema.setdefault("$defs", {})
    by_type: list[dict[str, Any]] = []
    by_key: dict[str, Any] = {}
    for kind, model in sorted(models.items()):
        ref = f"#/$defs/{_def_name(kind)}"
        options = model.model_json_schema(ref_template="#/$defs/{model}", mode="validation")
        defs.update(options.pop("$defs", {}))
        options["title"] = f"options of adapter type {kind!r}"
        defs[_def_name(kind)] = options
        uses = {"properties": {"options": {"$ref": ref}}}
        by_type.append(
            {"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": uses}
        )
        by_key[kind] = {
            "allOf": [
                {"$ref": "#/$defs/AdapterConfig"},
                {"if": {"not": {"required": ["type"]}}, "then": uses},
            ]
        }
    defs["AdapterConfig"]["allOf"] = by_type
    schema["properties"]["adapters"]["properties"] = by_key
    return schema


def _def_name(kind: str) -> str:
    return "AdapterOptions_" + "".join(c if c.isalnum() else "_" for c in kind)
