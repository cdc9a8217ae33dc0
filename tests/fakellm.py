"""A scripted OpenAI-compatible HTTP server for tests (stdlib only).

Start it, point a real client (litellm, openai, httpx) at ``server.base_url``, and script what each
``POST /v1/chat/completions`` answers::

    with FakeLLM() as server:
        server.script(Error(429, headers={"Retry-After": "1"}), Reply('{"score": 4}'))
        ...  # litellm.acompletion(model="openai/test-model", api_base=server.base_url, api_key="x", ...)
        assert len(server.chat_requests) == 2

In pytest use the ``fake_llm`` fixture from ``tests/conftest.py`` (started, stopped after the test).

Steps (one is popped per chat-completion request; when the queue runs dry the last step popped is
repeated, or with ``repeat_last=False`` the server answers 500 "fakellm: script exhausted"):

``Reply(content, finish_reason="stop", delay=0, usage=None, prompt_tokens=None, completion_tokens=None, headers=None)``
    A normal ``chat.completion`` object: ``choices[0].message.content = content``, ``model`` echoing the
    request, and a real ``usage`` block: prompt_tokens = ceil(chars of all message contents / 4),
    completion_tokens = ceil(len(content) / 4), total_tokens = their sum. ``prompt_tokens=`` /
    ``completion_tokens=`` override one figure; ``usage=`` a dict replaces the block, ``usage=False`` omits it.
    A plain ``str`` step is shorthand for ``Reply(str)``.
    ``drip=`` (seconds): send the headers at once, then the body one byte every ``drip`` seconds (a
    server that trickles: each read succeeds, so only a total deadline ends the request).
    ``logprobs=``: when the request asks for ``logprobs``, answer with OpenAI's
    ``choices[0].logprobs = {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}``.
    ``True`` tokenises the content (``split_tokens``: runs of letters, single digits or digit groups, spaces,
    punctuation) with every token certain; a list of ``(token, {alternative: probability})`` gives the
    tokens (they must spell the content) and the alternatives at each (the token's own probability is
    its entry, else 1); a callable ``fn(tokens) -> that list`` edits the default tokenisation.
    ``top_logprobs`` in the request caps the alternatives. A request without ``logprobs`` gets ``null``.
``Call(fn, finish_reason="stop", delay=0, ...)``
    ``fn(request_body: dict) -> str`` builds the content from the request (e.g. quote the prompt).
    Otherwise like ``Reply``. A plain callable step is shorthand for ``Call(fn)``.
``Error(status, message=None, type=None, code=None, headers=None, body=None, delay=0)``
    HTTP ``status`` with OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}``;
    message/type/code default sensibly per status (401 invalid_api_key, 404 model_not_found naming the
    requested model, 429 rate_limit_exceeded, ...). ``headers`` e.g. ``{"Retry-After": "2"}``.
    ``body=`` (str, bytes or dict) replaces the JSON body entirely (e.g. an HTML 502 page).
``Drop(delay=0, reset=False)``
    Read the request, then close the socket without answering (``reset=True``: TCP RST instead of FIN).

Every step has ``delay``: seconds to sleep before answering (to trip a client ``timeout=``). Delays are
cut short when the server stops, so a test never waits on them at teardown.

Server-level options (keyword arguments of ``FakeLLM``; also plain attributes you may change later):

``reject_json_schema=False``
    When true, any chat request whose ``response_format.type == "json_schema"`` is answered with an
    error and does *not* consume a step (the next request without json_schema gets the next step).
    The message imitates llama-cpp-python 0.3.x's server, whose pydantic model accepts only ``text``
    and ``json_object`` (see ``JSON_SCHEMA_REJECTION_MESSAGE``). ``reject_json_schema_status``
    (default 400) sets the status; the real llama-cpp-python server answers **500** with
    ``type="internal_server_error"`` (its route error handler turns the validation error into a 500),
    so test both.
``models=("test-model",)``
    What ``GET /v1/models`` lists.
``api_key=None``
    When set, requests without ``Authorization: Bearer <api_key>`` get 401 (no step consumed).
``repeat_last=True``
    See above.

Recording: ``server.requests`` is a snapshot list of every request received (any path), each a
``RecordedRequest(method, path, headers, body, raw, time)`` where ``body`` is the parsed JSON (or
``None``) and ``headers`` a case-insensitive-lookup dict (``req.header("authorization")``).
``server.chat_requests`` keeps only chat-completion POSTs; ``server.clear()`` empties the log.

``stream: true`` requests get a Server-Sent-Events answer (one content chunk, a finish chunk with
usage, ``data: [DONE]``) so streaming clients work too; errors and drops apply as usual.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

import fakebatch

__all__ = [
    "Call",
    "Drop",
    "Error",
    "FakeLLM",
    "JSON_SCHEMA_REJECTION_MESSAGE",
    "RecordedRequest",
    "Reply",
    "Step",
    "approx_tokens",
    "split_tokens",
]

# What llama-cpp-python 0.3.x's server says for response_format.type == "json_schema": FastAPI's
# RequestValidationError text for its `type: Literal["text", "json_object"]` field.
JSON_SCHEMA_REJECTION_MESSAGE = (
    "1 validation error:\n"
    "  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}"
)


# --------------------------------------------------------------------------------------------- steps


@dataclass
class Reply:
    """A normal chat completion whose message content is ``content``."""

    content: str = "ok"
    finish_reason: str = "stop"
    delay: float = 0.0
    usage: dict[str, Any] | bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    headers: dict[str, str] | None = None
    drip: float = 0.0
    logprobs: Any = None


@dataclass
class Call:
    """Like ``Reply`` but the content is ``fn(request_body)``."""

    fn: Callable[[dict[str, Any]], str]
    finish_reason: str = "stop"
    delay: float = 0.0
    usage: dict[str, Any] | bool | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    headers: dict[str, str] | None = None
    drip: float = 0.0
    logprobs: Any = None


@dataclass
class Error:
    """An HTTP error in OpenAI's error shape."""

    status: int
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    headers: dict[str, str] | None = None
    body: str | bytes | dict[str, Any] | None = None
    delay: float = 0.0


@dataclass
class Drop:
    """Close the connection without any response."""

    delay: float = 0.0
    reset: bool = False


Step = Union[Reply, Call, Error, Drop, str, Callable[[dict[str, Any]], str]]

_ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided. You can find your API key in your account settings.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: (
        "The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", "service_unavailable"),
    504: ("Gateway timeout.", "server_error", None),
}


_TOKEN = re.compile(r"\d{1,3}|[^\W\d_]+|\s+|[^\w\s]|_")


def split_tokens(text: str, digits: int = 3) -> list[str]:
    """A rough BPE-like tokenisation: letter runs, digit groups of up to ``digits`` (3 like OpenAI's
    tokenizers, 1 like Llama 2's), whitespace runs, single punctuation characters."""
    pattern = _TOKEN if digits == 3 else re.compile(_TOKEN.pattern.replace("{1,3}", f"{{1,{digits}}}"))
    return pattern.findall(text)


def _logprob_entry(token: str, alternatives: dict[str, float], top: int) -> dict[str, Any]:
    own = alternatives.get(token, 1.0)
    ranked = sorted({token: own, **alternatives}.items(), key=lambda kv: -kv[1])[:top]

    def entry(t: str, p: float) -> dict[str, Any]:
        return {"token": t, "logprob": math.log(p) if p > 0 else -9999.0, "bytes": list(t.encode())}

    return {**entry(token, own), "top_logprobs": [entry(t, p) for t, p in ranked]}


def approx_tokens(text: str) -> int:
    """The fake's token count: ceil(chars / 4)."""
    return math.ceil(len(text) / 4) if text else 0


def _message_text(messages: Any) -> str:
    """All textual content of a chat ``messages`` list (string contents and text parts)."""
    parts: list[str] = []
    if not isinstance(messages, list):
        return ""
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ recording


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""
    time: float = field(default_factory=time.time)

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return default


# ----------------------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256  # the default listen backlog (5) drops SYNs under concurrent clients
    fake: FakeLLM

    def get_request(self):  # track live connections so stop() can unblock their threads
        conn, addr = super().get_request()
        self.fake._track(conn)
        return conn, addr

    def shutdown_request(self, request):
        self.fake._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # a client hanging up is not a test failure
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # idle keep-alive connections do not pin a thread forever
    # Headers and body go out in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers (~40 ms on Linux), which a real provider does not add.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # -- plumbing
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json", drip: float = 0.0) -> None:
        if isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        if not drip:
            self.wfile.write(data)
            self.wfile.flush()
            return
        self.wfile.flush()
        for i in range(len(data)):  # one byte at a time until the client hangs up or the server stops
            if not self.server.fake._sleep(drip):
                return
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                return

    def _record(self, raw: bytes) -> RecordedRequest:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = RecordedRequest(self.command, self.path, dict(self.headers.items()), body, raw)
        self.server.fake._append(rec)
        return rec

    # -- verbs
    def do_GET(self) -> None:
        self._record(b"")
        fake = self.server.fake
        path = self.path.split("?", 1)[0].rstrip("/")
        if fake._authorized(self.headers) and fakebatch.handle(self, "GET", path, b""):
            return
        if not fake._authorized(self.headers):
            self._send(401, fake._error_body(401, None, None, None, model=""))
        elif path == "/v1/models":
            now = int(time.time())
            data = [{"id": m, "object": "model", "created": now, "owned_by": "fakellm"} for m in fake.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, fake._error_body(404, f"Unknown path {self.path}", None, None, model=""))

    def do_POST(self) -> None:
        raw = self._read_body()
        rec = self._record(raw)
        fake = self.server.fake
        path = self.path.split("?", 1)[0].rstrip("/")
        if fake._authorized(self.headers) and fakebatch.handle(self, "POST", path, raw):
            return
        if path != "/v1/chat/completions":
            self._send(404, fake._error_body(404, f"Unknown path {self.path}", None, None, model=""))
            return
        body = rec.body if isinstance(rec.body, dict) else None
        if body is None:
            self._send(400, fake._error_body(400, "Request body is not a JSON object.", None, None, model=""))
            return
        model = str(body.get("model", ""))
        if not fake._authorized(self.headers):
            self._send(401, fake._error_body(401, None, None, None, model=model))
            return
        rf = body.get("response_format")
        if fake.reject_json_schema and isinstance(rf, dict) and rf.get("type") == "json_schema":
            status = fake.reject_json_schema_status
            etype = "internal_server_error" if status >= 500 else "invalid_request_error"
            self._send(status, fake._error_body(status, JSON_SCHEMA_REJECTION_MESSAGE, etype, None, model=model))
            return

        step = fake._next_step()
        if isinstance(step, str):
            step = Reply(step)
        elif not isinstance(step, (Reply, Call, Error, Drop)) and callable(step):
            step = Call(step)

        if step.delay and not fake._sleep(step.delay):
            self._drop(reset=False)  # server stopping: give up quietly
            return

        if isinstance(step, Drop):
            self._drop(reset=step.reset)
        elif isinstance(step, Error):
            if step.body is not None:
                ctype = "application/json" if isinstance(step.body, dict) else "text/plain"
                self._send(step.status, step.body, step.headers, content_type=ctype)
            else:
                payload = fake._error_body(step.status, step.message, step.type, step.code, model=model)
                self._send(step.status, payload, step.headers)
        elif isinstance(step, (Reply, Call)):
            try:
                content = step.content if isinstance(step, Reply) else step.fn(body)
                completion = fake._completion(body, content, step)
            except Exception as exc:  # a broken test callable or logprobs script should surface, not hang
                self._send(500, fake._error_body(500, f"fakellm: step callable raised {exc!r}",
                                                 "server_error", None, model=model))
                return
            if body.get("stream"):
                self._send_stream(completion, step.headers)
            else:
                self._send(200, completion, step.headers, drip=step.drip)
        else:  # pragma: no cover - defensive
            self._send(500, fake._error_body(500, f"fakellm: unknown step {step!r}", None, None, model=model))

    def _drop(self, reset: bool) -> None:
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_stream(self, completion: dict[str, Any], headers: dict[str, str] | None) -> None:
        base = {k: completion[k] for k in ("id", "created", "model")}
        base["object"] = "chat.completion.chunk"
        choice = completion["choices"][0]
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                        "content": choice["message"]["content"]},
                                  "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
        ]
        if "usage" in completion:
            chunks.append({**base, "choices": [], "usage": completion["usage"]})
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        self._send(200, data, headers, content_type="text/event-stream")


class FakeLLM:
    """A scripted OpenAI-compatible server on 127.0.0.1 (random port). See the module docstring."""

    def __init__(
        self,
        *steps: Step,
        reject_json_schema: bool = False,
        reject_json_schema_status: int = 400,
        models: tuple[str, ...] | list[str] = ("test-model",),
        api_key: str | None = None,
        repeat_last: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.reject_json_schema = reject_json_schema
        self.reject_json_schema_status = reject_json_schema_status
        self.models = list(models)
        self.api_key = api_key
        self.repeat_last = repeat_last
        self.host = host
        self._lock = threading.Lock()
        self._steps: deque[Step] = deque(steps)
        self._last: Step | None = None
        self._requests: list[RecordedRequest] = []
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.batch_state = fakebatch.BatchState()  # /v1/files and /v1/batches (tests/fakebatch.py)

    @property
    def batch_creates(self) -> int:
        """How many batches were created over HTTP (a crash test checks none was created twice)."""
        return self.batch_state.creates

    # -- lifecycle
    def start(self) -> FakeLLM:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self.host, 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fakellm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes delayed handlers
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:  # unblock handler threads waiting on keep-alive reads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeLLM is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting
    def script(self, *steps: Step) -> FakeLLM:
        """Replace the queue of steps (and forget the last step popped)."""
        with self._lock:
            self._steps = deque(steps)
            self._last = None
        return self

    def push(self, *steps: Step) -> FakeLLM:
        """Append steps to the queue."""
        with self._lock:
            self._steps.extend(steps)
        return self

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._steps)

    # -- recording
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests
                if r.method == "POST" and r.path.split("?", 1)[0].rstrip("/") == "/v1/chat/completions"]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- internals used by the handler
    def _append(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep; False if the server started stopping meanwhile."""
        return not self._stopping.wait(seconds)

    def _authorized(self, headers: Any) -> bool:
        return self.api_key is None or headers.get("Authorization") == f"Bearer {self.api_key}"

    def _next_step(self) -> Step:
        with self._lock:
            if self._steps:
                self._last = self._steps.popleft()
                return self._last
            if self._last is None:
                return Reply("ok")
            if self.repeat_last:
                return self._last
        return Error(500, "fakellm: script exhausted", "server_error")

    @staticmethod
    def _error_body(status: int, message: str | None, etype: str | None, code: Any, model: str) -> dict:
        d_msg, d_type, d_code = _ERROR_DEFAULTS.get(status, (f"HTTP {status}", "server_error", None))
        msg = message if message is not None else d_msg.replace("{model}", model)
        return {"error": {"message": msg, "type": etype or d_type, "param": None,
                          "code": code if code is not None else d_code}}

    @staticmethod
    def _logprobs(body: dict[str, Any], content: str, spec: Any) -> dict[str, Any] | None:
        """OpenAI's logprobs block for ``content`` (see ``Reply``), or None when not asked for or not scripted."""
        if not body.get("logprobs") or spec is None or spec is False:
            return None
        default = [(t, {}) for t in split_tokens(content)]
        tokens = default if spec is True else spec(default) if callable(spec) else spec
        if "".join(t for t, _ in tokens) != content:
            raise ValueError("fakellm: the scripted logprob tokens do not spell the content")
        top = int(body.get("top_logprobs") or 0)
        return {"content": [_logprob_entry(t, alts, top) for t, alts in tokens], "refusal": None}

    @staticmethod
    def _completion(body: dict[str, Any], content: str, step: Reply | Call) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "system_fingerprint": "fakellm",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": FakeLLM._logprobs(body, content, step.logprobs),
                "finish_reason": step.finish_reason,
            }],
        }
        if step.usage is False:
            return out
        if isinstance(step.usage, dict):
            out["usage"] = step.usage
            return out
        prompt = step.prompt_tokens if step.prompt_tokens is not None else approx_tokens(
            _message_text(body.get("messages")))
        completion = step.completion_tokens if step.completion_tokens is not None else approx_tokens(content)
        out["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                        "total_tokens": prompt + completion}
        return out
