"""Load a run config: YAML text in, a fully valid ``RunConfig`` out, or a ``ConfigError``.

The error is the point of this module. Every problem, whether YAML syntax, a wrong type, an
unknown key or a task depending on a task that does not exist, becomes one
``ConfigIssue(file, line, field, message)``, printed as ``configs/x.yaml:14: tasks[2].id: ...``,
and all of them are reported at once so a user fixes a file in one pass.

``check_config`` is the same reading without the raise, for ``council config validate``: the
config whenever it could be built (a problem between its fields does not stop that), every
issue, and the means to put more problems, found by later checks, at their lines.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.config.adapter_checks import (
    adapter_options_problems,
    unset_references,
    with_adapter_options,
)
from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.config.checks.phase_names import phase_name_warnings
from orchestrator.config.checks.problems import Problem
from orchestrator.config.checks.run import find_problems
from orchestrator.config.fieldpath import Loc, format_loc
from orchestrator.config.origin import ConfigOrigin, set_origin
from orchestrator.config.run import DEFER_CHECKS, RunConfig
from orchestrator.config.sections import CapacityConfig, RetryConfig, SchedulerConfig, StateConfig
from orchestrator.config.set_aside import beyond_refused
from orchestrator.config.suggest import did_you_mean, literal_choices
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig, WorkflowConfig
from orchestrator.config.yaml_source import (
    YamlDocument,
    mapping_without,
    parse_yaml_mapping,
    read_config_text,
)
from orchestrator.errors import ConfigError, ConfigIssue

__all__ = [
    "AdapterConfig",
    "CapacityConfig",
    "CheckedConfig",
    "OptionsModels",
    "PhaseConfig",
    "RetryConfig",
    "RunConfig",
    "SchedulerConfig",
    "StateConfig",
    "TaskConfig",
    "WorkflowConfig",
    "check_config",
    "check_config_text",
    "load_config",
    "parse_config",
    "run_config_json_schema",
    "state_config",
]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# Adapter type -> the model its ``options`` must match (the plugin host knows them; this layer
# does not import it, so callers that have plugins pass them in).
OptionsModels = Mapping[str, type[BaseModel]]


@dataclass(frozen=True)
class CheckedConfig:
    """A run config file as its checks found it."""

    source: str
    config: RunConfig | None  # None when the file could not be read, parsed or typed
    issues: list[ConfigIssue]
    problems: list[Problem] = field(default_factory=list)  # the issues found on ``config``
    document: YamlDocument | None = None
    # What is allowed but most likely a slip (a phase ``biuld`` in a workflow with no
    # ``build``): said, never refused.
    warnings: list[ConfigIssue] = field(default_factory=list)

    def located(self, problems: Iterable[Problem]) -> list[ConfigIssue]:
        """``problems`` (a field path and a message each) as issues at their lines."""
        return _located(self.source, self.document, problems)


def load_config(
    path: str | Path,
    *,
    options_models: OptionsModels | None = None,
    environ: Mapping[str, str] | None = None,
    slips: list[ConfigIssue] | None = None,
) -> RunConfig:
    """Read and validate the run config at ``path``; errors name ``path`` as given; ``slips``
    gains what the file allows but most likely did not mean (``CheckedConfig.warnings``).

    With ``options_models``, each adapter's ``type`` must be one of them and its ``options``
    are checked against its type's model; with ``environ``, every ``${NAME}`` in an adapter's
    ``env`` must be set there (what a run is about to start with). Each problem names its line.
    """
    checked = check_config(path, options_models=options_models, environ=environ)
    if checked.issues or checked.config is None:
        raise ConfigError(checked.issues)
    if slips is not None:
        slips.extend(checked.warnings)
    return checked.config


def check_config(
    path: str | Path,
    *,
    options_models: OptionsModels | None = None,
    environ: Mapping[str, str] | None = None,
) -> CheckedConfig:
    """``load_config``'s checks, every issue returned instead of raised."""
    source = str(path)
    file = Path(path)
    try:
        text = read_config_text(file, source)
    except ConfigError as exc:
        return CheckedConfig(source, None, exc.issues)
    checked = _checked(
        text,
        source=source,
        base_dir=file.absolute().parent,
        options_models=options_models,
        environ=environ,
    )
    if checked.config is not None:
        set_origin(checked.config, ConfigOrigin.of(file, text))
    return checked


def state_config(path: Path) -> RunConfig | None:
    """What ``council status FILE`` reads of a run config: where its runs keep their state and
    which file it is (``origin``), without building its tasks: a config of 10,000 tasks costs
    the command their parse alone, in C (``yaml_source.mapping_without``), not their
    validation. Everything but ``tasks:`` is validated as ``check_config`` does; None where it
    cannot be read so (a syntax error, a refused value, no C parser): ``load_config`` then reads
    it whole and says what is wrong at its line."""
    try:
        text = read_config_text(path, str(path))
    except ConfigError:
        return None
    data = mapping_without(text, "tasks")
    if data is None:
        return None
    context = {"base_dir": path.absolute().parent, DEFER_CHECKS: True}
    try:
        config = RunConfig.model_validate({**data, "tasks": []}, context=context)
    except ValidationError:
        return None
    set_origin(config, ConfigOrigin.of(path, text))
    return config


def check_config_text(
    text: str,
    *,
    source: str,
    base_dir: Path,
    options_models: OptionsModels | None = None,
    environ: Mapping[str, str] | None = None,
) -> CheckedConfig:
    """``check_config`` on config ``text`` that is not (yet) a file of its own: relative
    paths resolve against ``base_dir``, issues name ``source``."""
    return _checked(
        text, source=source, base_dir=base_dir, options_models=options_models, environ=environ
    )


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    options_models: OptionsModels | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunConfig:
    """Validate config ``text``; relative paths resolve against ``base_dir`` (default: cwd)."""
    checked = _checked(
        text, source=source, base_dir=base_dir, options_models=options_models, environ=environ
    )
    if checked.issues or checked.config is None:
        raise ConfigError(checked.issues)
    return checked.config


def _checked(
    text: str,
    *,
    source: str,
    base_dir: Path | None,
    options_models: OptionsModels | None,
    environ: Mapping[str, str] | None,
) -> CheckedConfig:
    try:
        document = parse_yaml_mapping(text, source)
    except ConfigError as exc:
        return CheckedConfig(source, None, exc.issues)
    context = {"base_dir": base_dir or Path.cwd(), DEFER_CHECKS: True}
    try:
        config = RunConfig.model_validate(document.data, context=context)
    except ValidationError as exc:
        issues = [_issue(document, error) for error in exc.errors()]
        # One pass: the checks between fields (a dependency on a task that does not exist)
        # still run, on the config with each refused value set aside.
        later = functools.partial(_later_problems, options_models=options_models, environ=environ)
        beyond, advice = beyond_refused(
            document.data, context, exc.errors(), later, _phase_name_warnings
        )
        issues += _located(source, document, beyond)
        warnings = _sorted(_located(source, document, advice))
        return CheckedConfig(source, None, _sorted(issues), document=document, warnings=warnings)
    problems = _later_problems(config, options_models=options_models, environ=environ)
    issues = _sorted(_located(source, document, problems))
    warnings = _sorted(_located(source, document, _phase_name_warnings(config)))
    return CheckedConfig(source, config, issues, problems, document, warnings)


def _phase_name_warnings(config: RunConfig) -> list[Problem]:
    return list(phase_name_warnings(config))


def _later_problems(
    config: RunConfig,
    *,
    options_models: OptionsModels | None,
    environ: Mapping[str, str] | None,
) -> list[Problem]:
    """The checks on a built config: between its fields, its adapters' options (with
    ``options_models``) and its ``${NAME}`` references (with ``environ``)."""
    problems = find_problems(config)
    if options_models is not None:
        problems += adapter_options_problems(config, options_models)
    if environ is not None:
        problems += unset_references(config, environ)
    return problems


def _located(
    source: str, document: YamlDocument | None, problems: Iterable[Problem]
) -> list[ConfigIssue]:
    return [
        ConfigIssue(
            source,
            document.line_of(loc) if document is not None else None,
            format_loc(loc),
            message,
        )
        for loc, message in problems
    ]


def run_config_json_schema(options_models: OptionsModels | None = None) -> dict[str, Any]:
    """The JSON Schema of a run config file (what ``council config schema`` prints); with
    ``options_models``, each adapter type's ``options`` are spelled out (``config_schema``)."""
    schema = RunConfig.model_json_schema(mode="validation")
    if options_models:
        schema = with_adapter_options(schema, options_models)
    return {"$schema": _SCHEMA_DIALECT, **schema}


def _sorted(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda issue: issue.line or 0)


# --- pydantic errors as sentences --------------------------------------------------------------


def _issue(document: YamlDocument, error: ErrorDetails) -> ConfigIssue:
    loc: Loc = tuple(error["loc"])
    if loc and loc[-1] == "[key]":
        # pydantic marks a bad mapping key by appending "[key]" after the key itself.
        loc = loc[:-1]
    return ConfigIssue(document.source, document.line_of(loc), format_loc(loc), _message(error))


_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "path_type": "must be a path (a string)",
}


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_key(tuple(error["loc"]))
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]} (got {_shown(error['input'])})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "literal_error":
        hint = ""
        if isinstance(error["input"], str):
            hint = did_you_mean(error["input"], _literal_choices(tuple(error["loc"])))
        return f"must be one of {ctx.get('expected')} (got {_shown(error['input'])}){hint}"
    if kind in {"too_short", "string_too_short"} and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        sign = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {sign} {bound} (got {_shown(error['input'])})"
    return error["msg"][:1].lower() + error["msg"][1:]


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unknown_key(loc: Loc) -> str:
    model = _model_at(RunConfig, loc[:-1])
    if model is None:
        return "unknown key"
    allowed = list(model.model_fields)
    key = str(loc[-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}allowed: {', '.join(allowed)})"


def _literal_choices(loc: Loc) -> list[str]:
    model = _model_at(RunConfig, loc[:-1]) if loc else None
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    return literal_choices(field.annotation) if field is not None else []


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` below ``model``."""
    current: object = model
    for step in loc:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(step))
            if field is None:
                return None
            current = field.annotation
            continue
        origin, args = typing.get_origin(current), typing.get_args(current)
        if origin is list and isinstance(step, int) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _strip(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _strip(annotation: object) -> object:
    """``Annotated[X, ...]`` and ``X | None`` as plain ``X``."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation
