"""What scripted-cli prints: Claude Code's ``--output-format stream-json`` lines.

``ClaudeStream`` writes them on stdout, one JSON object a line, each with the session's id:
``assistant`` messages (text, ``tool_use``) with their usage, the ``user`` message holding a
tool's result (an error result when the tool raised ``OSError`` or ``ValueError``), and the
final ``result`` with the run's usage, cost and permission denials. It keeps what that
result counts: the turns, the tokens the ``SPEND`` steps spent, the writes refused. A
persona's ``delay`` paces the tool calls, its ``personality`` prefixes each message. Standard
library only, like ``scripted_cli`` (which see).
"""

from __future__ import annotations

import json
import os
import sys
import time

TYPE_CHECKING = False  # typing is not imported at run time: this process starts per phase
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ClaudeStream", "uuid4_text"]


def uuid4_text() -> str:
    """What ``str(uuid4())`` gives, without importing ``uuid`` (which imports ``platform``): a
    random UUID of version 4, its variant bits set, in its 8-4-4-4-12 form."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class ClaudeStream:
    """The stream-json writer of one run of the stand-in CLI."""

    def __init__(
        self, session_id: str, prompt: str, model: str, delay: float, personality: str
    ) -> None:
        self.session_id = session_id
        self.prompt = prompt
        self.model = model
        self.delay = delay
        self.personality = personality
        self.denials: list[dict[str, Any]] = []
        self.turns = 1
        self.spent = [0, 0]  # input and output tokens of the SPEND steps

    def emit(self, payload: dict[str, Any]) -> None:
        payload.setdefault("session_id", self.session_id)
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    def say(self, text: str) -> None:
        if self.personality:
            text = f"{self.personality} {text}"
        self.assistant([{"type": "text", "text": text}])

    def assistant(self, content: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
        message: dict[str, Any] = {
            "id": f"msg_{uuid4_text().replace('-', '')[:24]}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "usage": usage if usage is not None else _usage(self.prompt, content),
        }
        self.emit({"type": "assistant", "message": message, "parent_tool_use_id": None})

    def tool(self, name: str, tool_input: dict[str, Any], action: Any) -> None:
        self.pause()
        call_id = f"toolu_{uuid4_text().replace('-', '')[:24]}"
        self.assistant([{"type": "tool_use", "id": call_id, "name": name, "input": tool_input}])
        self.turns += 1
        try:
            output, is_error = str(action()), False
        except (OSError, ValueError) as exc:
            output, is_error = f"Error: {exc}", True
        block: dict[str, Any] = {"tool_use_id": call_id, "type": "tool_result", "content": output}
        if is_error:
            block["is_error"] = True
        self.emit({"type": "user", "message": {"role": "user", "content": [block]}})

    def result(self, text: str, *, error: bool = False, status: int | None = None) -> None:
        tokens_in = len(self.prompt.split()) * self.turns + self.spent[0]
        tokens_out = len(text.split()) + self.spent[1]
        self.emit(
            {
                "type": "result",
                "subtype": "error_during_execution" if error and status is None else "success",
                "is_error": error,
                "api_error_status": status,
                "duration_ms": 1,
                "num_turns": self.turns,
                "result": text,
                "stop_reason": "end_turn",
                "total_cost_usd": round((tokens_in * 3 + tokens_out * 15) / 1e6, 6),
                "usage": {
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
                "permission_denials": self.denials,
            }
        )

    def pause(self) -> None:
        if self.delay > 0:
            time.sleep(self.delay)


def _usage(prompt: str, content: list[dict[str, Any]]) -> dict[str, int]:
    words = sum(len(str(block.get("text", block.get("input", ""))).split()) for block in content)
    return {"input_tokens": len(prompt.split()), "output_tokens": words}
