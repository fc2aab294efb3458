"""A prompt too long for one command-line argument (Linux: 128 KiB, ``MAX_ARG_STRLEN``) never
becomes one: each built-in adapter passes it through stdin or a file, the way its CLI reads
one (``tests/support/reference/long_prompts.md``), and a ``command`` preset that cannot refuses
it with the way out. These are the commands; ``test_long_prompts_run`` runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.aider import MESSAGE_FILE, AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.command import CommandAdapter
from adapters.gemini import GeminiAdapter
from adapters.ollama import OllamaAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from adapters.scripted import Scripted
from orchestrator.adapter import Adapter, AdapterRequest, CommandSpec
from orchestrator.adapter.arg_limits import (
    ARGUMENT_LIMIT,
    PROMPT_ARGUMENT_LIMIT,
    command_too_long,
    too_long_for_argument,
    utf8_size,
)
from orchestrator.errors import AdapterError

# Over 200 KiB, and not ASCII only: the limit is in bytes, not characters.
LONG = "".join(
    f"Requirement {n}: the café's menu keeps every dish — ünïcode too.\n" for n in range(3000)
)
SHORT = "Add a README"
SESSION = "0d6a4b4e-5f1c-4a53-9a8e-3b1f7a2c9d10"

# Each built-in adapter, with the options it needs, and how a long prompt reaches its CLI.
BUILT_INS: dict[str, tuple[type[Adapter], dict[str, Any], str]] = {
    "claude_code": (ClaudeCodeAdapter, {}, "stdin"),
    "codex": (CodexAdapter, {}, "stdin"),
    "gemini": (GeminiAdapter, {}, "stdin"),
    "qwen": (QwenAdapter, {}, "stdin"),
    "opencode": (OpencodeAdapter, {}, "stdin"),
    "ollama": (OllamaAdapter, {"model": "llama3"}, "stdin"),
    "aider": (AiderAdapter, {}, "file"),
    "scripted": (Scripted, {}, "stdin"),
}


def request(tmp_path: Path, prompt: str) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=tmp_path / "work", home=tmp_path / "home")


def adapter_named(name: str) -> Adapter:
    kind, options, _ = BUILT_INS[name]
    return kind(options)


def assert_carried_whole(spec: CommandSpec, way: str, home: Path) -> None:
    assert command_too_long(spec.argv, spec.env) is None
    assert not any(LONG in arg for arg in spec.argv)
    if way == "stdin":
        assert spec.stdin == LONG
    else:
        assert spec.stdin is None
        assert spec.home_files[MESSAGE_FILE] == LONG
        flag = spec.argv.index("--message-file")
        assert spec.argv[flag + 1] == str(home / MESSAGE_FILE)


def test_the_long_prompt_is_longer_than_any_argument_may_be() -> None:
    assert utf8_size(LONG) > 200 * 1024 > ARGUMENT_LIMIT
    assert len(LONG) < utf8_size(LONG)  # some characters take more than one byte
    assert command_too_long(["cli", LONG], {}) is not None


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_a_long_prompt_never_becomes_an_argument(tmp_path: Path, name: str) -> None:
    spec = adapter_named(name).build_command(request(tmp_path, LONG))
    assert_carried_whole(spec, BUILT_INS[name][2], tmp_path / "home")


@pytest.mark.parametrize("name", sorted(n for n in BUILT_INS if adapter_named(n).can_resume))
def test_nor_when_a_conversation_is_resumed(tmp_path: Path, name: str) -> None:
    spec = adapter_named(name).resume_command(request(tmp_path, LONG), SESSION)
    assert SESSION in spec.argv
    assert_carried_whole(spec, BUILT_INS[name][2], tmp_path / "home")


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_a_short_prompt_is_still_one_argument(tmp_path: Path, name: str) -> None:
    spec = adapter_named(name).build_command(request(tmp_path, SHORT))
    assert spec.argv.count(SHORT) == 1
    assert spec.stdin is None
    assert MESSAGE_FILE not in spec.home_files


def _without(argv: list[str], *words: str) -> list[str]:
    return [arg for arg in argv if arg not in words]


def test_each_cli_is_told_to_read_stdin_its_own_way(tmp_path: Path) -> None:
    """The long prompt's command is the short prompt's with the prompt taken out, or told
    where the prompt is instead; nothing else changes."""

    def argv(name: str, prompt: str) -> list[str]:
        built = adapter_named(name).build_command(request(tmp_path, prompt)).argv
        if "--session-id" in built:  # qwen names each new session anew (its debug log)
            built[built.index("--session-id") + 1] = "<new session>"
        return built

    def short(name: str) -> list[str]:
        return argv(name, SHORT)

    # claude and the stand-in: -p with nothing after it reads the prompt from stdin.
    assert argv("claude_code", LONG) == _without(short("claude_code"), SHORT)
    assert argv("scripted", LONG) == _without(short("scripted"), "-p", SHORT)
    # codex exec reads its prompt from stdin when the prompt argument is "-".
    assert argv("codex", LONG) == [*short("codex")[:-1], "-"] and short("codex")[-1] == SHORT
    # gemini, qwen, opencode, ollama: no prompt argument at all, or it would be added to stdin's.
    assert argv("gemini", LONG) == _without(short("gemini"), "-p", SHORT)
    for name in ("qwen", "opencode", "ollama"):
        assert argv(name, LONG) == _without(short(name), SHORT), name
    # aider: --message-file instead of --message.
    message_file = ["--message-file", str(tmp_path / "home" / MESSAGE_FILE)]
    aider = short("aider")
    at = aider.index("--message")
    assert argv("aider", LONG) == [*aider[:at], *message_file, *aider[at + 2 :]]


def test_the_switch_is_at_the_prompt_limit_in_bytes(tmp_path: Path) -> None:
    adapter = adapter_named("claude_code")
    at_limit = "é" * (PROMPT_ARGUMENT_LIMIT // 2)
    over = at_limit + "x"
    assert not too_long_for_argument(at_limit) and too_long_for_argument(over)
    assert adapter.build_command(request(tmp_path, at_limit)).stdin is None
    assert adapter.build_command(request(tmp_path, over)).stdin == over


def test_a_flag_like_prompt_still_goes_its_own_way(tmp_path: Path) -> None:
    # Short but starting with "-": claude and the scripted stand-in take it on stdin too.
    for name in ("claude_code", "scripted"):
        spec = adapter_named(name).build_command(request(tmp_path, "--help me"))
        assert spec.stdin == "--help me" and "--help me" not in spec.argv


def test_a_command_preset_reading_stdin_gets_the_long_prompt_there(tmp_path: Path) -> None:
    preset = CommandAdapter({"binary": "mycli", "args": ["--json"], "stdin_prompt": True})
    spec = preset.build_command(request(tmp_path, LONG))
    assert spec.argv == ["mycli", "--json"] and spec.stdin == LONG


def test_a_command_preset_that_cannot_take_it_refuses_with_the_way_out(tmp_path: Path) -> None:
    preset = CommandAdapter({"binary": "mycli", "args": ["--prompt", "{prompt}"]})
    assert preset.build_command(request(tmp_path, SHORT)).argv == ["mycli", "--prompt", SHORT]
    with pytest.raises(AdapterError) as refused:
        preset.build_command(request(tmp_path, LONG))
    message = str(refused.value)
    assert message.startswith(f"adapter 'command': a prompt of {utf8_size(LONG) // 1024} KiB ")
    assert "argument 2 of the command is" in message
    assert message.endswith(
        "set stdin_prompt: true in the preset if mycli reads its prompt from stdin"
    )
    assert "\n" not in message


def test_command_too_long_names_what_is_too_long() -> None:
    assert command_too_long(["cli", "x" * 1000], {"HOME": "/h"}) is None
    too_big = command_too_long(["cli", "-p", "x" * ARGUMENT_LIMIT], {})
    assert (
        too_big
        == "argument 2 of the command is 128 KiB, more than the 128 KiB one argument may hold"
    )
    variable = command_too_long(["cli"], {"HUGE": "y" * ARGUMENT_LIMIT})
    assert variable is not None and variable.startswith("variable HUGE is 128 KiB")
    # Many arguments, each short: the whole command is over ARG_MAX.
    many = command_too_long(["cli", *(["z" * 100_000] * 40)], {})
    assert many is not None and "more than the system's" in many and "(ARG_MAX)" in many
    # Counted in bytes, not characters: 44,000 euro signs are 132,000 bytes.
    assert command_too_long(["cli", "\u20ac" * 44_000], {}) is not None
    assert command_too_long(["cli", "\u20ac" * 43_000], {}) is None  # 129,000 bytes
