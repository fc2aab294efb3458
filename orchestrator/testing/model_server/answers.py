"""The script's actions in a CLI's own terms: which tool to call with which arguments.

The tools come from the request, so the same script drives every CLI: claude gets
``Write``/``Read``+``Edit``, codex ``apply_patch`` (or its shell tool), gemini
``write_file``/``replace``, qwen ``write_file``/``edit``, opencode ``write``/``read``+``edit``,
and a CLI that offers no tools at all (aider) gets the edits as blocks in its reply text, in
the edit format its system prompt asks for. Parameter names are read from each tool's schema,
so a CLI renaming ``file_path`` to ``filePath`` needs no change here.

Where a CLI requires a file to be read before it is edited (claude, opencode), the edit is
preceded by a read whenever a read tool is offered. Paths are made absolute with the working
directory the CLI states in its prompt (several CLIs refuse relative paths).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.testing.model_server.conversation import (
    Conversation,
    OfferedTool,
    Reply,
    TextReply,
    ToolCall,
    new_id,
)
from orchestrator.testing.model_server.steps import (
    Action,
    CallTool,
    EditFile,
    FinalText,
    WriteFile,
)

__all__ = ["is_side_request", "replies", "turn", "working_directory"]

_WRITE = ("Write", "write_file", "write", "create_file")
_EDIT = ("Edit", "replace", "edit", "edit_file", "str_replace")
_READ = ("Read", "read_file", "read")
_PATCH = ("apply_patch",)
_SEARCH = ("ToolSearch", "tool_search")  # claude's and qwen's loaders of deferred tools
_DEFERRED_CALL = "tool_call"  # qwen calls a deferred tool through it
_SHELL = ("exec_command", "shell", "run_shell_command", "Bash", "bash")

# What aider's system prompts ask for: SEARCH/REPLACE blocks ("diff"), or whole file listings.
_EDIT_FORMATS = ("SEARCH/REPLACE", "file listing")
_PATH_KEYS = ("file_path", "filePath", "absolute_path", "path")
_CONTENT_KEYS = ("content", "contents", "text")
_OLD_KEYS = ("old_string", "oldString", "old_str", "old")
_NEW_KEYS = ("new_string", "newString", "new_str", "new")

# How each CLI states its working directory in the prompt (claude, gemini/qwen, opencode, codex).
_CWD = (
    re.compile(r"Primary working directory:\s*(/\S+)"),
    re.compile(r"working in the directory:\s*(/\S+)", re.IGNORECASE),
    re.compile(r"<cwd>\s*(/[^<\n]+?)\s*</cwd>"),
    re.compile(r"[Ww]orking directory:\s*(/\S+)"),
)


def replies(actions: Sequence[Action], conversation: Conversation) -> list[tuple[int, Reply]]:
    """Every reply the script makes in this CLI's terms, one per model turn, in order, each
    with the index of the action it carries out."""
    if not conversation.tools:
        return _text_replies(actions, conversation)
    cwd = working_directory(conversation.text)
    planned: list[tuple[int, Reply]] = []
    for index, action in enumerate(actions):
        if isinstance(action, FinalText):
            made: list[Reply] = [TextReply(action.text)]
        elif isinstance(action, WriteFile):
            made = _write(action, conversation.tools, cwd)
        elif isinstance(action, CallTool):
            made = _named(action, conversation)
        else:
            made = _edit(action, conversation.tools, cwd)
        planned += [(index, reply) for reply in made]
    return planned


def turn(actions: Sequence[Action], conversation: Conversation) -> int:
    """How many scripted answers the conversation already holds: the tool results, and the
    plain answers that carry one of the script's final texts (a CLI's own canned examples,
    like aider's few-shot turns, are not the model's answers)."""
    finals = [a.text for a in actions if isinstance(a, FinalText) and a.text]
    said = sum(any(f in text for f in finals) for text in conversation.assistant_texts)
    return conversation.tool_results + said


def is_side_request(conversation: Conversation) -> bool:
    """A request outside the scripted conversation: a CLI's session-title or summary call,
    which offers no tools (a tool-less CLI's own system prompt names its edit format; on a
    plain chat API like Ollama's, a request without tools is the conversation itself)."""
    if conversation.tools or conversation.plain_chat:
        return False
    return not any(m in conversation.system for m in _EDIT_FORMATS)


def working_directory(text: str) -> str | None:
    for pattern in _CWD:
        found = pattern.search(text)
        if found:
            return found.group(1).rstrip(".,;:'\")")
    return None


def _write(action: WriteFile, tools: dict[str, OfferedTool], cwd: str | None) -> list[Reply]:
    tool = _pick(tools, _WRITE)
    if tool is not None:
        arguments = {
            _key(tool, _PATH_KEYS): _absolute(action.path, cwd),
            _key(tool, _CONTENT_KEYS): action.content,
        }
        return [_call(tool, arguments)]
    patch = _pick(tools, _PATCH)
    if patch is not None:
        body = "".join(f"+{line}\n" for line in action.content.splitlines())
        return [_patch(patch, f"*** Add File: {action.path}\n{body}")]
    shell = _pick(tools, _SHELL)
    if shell is not None:
        command = f"printf %s {shlex.quote(action.content)} > {shlex.quote(action.path)}"
        return [_shell(shell, command)]
    return [_no_tool("write", action.path, tools)]


def _edit(action: EditFile, tools: dict[str, OfferedTool], cwd: str | None) -> list[Reply]:
    tool = _pick(tools, _EDIT)
    if tool is not None:
        path = _absolute(action.path, cwd)
        arguments = {
            _key(tool, _PATH_KEYS): path,
            _key(tool, _OLD_KEYS): action.old,
            _key(tool, _NEW_KEYS): action.new,
        }
        read = _pick(tools, _READ)
        first = [_call(read, {_key(read, _PATH_KEYS): path})] if read is not None else []
        return [*first, _call(tool, arguments)]
    patch = _pick(tools, _PATCH)
    if patch is not None:
        old, new = _whole_lines(action, cwd)
        removed = "".join(f"-{line}\n" for line in old.splitlines())
        added = "".join(f"+{line}\n" for line in new.splitlines())
        return [_patch(patch, f"*** Update File: {action.path}\n@@\n{removed}{added}")]
    shell = _pick(tools, _SHELL)
    if shell is not None:
        program = (
            "import pathlib,sys; p=pathlib.Path(sys.argv[1]); "
            "p.write_text(p.read_text().replace(sys.argv[2], sys.argv[3], 1))"
        )
        words = ["python3", "-c", program, action.path, action.old, action.new]
        return [_shell(shell, shlex.join(words))]
    return [_no_tool("edit", action.path, tools)]


def _text_replies(actions: Sequence[Action], conversation: Conversation) -> list[tuple[int, Reply]]:
    """One reply per final text, carrying the edits before it as blocks (aider's formats)."""
    whole = _wants_whole_files(conversation.system)
    cwd = working_directory(conversation.text)
    planned: list[tuple[int, Reply]] = []
    blocks: list[str] = []
    first = 0  # the first action the next reply carries out
    for index, action in enumerate(actions):
        if isinstance(action, FinalText):
            planned.append((first, TextReply("\n".join([*blocks, action.text]))))
            blocks, first = [], index + 1
        elif isinstance(action, CallTool):
            blocks.append(f"(I cannot call {action.name}: no tools are offered.)")
        elif isinstance(action, WriteFile):
            blocks.append(
                _whole_block(action.path, action.content)
                if whole
                else _search_replace(action.path, "", action.content)
            )
        else:
            edited = _edited(action, conversation.text, cwd) if whole else None
            blocks.append(
                _whole_block(action.path, edited)
                if edited is not None
                else _search_replace(action.path, action.old, action.new)
            )
    return planned


def _wants_whole_files(text: str) -> bool:
    # aider's "whole" format asks for complete file listings; "diff" for SEARCH/REPLACE blocks.
    return _EDIT_FORMATS[0] not in text and _EDIT_FORMATS[1] in text


def _whole_block(path: str, content: str) -> str:
    content = content if content.endswith("\n") else content + "\n"
    return f"{path}\n```\n{content}```\n"


def _edited(action: EditFile, text: str, cwd: str | None) -> str | None:
    """The file's whole content after the edit (``whole`` format), from its listing in the
    conversation (aider shows the files in the chat) or from the file itself."""
    listing = re.search(
        rf"^{re.escape(action.path)}\n```[^\n]*\n(.*?)^```$", text, re.MULTILINE | re.DOTALL
    )
    current = listing.group(1) if listing else _read(action.path, cwd)
    return None if current is None else current.replace(action.old, action.new, 1)


def _read(path: str, cwd: str | None) -> str | None:
    """A file of the CLI's working directory; never one relative to this server's own."""
    if cwd is None and not path.startswith("/"):
        return None
    try:
        return (Path(cwd or "/") / path).read_text()
    except OSError:
        return None


def _search_replace(path: str, old: str, new: str) -> str:
    old = old if not old or old.endswith("\n") else old + "\n"
    new = new if not new or new.endswith("\n") else new + "\n"
    return f"{path}\n```\n<<<<<<< SEARCH\n{old}=======\n{new}>>>>>>> REPLACE\n```\n"


def _whole_lines(action: EditFile, cwd: str | None) -> tuple[str, str]:
    """``old`` and ``new`` widened to the complete lines around ``old`` in the file as it is,
    for formats that replace whole lines (apply_patch). Unchanged when the file is not found
    (then ``old`` must be whole lines)."""
    current = _read(action.path, cwd)
    if current is None:
        return action.old, action.new
    start = current.find(action.old)
    if start < 0:
        return action.old, action.new
    line_start = current.rfind("\n", 0, start) + 1
    end = start + len(action.old)
    line_end = current.find("\n", end)
    line_end = len(current) if line_end < 0 else line_end
    before, after = current[line_start:start], current[end:line_end]
    return before + action.old + after, before + action.new + after


def _pick(tools: dict[str, OfferedTool], names: Sequence[str]) -> OfferedTool | None:
    return next((tools[name] for name in names if name in tools), None)


def _key(tool: OfferedTool, candidates: Sequence[str]) -> str:
    return next((key for key in candidates if key in tool.properties), candidates[0])


def _absolute(path: str, cwd: str | None) -> str:
    return path if cwd is None or path.startswith("/") else f"{cwd.rstrip('/')}/{path}"


def _call(tool: OfferedTool, arguments: dict[str, Any]) -> ToolCall:
    # Required parameters the script has no value for get a plain description.
    for name in tool.required:
        if name not in arguments:
            kind = tool.properties.get(name, "string")
            arguments[name] = {"boolean": False, "integer": 1, "number": 1}.get(
                kind, "Apply the scripted change."
            )
    return ToolCall(name=tool.name, arguments=arguments, call_id=new_id("call_"))


def _patch(tool: OfferedTool, body: str) -> ToolCall:
    text = f"*** Begin Patch\n{body}*** End Patch\n"
    if tool.freeform:
        return ToolCall(name=tool.name, arguments=text, call_id=new_id("call_"), freeform=True)
    return _call(tool, {_key(tool, ("input", "patch")): text})


def _shell(tool: OfferedTool, command: str) -> ToolCall:
    if "cmd" in tool.properties:
        return _call(tool, {"cmd": command})
    if tool.properties.get("command") == "array":
        return _call(tool, {"command": ["bash", "-lc", command]})
    return _call(tool, {"command": command})


def _named(action: CallTool, conversation: Conversation) -> list[Reply]:
    """The call of the tool ``action`` names: its exact name first, else the one name that
    ends with it after a ``_`` (an MCP server's tool, as the CLI prefixed it).

    A CLI that defers such tools (lists them by name only, for a search tool to load) has the
    tool looked up first, as a model would: ``select:<name>``, then the call, directly
    (claude's ``ToolSearch``) or through the CLI's caller of deferred tools (qwen's
    ``tool_search``, then ``tool_call``); the same replies in every request of the
    conversation, loaded or not yet."""
    tools = conversation.tools
    arguments = dict(action.arguments)
    search = _pick(tools, _SEARCH)
    deferred = set(re.findall(rf"\b(\w+_{re.escape(action.name)})\b", conversation.text))
    if search is not None and len(deferred) == 1 and action.name not in tools:
        name = deferred.pop()
        load = _call(search, {_key(search, ("query",)): f"select:{name}"})
        caller = tools.get(_DEFERRED_CALL)
        if caller is not None:
            through = {"name": name, "arguments": arguments}
            return [load, ToolCall(name=caller.name, arguments=through, call_id=new_id("call_"))]
        return [load, ToolCall(name=name, arguments=arguments, call_id=new_id("call_"))]
    tool = tools.get(action.name)
    if tool is None:
        ending = [t for name, t in tools.items() if name.endswith(f"_{action.name}")]
        tool = ending[0] if len(ending) == 1 else None
    if tool is None:
        return [_no_tool("call", action.name, tools)]
    return [ToolCall(name=tool.name, arguments=arguments, call_id=new_id("call_"))]


def _no_tool(what: str, path: str, tools: dict[str, OfferedTool]) -> TextReply:
    offered = ", ".join(sorted(tools))
    return TextReply(f"I cannot {what} {path}: no tool for it among those offered ({offered}).")
