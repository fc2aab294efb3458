"""Read a YAML config file safely and remember where every value came from.

This is the one module that talks to PyYAML. It refuses what PyYAML would accept silently or
dangerously (files over 1 MiB, bytes that are not UTF-8, duplicate keys, alias bombs, deep
nesting, a top level that is not a mapping) and keeps the composed node tree so that a problem
found later, at a field path such as ``("tasks", 2, "id")``, can be reported at its line.
Every failure is a ``ConfigError`` whose issues name the file and, when known, the line.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, Event, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from orchestrator.config.fieldpath import Loc, format_loc
from orchestrator.errors import ConfigError, ConfigIssue

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "YamlDocument",
    "dump_yaml_mapping",
    "dump_yaml_readable",
    "parse_yaml_mapping",
    "read_config_text",
    "without_top_level_key",
]

MAX_CONFIG_BYTES = 1 << 20
"""Larger files are refused unread: a run config is a page or two, never megabytes."""

MAX_ALIAS_EXPANSION = 10_000
"""How many nodes aliases may add once expanded (a billion-laughs document adds billions)."""

MAX_DEPTH = 64
"""How deeply collections may nest; PyYAML's recursive composer would crash far below 1 MiB."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"


def _issue(source: str, line: int | None, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(source, line, "", message)])


def read_config_text(path: Path, source: str) -> str:
    """The text of ``path``; ``source`` is how the file is named in any error."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise _issue(source, None, f"cannot read config: {kind}")
        # Read one byte past the limit instead of trusting the size from stat, which the file
        # may outgrow between the two calls.
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise _issue(source, None, "config file not found") from None
    except PermissionError:
        raise _issue(source, None, "cannot read config: permission denied") from None
    except OSError as exc:
        raise _issue(source, None, f"cannot read config: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _issue(
            source, None, f"config file is larger than {MAX_CONFIG_BYTES} bytes (1 MiB); refused"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start]
        raise _issue(
            source, line, f"not valid UTF-8: byte 0x{byte:02x} at column {column}"
        ) from None


_FastParser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)
"""libyaml's parser when PyYAML was built with it: it reads the text about ten times faster
than PyYAML's own (a config of 10,000 tasks in a fraction of a second, not several seconds).
Only the events come from it; the nodes are composed here, so the checks below see each one.
Its words for a syntax error differ from PyYAML's, so a text it refuses is read again by
PyYAML's own parser for the error (``parse_yaml_mapping``): the message is the same either way."""


class _PyParser(Reader, Scanner, Parser):
    """PyYAML's own reader, scanner and parser."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


class _CheckedLoader(Composer, SafeConstructor, Resolver):
    """A safe loader that counts what aliases expand to and how deep collections nest, over
    the parser its subclass names (``_loader``)."""

    if TYPE_CHECKING:  # the parser's, from the subclass

        def peek_event(self) -> Event: ...

        def dispose(self) -> None: ...

    def __init__(self, source: str) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._source = source
        self._depth = 0
        self._expanded = 0
        self._open_anchors: set[str] = set()
        self._measures: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise self._refuse(event, f"collections nest deeper than {MAX_DEPTH} levels")
        anchor = event.anchor
        self._depth += 1
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)

    def _count_alias(self, event: AliasEvent) -> None:
        anchor = event.anchor
        if anchor in self._open_anchors:
            raise self._refuse(event, f"alias *{anchor} refers to a collection that contains it")
        node = self.anchors.get(anchor)
        if node is None:
            return  # PyYAML reports the undefined alias itself, with its line.
        size, height = self._measure(node)
        # An alias nests its whole target here, so chained aliases could build depth that no
        # single collection in the text has.
        if self._depth + height > MAX_DEPTH:
            raise self._refuse(
                event, f"alias *{anchor} nests collections deeper than {MAX_DEPTH} levels"
            )
        self._expanded += size
        if self._expanded > MAX_ALIAS_EXPANSION:
            raise self._refuse(
                event,
                f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes; refusing to load "
                "(write the values out instead of nesting aliases)",
            )

    def _refuse(self, event: Event, message: str) -> ConfigError:
        mark = event.start_mark
        line = None if mark is None else int(mark.line) + 1
        return _issue(self._source, line, message)

    def _measure(self, node: Node) -> tuple[int, int]:
        """Nodes in ``node`` with aliases expanded, and how many collection levels it holds."""
        # Memoized by node identity: shared (aliased) subtrees are measured once, so even a
        # billion-laughs document is measured in time linear in its text. The depth checks
        # keep this recursion shallow.
        known = self._measures.get(id(node))
        if known is not None:
            return known
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            self._measures[id(node)] = (1, 0)
            return 1, 0
        measures = [self._measure(child) for child in children]
        result = (
            1 + sum(size for size, _ in measures),
            1 + max((height for _, height in measures), default=0),
        )
        self._measures[id(node)] = result
        return result


class _PyLoader(_CheckedLoader, _PyParser):
    def __init__(self, stream: str, source: str) -> None:
        _PyParser.__init__(self, stream)
        _CheckedLoader.__init__(self, source)


if _FastParser is not None:

    class _FastLoader(_CheckedLoader, _FastParser):  # type: ignore[misc]
        def __init__(self, stream: str, source: str) -> None:
            _FastParser.__init__(self, stream)
            _CheckedLoader.__init__(self, source)


def _loader(text: str, source: str, *, fast: bool) -> _CheckedLoader:
    if fast and _FastParser is not None:
        return _FastLoader(text, source)
    return _PyLoader(text, source)


def _syntax_issue(source: str, text: str, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        context = exc.context
        opened, mark = exc.context_mark, exc.problem_mark or exc.context_mark
        if context and opened is not None and mark is not None and opened.line != mark.line:
            # An unclosed bracket is found where the text ends; say where it was opened too.
            context = f"{context} at line {opened.line + 1}"
        words = [part for part in (context, exc.problem) if part]
        message = "; ".join(words) or "invalid YAML"
        if mark is None:
            return _issue(source, None, f"invalid YAML: {message}")
        message = " ".join(message.split())
        return _issue(source, mark.line + 1, f"invalid YAML: {message} (column {mark.column + 1})")
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return _issue(source, line, f"invalid YAML: character #x{exc.character:04x} is not allowed")
    return _issue(source, None, f"invalid YAML: {' '.join(str(exc).split())}")


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _describe(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode):
        return f"the scalar {node.value!r}"
    return "a mapping"


def _find_duplicate_keys(root: Node, source: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen: set[int] = set()
    stack: list[tuple[Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((child, (*loc, index)) for index, child in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    continue
                stack.append((value, (*loc, str(key.value))))
                if key.tag == _MERGE_TAG:
                    continue
                ident = (key.tag, key.value)
                if ident in first_line:
                    issues.append(
                        ConfigIssue(
                            source,
                            _line(key),
                            format_loc((*loc, str(key.value))),
                            f"duplicate key (first defined at line {first_line[ident]})",
                        )
                    )
                else:
                    first_line[ident] = _line(key)
    return sorted(issues, key=lambda issue: issue.line or 0)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed mapping plus its node tree, to turn field paths back into line numbers."""

    source: str
    data: dict[str, Any]
    root: MappingNode

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest node ``loc`` reaches (1-based).

        A mapping step lands on the key's line (where the field is named); a path that runs
        out, as for a missing field, stops at the enclosing mapping.
        """
        node: Node = self.root
        line = _line(node)
        for step in loc:
            if isinstance(node, MappingNode):
                # A non-string key (`1: x`) still names its line by its text.
                found = _lookup(node, str(step))
                if found is None:
                    break
                key, node = found
                line = _line(key)
            elif isinstance(node, SequenceNode) and isinstance(step, int):
                if not 0 <= step < len(node.value):
                    break
                node = node.value[step]
                line = _line(node)
            else:
                break
        return line


def _lookup(node: MappingNode, name: str) -> tuple[Node, Node] | None:
    # The last match wins, as it does when PyYAML builds the dict (merge keys put their
    # pairs first, so an explicit key overrides a merged one).
    found: tuple[Node, Node] | None = None
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value == name:
            found = (key, value)
    return found


def mapping_without(text: str, key: str) -> dict[str, Any] | None:
    """The top-level mapping of YAML ``text`` without ``key``, whose value is parsed but never
    built (a config's 10,000 tasks cost ``council status`` their parse alone, in C); None
    when it cannot be read so (no C parser, a syntax error, not a mapping, an alias to what
    was left out): the caller reads the text whole, and says what is wrong at its line."""
    if _FastParser is None:
        return None
    try:
        kept = list(_without(yaml.parse(text, Loader=yaml.CSafeLoader), key))
        data = yaml.load(yaml.emit(kept), Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _without(events: Iterable[Event], key: str) -> Iterator[Event]:
    """``events`` but ``key`` of the top-level mapping and its value."""
    depth = 0  # collections open
    done = 0  # nodes of the top-level mapping complete: keys and values, in turn
    skipping = False  # the value left out, until it is complete
    for event in events:
        if skipping:
            if isinstance(event, CollectionStartEvent):
                depth += 1
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            if depth == 1:
                skipping, done = False, done + 1
            continue
        if depth == 1 and done % 2 == 0 and isinstance(event, ScalarEvent) and event.value == key:
            skipping, done = True, done + 1
            continue
        if isinstance(event, CollectionStartEvent):
            depth += 1
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
            done += depth == 1
        elif depth == 1 and isinstance(event, (ScalarEvent, AliasEvent)):
            done += 1
        yield event


def parse_yaml_mapping(text: str, source: str) -> YamlDocument:
    """Parse ``text`` as a YAML document whose top level is a mapping."""
    try:
        return _parse(text, source, fast=True)
    except _Refused as fast:
        if _FastParser is None:
            raise fast.issue from None
        # libyaml's words for what is wrong: PyYAML's, the same whichever parser is built.
        try:
            return _parse(text, source, fast=False)
        except _Refused as slow:
            raise slow.issue from None
        except ConfigError:
            raise fast.issue from None


class _Refused(Exception):
    """A syntax error, said as ``issue``."""

    def __init__(self, issue: ConfigError) -> None:
        super().__init__(str(issue))
        self.issue = issue


def _parse(text: str, source: str, *, fast: bool) -> YamlDocument:
    try:
        # The reader checks every character when it is created, so this can fail already.
        loader = _loader(text, source, fast=fast)
    except yaml.YAMLError as exc:
        raise _Refused(_syntax_issue(source, text, exc)) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _Refused(_syntax_issue(source, text, exc)) from None
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
            raise _issue(source, None, "config file is empty")
        if not isinstance(root, MappingNode):
            raise _issue(
                source,
                _line(root),
                f"the top level must be a mapping of settings, not {_describe(root)}",
            )
        duplicates = _find_duplicate_keys(root, source)
        if duplicates:
            raise ConfigError(duplicates)
        try:
            data: dict[str, Any] = loader.construct_document(root)
        except yaml.YAMLError as exc:
            raise _Refused(_syntax_issue(source, text, exc)) from None
    finally:
        loader.dispose()
    return YamlDocument(source=source, data=data, root=root)


def dump_yaml_mapping(data: Mapping[str, Any]) -> str:
    """``data`` as a YAML document (plain types only: what ``parse_yaml_mapping`` gives)."""
    text: str = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
    return text


class _ReadableDumper(yaml.SafeDumper):
    """Safe dumping, with each multi-line string as a literal block (``|``), as a person
    writes one in a run config."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.rstrip("\n") and value == value.strip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _string)


def dump_yaml_readable(data: Mapping[str, Any]) -> str:
    """``dump_yaml_mapping`` for a person to read and edit: multi-line strings as literal
    blocks, lines not folded; reads back as the same data."""
    text: str = yaml.dump(
        dict(data), Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=1 << 16
    )
    return text


def without_top_level_key(text: str, source: str, key: str) -> str:
    """``text`` with the top-level ``key`` and its value taken out, every other line as it was
    (comments included); ``text`` itself when it has no such key. A file whose top level is a
    flow mapping (``{repo: x, tasks: [...]}``) cannot be cut by lines: a ``ConfigError``."""
    document = parse_yaml_mapping(text, source)
    found = _lookup(document.root, key)
    if found is None:
        return text
    if document.root.flow_style:
        raise _issue(
            source, _line(document.root), f"write the top level in block style to replace {key}:"
        )
    name, value = found
    lines = text.splitlines(keepends=True)
    end = value.end_mark
    stop = end.line if end.column == 0 else end.line + 1
    # The value ends where the next key starts: the comments and blank lines before that key
    # (at the margin, so no part of an indented value) are the next key's, and stay.
    while stop > name.start_mark.line + 1 and (
        not lines[stop - 1].strip() or lines[stop - 1].startswith("#")
    ):
        stop -= 1
    return "".join(lines[: name.start_mark.line] + lines[stop:])
