"""A scripted model server on 127.0.0.1 that real AI coding CLIs can talk to, offline.

It speaks the four wire protocols these CLIs use: Anthropic Messages (``/v1/messages``, SSE),
OpenAI Responses (``/v1/responses``, SSE), OpenAI Chat Completions (``/v1/chat/completions``,
SSE or one JSON object) and Gemini (``/v1beta/models/M:streamGenerateContent``,
``:generateContent``, ``:countTokens``); and Ollama's native API (``/api/chat``,
``/api/generate``, NDJSON; ``/api/tags``, ``/api/show``, ``/api/version``, ``HEAD /``), which
``ollama run`` and Ollama client libraries speak. Every request is answered from a script::

    from orchestrator.testing.fake_model import FakeModel, FinalText, RateLimited, WriteFile

    with FakeModel([RateLimited(1), WriteFile("hello.txt", "hi\\n"), FinalText("done")]) as model:
        env = {"ANTHROPIC_BASE_URL": model.base_url, "ANTHROPIC_API_KEY": "fake-key"}
        ...  # run claude -p ... with env; it gets a 429, retries, then writes hello.txt
        assert [r.answer for r in model.requests] == ["429", "tool Write", "text"]

How a request is answered:

- The file steps become tool calls in the tools the request offers, by the CLI's own names and
  parameter names (``orchestrator.testing.model_server.answers``); a CLI without tools (aider)
  gets them as edit blocks in its reply text.
- Which step is due is read from the conversation the request carries (how many tool results
  and plain answers it already holds), not from the server's memory: a CLI that is stopped and
  relaunched, or resumes its session, picks up where its history says it is. Past the end of
  the script, the last ``FinalText`` is repeated.
- ``RateLimited`` answers 429 to the first ``count`` requests for the step after it (``None``:
  all of them), with or without reset headers; ``Unauthorized`` answers 401 from there on. These
  two are the only state the server keeps (how many 429s each gate has served);
  ``set_script`` replaces the script and forgets it.
- Requests outside the conversation (a CLI's title or summary call, with no tools) are answered
  with a short text and never rate limited.
- With ``api_key=``, a request carrying any other key (``x-api-key``, ``Authorization: Bearer``,
  ``x-goog-api-key``, ``?key=``) gets 401.

Every request is recorded (``requests``), with its credentials masked, for assertions.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orchestrator.testing.local_server import LocalServer
from orchestrator.testing.model_server import ollama
from orchestrator.testing.model_server.answers import is_side_request, replies, turn
from orchestrator.testing.model_server.anthropic import AnthropicMessages
from orchestrator.testing.model_server.chat import ChatCompletions
from orchestrator.testing.model_server.conversation import Conversation, Reply, TextReply, ToolCall
from orchestrator.testing.model_server.gemini import GeminiGenerateContent
from orchestrator.testing.model_server.ollama import OllamaChat, OllamaGenerate
from orchestrator.testing.model_server.responses import OpenAIResponses
from orchestrator.testing.model_server.steps import (
    CallTool,
    EditFile,
    FinalText,
    RateLimited,
    Step,
    Unauthorized,
    WriteFile,
    split_script,
)
from orchestrator.testing.model_server.wire import WireProtocol, WireResponse, json_response

__all__ = [
    "CallTool",
    "EditFile",
    "FakeModel",
    "FinalText",
    "RateLimited",
    "RecordedRequest",
    "Step",
    "Unauthorized",
    "WriteFile",
]

MASK = "***"
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "proxy-authorization"}
)
_SIDE_ANSWER = "Fake model session"
_MAX_BODY = 64 * 1024 * 1024

_ANTHROPIC = AnthropicMessages()
_RESPONSES = OpenAIResponses()
_CHAT = ChatCompletions()
_GEMINI = GeminiGenerateContent()
_OLLAMA_CHAT = OllamaChat()
_OLLAMA_GENERATE = OllamaGenerate()
# Ollama's routes around a conversation: what each answers.
_OLLAMA_INFO = {
    "heartbeat": lambda body: ollama.heartbeat(),
    "version": lambda body: ollama.version(),
    "tags": lambda body: ollama.tags(),
    "show": ollama.show,
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server saw, and how it answered."""

    method: str
    path: str  # with a ``key=`` query parameter masked
    protocol: str | None  # anthropic | responses | chat | gemini | ollama; None: unknown route
    headers: dict[str, str]  # lower-case names; credentials masked
    body: Any  # the parsed JSON body (None when there was none or it was not JSON)
    status: int
    answer: str  # "tool NAME", "text", "side", "429", "401", "count_tokens", "models",
    # "not found", and Ollama's "heartbeat", "version", "tags", "show"
    side: bool = False  # outside the scripted conversation (a title or summary call)
    turn: int | None = None  # the conversation turn it answered (the script position)
    tools: tuple[str, ...] = ()  # the tools the request offered


class FakeModel:
    """The server. Use it as a context manager, or ``start()`` and ``stop()`` it."""

    def __init__(self, script: Sequence[Step] = (), *, api_key: str | None = None) -> None:
        self._lock = threading.Lock()
        self._script: list[Step] = list(script)
        self._served: dict[int, int] = {}
        self._requests: list[RecordedRequest] = []
        self.api_key = api_key
        self._server = LocalServer(_handler(self), "fake-model")

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeModel:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeModel:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where clients point -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.port("the fake model")

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: Anthropic's and Gemini's base URL (they add the version)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: OpenAI-style clients expect the version in the base."""
        return f"{self.base_url}/v1"

    # -- script and records ------------------------------------------------------------------

    def set_script(self, script: Sequence[Step]) -> None:
        """Answer from ``script`` from now on; the 429 counts start over."""
        with self._lock:
            self._script = list(script)
            self._served = {}

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def conversation_requests(self) -> list[RecordedRequest]:
        """The requests of the scripted conversation (no side calls, token counts, listings)."""
        return [r for r in self.requests if r.protocol and not r.side and r.turn is not None]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests = []

    # -- answering (called from the server's threads) ----------------------------------------

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> WireResponse:
        route = urlsplit(path).path
        protocol, kind = _route(method, route)
        body = _json(raw)
        key = _presented_key(headers, path)
        record = {
            "method": method,
            "path": _mask_query(path),
            "protocol": protocol.name if protocol else None,
            "headers": _masked(headers),
            "body": body,
        }
        if self.api_key is not None and key != self.api_key and protocol is not None:
            return self._record(record, protocol.unauthorized(), "401")
        if protocol is None or kind is None:
            error = {"error": {"message": f"no route for {method} {route} (fake model)"}}
            return self._record(record, json_response(404, error), "not found")
        if kind == "count_tokens":
            return self._record(record, protocol.count_tokens(), "count_tokens")
        if kind in _OLLAMA_INFO:
            return self._record(record, _OLLAMA_INFO[kind](body), kind)
        if kind == "models":
            listing = {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
            return self._record(record, json_response(200, listing), "models")
        if not isinstance(body, dict):
            error = {"error": {"message": "the request body is not a JSON object (fake model)"}}
            return self._record(record, json_response(400, error), "bad request")
        conversation = protocol.conversation(body, route)
        record["tools"] = tuple(conversation.tools)
        return self._converse(protocol, conversation, record)

    def _converse(
        self, protocol: WireProtocol, conversation: Conversation, record: dict[str, Any]
    ) -> WireResponse:
        with self._lock:
            actions, gates = split_script(self._script)
            if is_side_request(conversation):
                record["side"] = True
                if any(isinstance(g, Unauthorized) for _, g in gates.get(0, [])):
                    return self._record_locked(record, protocol.unauthorized(), "401")
                answer = protocol.reply(TextReply(_SIDE_ANSWER), conversation)
                return self._record_locked(record, answer, "side")
            planned = replies(actions, conversation)
            record["turn"] = turn(actions, conversation)
            index = min(record["turn"], len(planned) - 1)
            action, reply = planned[index]
            opens_action = index == 0 or planned[index - 1][0] != action
            for at, gated in sorted(gates.items()):
                for position, gate in gated:
                    if isinstance(gate, Unauthorized) and at <= action:
                        return self._record_locked(record, protocol.unauthorized(), "401")
                    if isinstance(gate, RateLimited) and at == action and opens_action:
                        served = self._served.get(position, 0)
                        if gate.count is None or served < gate.count:
                            self._served[position] = served + 1
                            return self._record_locked(record, protocol.rate_limited(gate), "429")
            return self._record_locked(record, protocol.reply(reply, conversation), _said(reply))

    def _record(self, record: dict[str, Any], response: WireResponse, answer: str) -> WireResponse:
        with self._lock:
            return self._record_locked(record, response, answer)

    def _record_locked(
        self, record: dict[str, Any], response: WireResponse, answer: str
    ) -> WireResponse:
        self._requests.append(RecordedRequest(**record, status=response.status, answer=answer))
        return response


def _said(reply: Reply) -> str:
    return f"tool {reply.name}" if isinstance(reply, ToolCall) else "text"


def _route(method: str, path: str) -> tuple[WireProtocol | None, str | None]:
    """The protocol of a path, and what is asked: generate, count_tokens, models, or one of
    Ollama's heartbeat, version, tags and show."""
    if method in ("GET", "HEAD"):
        if path == "/":
            return _OLLAMA_CHAT, "heartbeat"
        if path in ("/api/version", "/api/tags"):
            return _OLLAMA_CHAT, path.rsplit("/", 1)[1]
    if method == "HEAD":
        return None, None
    if method == "GET":
        if path.rstrip("/").endswith("/models"):
            protocol = _GEMINI if path.startswith("/v1beta") else _CHAT
            return protocol, "models"
        return None, None
    if path.endswith("/messages/count_tokens"):
        return _ANTHROPIC, "count_tokens"
    if path.endswith("/messages"):
        return _ANTHROPIC, "generate"
    if path.endswith("/responses"):
        return _RESPONSES, "generate"
    if path == "/api/show":
        return _OLLAMA_CHAT, "show"
    if path == "/api/chat":
        return _OLLAMA_CHAT, "generate"
    if path == "/api/generate":
        return _OLLAMA_GENERATE, "generate"
    if path.endswith("/chat/completions"):
        return _CHAT, "generate"
    if ":countTokens" in path:
        return _GEMINI, "count_tokens"
    if ":streamGenerateContent" in path or ":generateContent" in path:
        return _GEMINI, "generate"
    return None, None


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _presented_key(headers: dict[str, str], path: str) -> str | None:
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        if headers.get(name):
            return headers[name]
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    keys = parse_qs(urlsplit(path).query).get("key")
    return keys[0] if keys else None


def _masked(headers: dict[str, str]) -> dict[str, str]:
    return {name: MASK if name in _CREDENTIAL_HEADERS else value for name, value in headers.items()}


def _mask_query(path: str) -> str:
    parts = urlsplit(path)
    if not parts.query:
        return path
    pairs = [p.split("=", 1) for p in parts.query.split("&")]
    query = "&".join(f"{p[0]}={MASK}" if p[0] == "key" else "=".join(p) for p in pairs)
    return f"{parts.path}?{query}"


def _handler(model: FakeModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: CLIs reuse their connections
        server_version = "FakeModel/1"

        def do_GET(self) -> None:  # http.server's naming
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_HEAD(self) -> None:  # Ollama's heartbeat
            self._serve()

        def _serve(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                raw = _decoded(self._body(headers), headers.get("content-encoding", ""))
            except (ValueError, OSError, zlib.error) as exc:
                error = {"error": {"message": f"unreadable request body: {exc} (fake model)"}}
                self._send(json_response(415, error))
                return
            self._send(model._answer(self.command, self.path, headers, raw))

        def _body(self, headers: dict[str, str]) -> bytes:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(headers.get("content-length", "0") or 0)
            if length > _MAX_BODY:
                raise ValueError(f"body of {length} bytes")
            return self.rfile.read(length) if length > 0 else b""

        def _send(self, response: WireResponse) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("request-id", "req_fake_model")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are recorded, not printed

    return Handler


def _decoded(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    raise ValueError(f"content-encoding {encoding!r} is not supported")
