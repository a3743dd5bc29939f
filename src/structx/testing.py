"""Test doubles: a scripted OpenAI-compatible server on loopback.

:class:`ScriptedServer` answers ``POST /v1/chat/completions`` with the
replies it is given, in order, and ``GET /v1/models`` with one model. It
speaks real HTTP, so everything between structx and the wire (the openai
client, retries, timeouts) runs as it would against a real endpoint. It
records every request it receives for assertions.

    >>> from structx.testing import Reply, ScriptedServer
    >>> with ScriptedServer([Reply.status(429, headers={"retry-after-ms": "10"}),
    ...                      Reply.completion('{"title": null}')]) as server:
    ...     structx.extract(text, config=Config(base_url=server.base_url, ...))
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["RecordedRequest", "Reply", "ScriptedServer"]


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer."""

    status_code: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    #: Seconds to wait before answering (to provoke client timeouts).
    delay: float = 0.0
    #: When set, the connection is reset (TCP RST) after this many bytes of the body.
    cut_after: int | None = None

    @classmethod
    def completion(
        cls,
        content: str | None,
        *,
        finish_reason: str = "stop",
        refusal: str | None = None,
        prompt_tokens: int = 100,
        completion_tokens: int = 50,
        model: str = "scripted-model",
    ) -> Reply:
        """A chat completion whose message content is ``content``."""
        payload = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return cls(200, json.dumps(payload).encode())

    @classmethod
    def tool_call(cls, name: str, arguments: Any, *, prompt_tokens: int = 100, completion_tokens: int = 50) -> Reply:
        """A completion that calls the tool ``name`` with ``arguments`` (a dict or a pydantic model)."""
        data = arguments.model_dump(mode="json") if hasattr(arguments, "model_dump") else arguments
        call = {
            "id": "call_scripted",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(data)},
        }
        reply = json.loads(cls.completion(None, finish_reason="tool_calls").body)
        reply["choices"][0]["message"]["tool_calls"] = [call]
        reply["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return cls(200, json.dumps(reply).encode())

    @classmethod
    def answer(cls, value: Any, **kwargs: Any) -> Reply:
        """A completion whose content is ``value`` as JSON (a dict or a pydantic model)."""
        data = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        return cls.completion(json.dumps(data, ensure_ascii=False), **kwargs)

    @classmethod
    def status(
        cls,
        status_code: int,
        message: str = "scripted error",
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """An OpenAI-style error body with the given HTTP status."""
        error = {"message": message, "type": "scripted_error", "code": code}
        return cls(status_code, json.dumps({"error": error}).encode(), headers=dict(headers or {}))


class _QuietHTTPServer(ThreadingHTTPServer):
    # Many clients at once (a batch at high concurrency) must not overflow the listen backlog.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout under test) closes the socket
        # before the scripted answer is written; that is expected here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    #: time.monotonic() when the request arrived.
    received_at: float = 0.0


class ScriptedServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 that plays a script.

    ``port=0`` picks a free port. When the script runs out, further
    completion requests get ``default``, or HTTP 500 with a message saying so.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        port: int = 0,
        model: str = "scripted-model",
        owned_by: str = "scripted",
        models_reply: Reply | None = None,
        default: Reply | None = None,
    ) -> None:
        self._replies = list(replies)
        #: Replaces the default ``GET /models`` answer (one model) when set.
        self.models_reply = models_reply
        #: The answer once the script has run out (by default, a 500 saying so).
        self.default = default
        self._lock = threading.Lock()
        self.model = model
        self.owned_by = owned_by
        self.requests: list[RecordedRequest] = []
        #: The most completion requests the server was answering at once.
        self.max_in_flight = 0
        self._in_flight = 0
        self._httpd = _QuietHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def start(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scripted-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        return self.default or Reply.status(500, "the scripted server has no replies left")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without TCP_NODELAY, a small write after the headers waits for
            # the client's delayed ACK: about 40 ms a request on Linux.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _record(self, body: Any) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append(RecordedRequest(self.command, self.path, headers, body, time.monotonic()))

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                # Headers and body in one write: one segment on loopback.
                self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
                if reply.cut_after is None:
                    self._headers_buffer.append(reply.body)  # type: ignore[attr-defined]
                    self.flush_headers()
                    return
                self._headers_buffer.append(reply.body[: reply.cut_after])  # type: ignore[attr-defined]
                self.flush_headers()
                # SO_LINGER with a zero timeout makes the close send RST: a reset mid-body.
                # Marked closed here, the socket really closes as soon as the handler lets go
                # of its files, before the server's shutdown(SHUT_WR) could send FIN first.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

            def do_GET(self) -> None:
                self._record(None)
                if self.path.rstrip("/").endswith("/models") and server.models_reply is not None:
                    self._send(server.models_reply)
                elif self.path.rstrip("/").endswith("/models"):
                    models = {
                        "object": "list",
                        "data": [{"id": server.model, "object": "model", "owned_by": server.owned_by}],
                    }
                    self._send(Reply(200, json.dumps(models).encode()))
                else:
                    self._send(Reply.status(404, f"no route for GET {self.path}"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                self._record(body)
                if self.path.rstrip("/").endswith("/chat/completions"):
                    with server._lock:
                        server._in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server._in_flight)
                    try:
                        self._send(server._next_reply())
                    finally:
                        with server._lock:
                            server._in_flight -= 1
                else:
                    self._send(Reply.status(404, f"no route for POST {self.path}"))

        return Handler
