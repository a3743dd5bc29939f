"""Test doubles: a scripted OpenAI-compatible server on loopback.

:class:`ScriptedServer` answers ``POST /v1/chat/completions`` with the
replies it is given, in order, and ``GET /v1/models`` with one model. It
speaks real HTTP, so everything between structx and the wire (the openai
client, retries, timeouts) runs as it would against a real endpoint. It
records every request it receives for assertions. :class:`BatchServer`
adds the Files and Batches APIs, each batch ending as scripted (completed,
expired, cancelled, with error lines or lines for unknown ids).

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["BatchEnd", "BatchServer", "RecordedRequest", "Reply", "ScriptedServer"]


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
        respond: Callable[[Any], Reply | None] | None = None,
    ) -> None:
        self._replies = list(replies)
        #: Chooses the answer to a completion request from its JSON body (None: the script's next reply).
        self.respond = respond
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

    def _next_reply(self, body: Any = None) -> Reply:
        if self.respond is not None and (chosen := self.respond(body)) is not None:
            return chosen
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        return self.default or Reply.status(500, "the scripted server has no replies left")

    def _route(self, method: str, path: str, body: bytes, content_type: str) -> Reply | None:
        """The answer to a request on a route other than completions and models; None: 404."""
        return None

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
                    self._send(
                        server._route("GET", self.path, b"", "") or Reply.status(404, f"no route for GET {self.path}")
                    )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                content_type = self.headers.get("Content-Type") or ""
                if content_type.startswith("multipart/"):
                    body: Any = _form_fields(raw, content_type)
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode("utf-8", "replace")
                self._record(body)
                if self.path.rstrip("/").endswith("/chat/completions"):
                    with server._lock:
                        server._in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server._in_flight)
                    try:
                        self._send(server._next_reply(body))
                    finally:
                        with server._lock:
                            server._in_flight -= 1
                else:
                    routed = server._route("POST", self.path, raw, content_type)
                    self._send(routed or Reply.status(404, f"no route for POST {self.path}"))

        return Handler


def _form_fields(raw: bytes, content_type: str) -> dict[str, Any]:
    """The fields of a multipart/form-data body: text for plain fields, {filename, content} for files."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True)
        filename = part.get_filename()
        if filename is not None:
            fields[str(name)] = {"filename": filename, "content": content}
        else:
            fields[str(name)] = content.decode("utf-8") if isinstance(content, bytes) else content
    return fields


@dataclass(frozen=True)
class BatchEnd:
    """How :class:`BatchServer` ends the next batch created.

    ``status``: ``completed``, ``expired``, ``cancelled`` or ``failed``. The
    first ``answered`` lines of the input file are answered (None: all, for
    ``completed``; none, for the others): each gets the server's next
    completion reply, and a reply whose status is not 200 becomes a line of
    the error file. Of the rest, an ``expired`` batch writes a
    ``batch_expired`` line to the error file for each; a ``cancelled`` or
    ``failed`` one writes nothing. ``polls`` status requests see the batch
    ``in_progress`` before it ends. ``unknown_ids`` adds output lines for ids
    that no request had.
    """

    status: str = "completed"
    answered: int | None = None
    polls: int = 0
    unknown_ids: tuple[str, ...] = ()


class BatchServer(ScriptedServer):
    """:class:`ScriptedServer` plus the Files and Batches APIs, on loopback.

    ``POST /v1/files`` (multipart, ``purpose=batch``) stores a file;
    ``POST /v1/batches`` runs its lines at once against the completion
    script (``respond``, then the replies in order) and keeps the output
    and error files; ``GET /v1/batches/{id}`` reports the batch as
    ``in_progress`` for its :class:`BatchEnd`'s ``polls`` requests, then
    ended; ``GET /v1/files/{id}/content`` downloads a file. Each batch ends
    as the next of ``batches`` says (by default: completed, every line
    answered). :attr:`batch_lines` keeps the request lines of every batch.
    """

    def __init__(self, replies: Iterable[Reply] = (), *, batches: Iterable[BatchEnd] = (), **kwargs: Any) -> None:
        super().__init__(replies, **kwargs)
        self._ends = list(batches)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        #: The request lines of each batch, by batch id.
        self.batch_lines: dict[str, list[dict[str, Any]]] = {}
        self._polls: dict[str, int] = {}
        self._ended: dict[str, dict[str, Any]] = {}

    def _route(self, method: str, path: str, body: bytes, content_type: str) -> Reply | None:
        parts = [part for part in path.split("?")[0].split("/") if part][1:]  # without "v1"
        if method == "POST" and parts == ["files"]:
            return self._upload(_form_fields(body, content_type))
        if method == "POST" and parts == ["batches"]:
            return self._create(json.loads(body))
        if method == "GET" and len(parts) == 2 and parts[0] == "batches":
            return self._retrieve(parts[1])
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            stored = self.files.get(parts[1])
            if stored is None:
                return Reply.status(404, f"no file {parts[1]}")
            return Reply(200, stored["content"], content_type="application/octet-stream")
        return None

    def _new_file(self, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        with self._lock:
            file_id = f"file-{len(self.files) + 1:04d}"
            self.files[file_id] = {"filename": filename, "content": content, "purpose": purpose}
        return {"id": file_id, "object": "file", "bytes": len(content), "created_at": 1_700_000_000,
                "filename": filename, "purpose": purpose, "status": "processed"}  # fmt: skip

    def _upload(self, fields: dict[str, Any]) -> Reply:
        upload = fields.get("file")
        if fields.get("purpose") != "batch" or not isinstance(upload, dict):
            return Reply.status(400, "a batch input file needs purpose=batch and a file")
        return Reply(200, json.dumps(self._new_file(upload["filename"], upload["content"], "batch")).encode())

    def _create(self, request: dict[str, Any]) -> Reply:
        stored = self.files.get(request.get("input_file_id", ""))
        if stored is None:
            return Reply.status(400, "no such input file")
        if request.get("endpoint") != "/v1/chat/completions" or request.get("completion_window") != "24h":
            return Reply.status(400, "endpoint must be /v1/chat/completions and completion_window 24h")
        lines = [json.loads(line) for line in stored["content"].splitlines() if line.strip()]
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1:04d}"
            end = self._ends.pop(0) if self._ends else BatchEnd()
        self.batch_lines[batch_id] = lines
        answered = len(lines) if end.answered is None and end.status == "completed" else end.answered or 0
        output: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for number, line in enumerate(lines):
            if number < answered:
                reply = self._next_reply(line["body"])
                try:
                    reply_body: Any = json.loads(reply.body)
                except ValueError:
                    reply_body = reply.body.decode("utf-8", "replace")
                response = {"status_code": reply.status_code, "request_id": f"req_{number}", "body": reply_body}
                entry = {"id": f"batch_req_{number}", "custom_id": line["custom_id"], "response": response,
                         "error": None}  # fmt: skip
                (output if reply.status_code == 200 else errors).append(entry)
            elif end.status == "expired":
                error = {"code": "batch_expired", "message": "This request could not be executed before the "
                         "completion window expired."}  # fmt: skip
                errors.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "response": None,
                               "error": error})  # fmt: skip
        for number, custom_id in enumerate(end.unknown_ids, start=len(lines)):
            response = {"status_code": 200, "request_id": f"req_{number}",
                        "body": json.loads(Reply.completion("{}").body)}  # fmt: skip
            output.append({"id": f"batch_req_{number}", "custom_id": custom_id, "response": response, "error": None})
        ended: dict[str, Any] = {"status": end.status, "output_file_id": None, "error_file_id": None,
                                 "request_counts": {"total": len(lines), "completed": len(output),
                                                    "failed": len(errors)}}  # fmt: skip
        if output:
            ended["output_file_id"] = self._new_file(f"{batch_id}_output.jsonl", _jsonl(output), "batch_output")["id"]
        if errors:
            ended["error_file_id"] = self._new_file(f"{batch_id}_error.jsonl", _jsonl(errors), "batch_output")["id"]
        batch = {"id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
                 "input_file_id": request["input_file_id"], "completion_window": request["completion_window"],
                 "status": "validating", "output_file_id": None, "error_file_id": None,
                 "created_at": 1_700_000_000, "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                 "metadata": request.get("metadata")}  # fmt: skip
        with self._lock:
            self.batches[batch_id] = batch
            self._ended[batch_id] = ended
            self._polls[batch_id] = end.polls
        return Reply(200, json.dumps(batch).encode())

    def _retrieve(self, batch_id: str) -> Reply:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return Reply.status(404, f"no batch {batch_id}")
            if self._polls[batch_id] > 0:
                self._polls[batch_id] -= 1
                batch["status"] = "in_progress"
            else:
                batch.update(self._ended[batch_id])
            return Reply(200, json.dumps(batch).encode())


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()
