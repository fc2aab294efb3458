"""A CLI's config file merged with its user's own: parse, lay over, say what was replaced.

Pure (no file is opened here): ``orchestrator.runner.user_config`` reads and writes. The three
formats the CLIs use: JSON (claude, gemini, qwen, opencode; comments allowed, as gemini, qwen
and opencode allow them), TOML (codex) and YAML (aider).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomli_w

from orchestrator.adapter import ConfigFile, KeyPath
from orchestrator.config.yaml_source import dump_yaml_mapping, parse_yaml_mapping
from orchestrator.errors import ConfigError
from orchestrator.safety.redaction import is_sensitive

__all__ = ["Merged", "dotted", "dump", "merge_config", "parse", "render", "secret_values"]

# JSON with comments: strings are matched first, so a "//" inside one is kept.
_JSONC = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/', re.S)


@dataclass(frozen=True)
class Merged:
    data: dict[str, Any]
    overridden: list[KeyPath]  # keys of the user's the adapter's ``required`` replaced
    carried: bool  # the user's file was in it


def parse(text: str, form: str, source: str) -> dict[str, Any]:
    """The mapping ``text`` holds in format ``form``; ``ValueError`` naming ``source``."""
    try:
        if form == "toml":
            return tomllib.loads(text)
        if form == "yaml":
            return parse_yaml_mapping(text, source).data
        value = json.loads(_JSONC.sub(_keep_strings, text)) if text.strip() else {}
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ConfigError) as exc:
        raise ValueError(f"{source} is not valid {form.upper()}: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: the top level is not a mapping of settings")
    return value


def _keep_strings(match: re.Match[str]) -> str:
    token = match.group(0)
    return token if token.startswith('"') else ""


def dump(data: Mapping[str, Any], form: str) -> str:
    if form == "toml":
        return tomli_w.dumps(_no_nulls(data))
    if form == "yaml":
        return dump_yaml_mapping(data)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def merge_config(config: ConfigFile, user: Mapping[str, Any] | None, *, logins: bool) -> Merged:
    """``config.defaults``, the user's file over them (without its ``dropped`` keys, nor its
    ``logins`` unless ``logins``), ``config.required`` over both."""
    carried: dict[str, Any] = {}
    if user is not None:
        carried = _without(user, [*config.dropped, *(() if logins else config.logins)])
    data = _laid_over(_laid_over(config.defaults, carried), config.required)
    required = _leaves(config.required)
    overridden = [path for path, value in required if _differs(carried, path, value)]
    return Merged(data, overridden, user is not None)


def render(
    config: ConfigFile, user: Mapping[str, Any] | None = None, *, logins: bool = True
) -> str:
    """The text written for ``config`` over ``user``'s file (None: the user has none)."""
    return dump(merge_config(config, user, logins=logins).data, config.format)


def secret_values(data: Mapping[str, Any], logins: Sequence[KeyPath]) -> dict[str, str]:
    """Dotted key -> value of each string in ``data`` that is a secret: under a key named like
    one (``apiKey``, ``GITHUB_TOKEN``, ``Authorization``), or one of ``logins``."""
    found: dict[str, str] = {}
    for path, value in _leaves(data):
        if isinstance(value, str) and value and (path in logins or _secret_key(path[-1])):
            found[dotted(path)] = value
    return found


def _secret_key(name: str) -> bool:
    """A key named like a secret (``apiKey``, ``GITHUB_TOKEN``), or an HTTP header that
    carries one (an MCP server's ``Authorization``)."""
    return is_sensitive(name) or name.lower() in ("authorization", "proxy-authorization")


def dotted(path: KeyPath) -> str:
    return ".".join(part if re.fullmatch(r"[\w-]+", part) else json.dumps(part) for part in path)


def _laid_over(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = _laid_over(below, value)
        else:
            out[key] = value
    return out


def _leaves(data: Mapping[str, Any], prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


def _differs(data: Mapping[str, Any], path: KeyPath, value: Any) -> bool:
    """Did the user's ``data`` say something else at ``path`` (or a value where a table goes)?"""
    here: Any = data
    for part in path:
        if not isinstance(here, Mapping):
            return True  # a value of the user's stood where the required table goes
        if part not in here:
            return False
        here = here[part]
    return bool(here != value)


def _without(data: Mapping[str, Any], paths: Sequence[KeyPath]) -> dict[str, Any]:
    out = dict(data)
    for path in paths:
        _drop(out, path)
    return out


def _drop(data: dict[str, Any], path: KeyPath) -> None:
    head, rest = path[0], path[1:]
    if head not in data:
        return
    if not rest:
        del data[head]
    elif isinstance(data[head], Mapping):
        data[head] = dict(data[head])
        _drop(data[head], rest)


def _no_nulls(data: Mapping[str, Any]) -> dict[str, Any]:
    # TOML has no null: a key set to nothing is a key not set.
    return {
        key: _no_nulls(value) if isinstance(value, Mapping) else value
        for key, value in data.items()
        if value is not None
    }
