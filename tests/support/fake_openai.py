"""A fake OpenAI-compatible model server on loopback, for driving a real OpenClaw gateway without credentials.

OpenClaw's custom providers (``api: "openai-completions"``) call ``POST {baseUrl}/chat/completions``, usually
with ``stream: true``. This server answers every chat completion with a fixed reply and fixed token usage, so
that OpenClaw computes a known cost (e.g. 1000 input + 200 output tokens at 3 / 15 USD per 1M = 0.006 USD), and
it records every request so a test can prove whether a run reached the model at all.

Streaming answers are Server-Sent Events: one chunk with the reply text, one with ``finish_reason``, then a
final chunk with empty ``choices`` and the ``usage`` object (what OpenAI sends for
``stream_options.include_usage``; OpenClaw needs it to count tokens), then ``data: [DONE]``.

A test can script turns: ``fake.queue_tool_call("write", {"path": "a.txt", "content": "x"})`` makes the next
completion a tool call (``finish_reason: "tool_calls"``), as a model driving an agent loop would; completions
after the script run out get the fixed reply. ``on_completion(index, body)`` is called before each answer
(e.g. to close the budget gate while a run is in progress).

Usage::

    with FakeOpenAI(reply="pong") as fake:
        provider = {"baseUrl": fake.base_url, "apiKey": "sk-fake-test-key", ...}
        ...
        assert fake.completion_count() == 1
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

MODEL_ID = "fake-model"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake server received."""

    method: str
    path: str
    body: Optional[Dict[str, Any]]
    received_at: float = field(default_factory=time.time)


class FakeOpenAI:
    """OpenAI-compatible ``/v1`` API on ``127.0.0.1:<free port>``, started in a background thread.

    ``reply`` is the assistant text of every answer; ``prompt_tokens`` / ``completion_tokens`` the usage
    reported for each completion. ``requests`` lists everything received, in order (thread-safe reads via
    :meth:`completion_requests` / :meth:`completion_count`).
    """

    def __init__(self, reply: str = "pong from the fake model", prompt_tokens: int = 1000,
                 completion_tokens: int = 200, model_id: str = MODEL_ID,
                 on_completion: Optional[Callable[[int, Optional[Dict[str, Any]]], None]] = None) -> None:
        self.reply = reply
        self.on_completion = on_completion
        self._turns: List[Dict[str, Any]] = []
        self._completions = 0
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.model_id = model_id
        self._lock = threading.Lock()
        self._requests: List[RecordedRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What goes into the provider's ``baseUrl`` (OpenClaw appends ``/chat/completions``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was received -----------------------------------------------------------------------------
    @property
    def requests(self) -> List[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def completion_requests(self) -> List[RecordedRequest]:
        """The chat-completion calls, i.e. the requests that would cost money on a real provider."""
        return [r for r in self.requests if r.method == "POST" and r.path.rstrip("/").endswith("/chat/completions")]

    def completion_count(self) -> int:
        return len(self.completion_requests())

    def usage(self) -> Dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # -- scripted turns ----------------------------------------------------------------------------------
    def queue_tool_call(self, name: str, arguments: Dict[str, Any]) -> None:
        """Make a later completion (in queue order) a call of tool ``name`` with ``arguments``."""
        with self._lock:
            self._turns.append({"tool": name, "arguments": arguments})

    def _next_turn(self, body: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        with self._lock:
            index = self._completions
            self._completions += 1
            turn = self._turns.pop(0) if self._turns else None
        if self.on_completion is not None:
            self.on_completion(index, body)
        return turn


def _handler_for(fake: FakeOpenAI) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            fake._record(RecordedRequest("GET", self.path, None))
            if self.path.rstrip("/").endswith("/models"):
                self._send_json(200, {"object": "list", "data": [
                    {"id": fake.model_id, "object": "model", "created": 0, "owned_by": "fake"}]})
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self) -> None:
            raw = self._read_body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            fake._record(RecordedRequest("POST", self.path, body))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            model = (body or {}).get("model") or fake.model_id
            turn = fake._next_turn(body)
            tool_calls = None
            if turn is not None:
                tool_calls = [{"index": 0, "id": f"call_fake_{fake._completions}", "type": "function",
                               "function": {"name": turn["tool"], "arguments": json.dumps(turn["arguments"])}}]
            if (body or {}).get("stream"):
                self._stream(model, tool_calls)
            else:
                message: Dict[str, Any] = {"role": "assistant", "content": None if tool_calls else fake.reply}
                if tool_calls:
                    message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in tool_calls]
                self._send_json(200, {
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "finish_reason": "tool_calls" if tool_calls else "stop",
                                 "message": message}],
                    "usage": fake.usage(),
                })

        def _read_body(self) -> bytes:
            """The request body, with or without Content-Length (Node clients may send it chunked)."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()  # the blank line after the last chunk
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()  # CRLF after each chunk
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _stream(self, model: str, tool_calls: Optional[List[Dict[str, Any]]] = None) -> None:
            base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": model}
            if tool_calls:
                delta: Dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": tool_calls}
            else:
                delta = {"role": "assistant", "content": fake.reply}
            chunks = [
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                {**base, "choices": [{"index": 0, "delta": {},
                                      "finish_reason": "tool_calls" if tool_calls else "stop"}]},
                {**base, "choices": [], "usage": fake.usage()},
            ]
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            data = payload.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_json(self, status: int, obj: Dict[str, Any]) -> None:
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
