"""A small OpenAI-compatible chat completions server for tests and benchmarks.

It runs in the test process on a real socket, so the HTTP client, its retries and its timeouts are
exercised for real. By default it answers like a well-behaved DeepSeek: it reads the rows of the
{"sheets": [{"roles": …, "columns": […], "rows": [[…]]}]} user message (README, "DeepSeek wire
contract") as {"cells": {header: value}, "roles": {header: hint}} dicts and standardizes them with
`responder` (the offline rules with those hints, unless told otherwise); a column-role request
({"sheet": …, "columns": […], "samples": [[…]]}) is answered by `roles_responder` (the offline
standardizer's roles for those samples). Faults are scripted per request with `fail_next`; `latency` slows every request down.
Other callers (the chatbot) set `reply_with(fn)`: fn(request_body) returns the reply's JSON object
(or a string sent as the content verbatim), and the leads contract is not involved.

    with FakeDeepSeek(latency=0.05) as fake:
        fake.fail_next("429", retry_after=0.2)
        ...  # point DEEPSEEK_BASE_URL at fake.base_url
        assert fake.call_count == 2
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[list[dict]], list[dict]]
RolesResponder = Callable[[dict], dict]
Replier = Callable[[dict], "dict | str"]

FAULT_KINDS = frozenset(
    {
        "429",
        "500",
        "502",
        "503",
        "400",
        "401",
        "402",
        "422",
        "timeout",
        "blank",
        "bad_json",
        "wrong_count",
        "not_object",
        "disconnect",
    }
)

# Bodies as DeepSeek sends them; 502 is an HTML page because that is what a proxy in front returns.
ERROR_BODIES: dict[int, tuple[str, str]] = {
    400: ("Invalid request: messages must not be empty", "invalid_request_error"),
    401: ("Authentication Fails, Your api key is invalid", "authentication_error"),
    402: ("Insufficient Balance", "unknown_error"),
    422: ("Invalid parameters: temperature must be between 0 and 2", "invalid_request_error"),
    429: ("Rate Limit Reached", "rate_limit_error"),
    500: ("Internal server error", "server_error"),
    503: ("Server overloaded, please try again later", "server_error"),
}


def _default_responder(rows: list[dict]) -> list[dict]:
    """The offline rules on the rows as sent, honouring the roles sent with them. Imported late: the
    client this server fakes does not depend on the standardizer, and tests can pass their own."""
    from processing.standardize import standardize_as_sent

    return [standardize_as_sent(row["cells"], row.get("roles") or {}) for row in rows]


def _default_roles_responder(request: dict) -> dict:
    """The offline standardizer's column roles for the request's headers and sample rows."""
    from processing.column_mode import offline_roles_answer

    return offline_roles_answer(request)


def wire_rows(request: dict) -> list[dict]:
    """The rows of a batch request, in order, as {"cells": {header: value}, "roles": {header: hint}}."""
    if "leads" in request:  # the earlier one-object-per-row shape
        return [{"cells": row.get("cells") or {}, "roles": {}} for row in request["leads"]]
    rows = []
    for part in request["sheets"]:
        columns, hints = part["columns"], part.get("roles") or {}
        for values in part["rows"]:
            cells = {
                header: value
                for header, value in zip(columns, values, strict=False)
                if value not in ("", None)
            }
            rows.append({"cells": cells, "roles": hints})
    return rows


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeDeepSeek

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out or hung up leaves a broken pipe behind: expected here, not news.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, so benchmarks see the connection reuse a real server allows.
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, the client's delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/chat/completions", "/v1/chat/completions"):
            self._send_json(404, _error_body("Not Found", "invalid_request_error"))
            return
        fake._enter()
        try:
            self._answer(fake, raw)
        finally:
            fake._leave()

    def _answer(self, fake: FakeDeepSeek, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fake._record(body)
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._send_json(401, _error_body(*ERROR_BODIES[401]))
            return
        fake._sleep(fake.latency)
        kind, retry_after = fake._next_fault()
        if kind is not None and kind.isdigit():
            self._send_error_status(int(kind), retry_after)
            return
        if kind == "timeout":
            fake._sleep(fake.hang_seconds)
            self.close_connection = True
            return
        if kind == "disconnect":
            self.close_connection = True
            return
        if not isinstance(body, dict):
            self._send_json(400, _error_body("Request body is not valid JSON", "invalid_request_error"))
            return
        system, user = _messages(body)
        try:
            if fake.reply is not None:
                reply = fake.reply(body)
                payload = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
            else:
                request = json.loads(user)
                if "samples" in request:
                    payload = json.dumps(fake.roles_responder(request), ensure_ascii=False)
                else:
                    leads = fake.responder(wire_rows(request))
                    if kind == "wrong_count":
                        leads = leads[:-1]
                    payload = json.dumps({"leads": leads}, ensure_ascii=False)
        except Exception as exc:  # report it to the client, as a real server would
            self._send_json(500, _error_body(f"fake responder failed: {exc!r}", "server_error"))
            return
        content = {
            "blank": "\n  ",
            "bad_json": '{"leads": [{"firstName": "Ann"',
            "not_object": "[1,2]",
        }.get(kind or "", payload)
        prompt_tokens = (len(system) + len(user)) // 4
        completion_tokens = len(content) // 4
        self._send_json(
            200,
            {
                "id": f"chatcmpl-fake-{fake.call_count}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _send_error_status(self, status: int, retry_after: float | None) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        if status == 502:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self._send(status, page, "text/html", headers)
        else:
            self._send_json(status, _error_body(*ERROR_BODIES[status]), headers)

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _error_body(message: str, error_type: str) -> dict:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _messages(body: dict) -> tuple[str, str]:
    system = user = ""
    for message in body.get("messages") or []:
        if message.get("role") == "system":
            system = message.get("content") or ""
        elif message.get("role") == "user":
            user = message.get("content") or ""
    return system, user


class FakeDeepSeek:
    """A fake DeepSeek on 127.0.0.1:<random port>. Thread-safe; use as a context manager."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        responder: Responder | None = None,
        roles_responder: RolesResponder | None = None,
        latency: float = 0.0,
        hang_seconds: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.responder: Responder = responder or _default_responder
        self.roles_responder: RolesResponder = roles_responder or _default_roles_responder
        self.reply: Replier | None = None
        self.latency = latency
        # "timeout" faults hang this long, far beyond any test's read timeout; stop() cuts it short.
        self.hang_seconds = hang_seconds
        self.requests: list[dict | None] = []
        self.call_count = 0
        self.in_flight = 0
        self.peak_concurrency = 0
        self._faults: deque[tuple[str, float | None]] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeDeepSeek is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeDeepSeek:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in latency or a "timeout" fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        # Keep-alive handler threads otherwise sit on idle client connections until their timeout.
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeDeepSeek:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reply_with(self, reply: Replier | None) -> None:
        """Answer every request with reply(request_body) instead of standardizing leads (None: back to
        the standardizer). Faults queued with fail_next still apply."""
        self.reply = reply

    def fail_next(self, kind: str, times: int = 1, retry_after: float | None = None) -> None:
        """Queue `times` faults of `kind`; each request consumes one, then normal answers resume."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults.extend([(kind, retry_after)] * times)

    # --- used by the handler threads -------------------------------------------------------------

    def _record(self, body: dict | None) -> None:
        with self._lock:
            self.requests.append(body)
            self.call_count += 1

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _next_fault(self) -> tuple[str | None, float | None]:
        with self._lock:
            return self._faults.popleft() if self._faults else (None, None)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
