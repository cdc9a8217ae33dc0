"""OpenAI-style `/v1/files` and `/v1/batches` for the scripted test server (mounted by tests/fakellm.py).

    POST /v1/files (multipart: file, purpose)      -> file object; GET /v1/files/{id}/content -> bytes
    POST /v1/batches {input_file_id, endpoint, completion_window, metadata} -> batch (status validating)
    GET  /v1/batches/{id}                          -> the batch; each GET advances it one state:
         validating -> in_progress -> completed (or `final_status`: failed / expired)
    POST /v1/batches/{id}/cancel                   -> cancelling, then cancelled on the next GET
    GET  /v1/batches?limit=&after=                 -> list, newest first, paginated as OpenAI does (20 a
         page by default, at most 100; `after` a batch id; `has_more`)
When a batch completes, each input line is answered by the server's chat script, exactly as a live
`POST /v1/chat/completions` would be (a `Reply` or `Call` goes to the output file, an `Error` to the
error file with its status). `expire_after=n` makes the batch expire after answering n lines (the rest
are listed in the error file as `batch_expired`: a partial failure). `reject_format="json_schema"`
refuses that structured-output mode as a provider does for a model without it: the whole batch
fails validation (`reject_as="batch"`) or every such line gets a 400 in the error file
(`reject_as="requests"`).

`enqueued_token_limit=n` enforces OpenAI's batch queue limit: a batch is validated on its first GET (as
OpenAI validates after the create), and if its prompt tokens (message characters / 4) added to those of
the validated batches not finished yet exceed n, it fails with OpenAI's `token_limit_exceeded` error
(`limit_failures` counts them; `peak_enqueued` is the most tokens ever enqueued at once). `foreign(n)` adds n
finished batches of other users (created after everything so far: a list shows them first).

State lives on the FakeLLM instance (`fake.batches`), so a test process can count what a killed CLI
subprocess created over HTTP: `fake.batch_creates`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any


@dataclass
class BatchState:
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (filename, content)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    creates: int = 0
    final_status: str = "completed"
    expire_after: int | None = None
    steps_to_finish: int = 2  # GETs from validating to the final state
    reject_format: str | None = None
    reject_as: str = "batch"  # or "requests"
    enqueued_token_limit: int | None = None
    limit_failures: int = 0
    peak_enqueued: int = 0
    list_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def foreign(self, n: int) -> None:
        """n finished batches of other users and tools (their metadata is not ours)."""
        with self.lock:
            for i in range(n):
                bid = f"batch_{uuid.uuid4().hex[:20]}"
                self.batches[bid] = {
                    "id": bid, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
                    "input_file_id": "file-foreign", "completion_window": "24h", "status": "completed",
                    "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                    "metadata": {"owner": f"someone-else-{i}"}, "_gets": 0, "_tokens": 0,
                    "request_counts": {"total": 0, "completed": 0, "failed": 0}}

    def enqueued(self) -> int:
        """Prompt tokens of the validated batches not finished yet (what the queue limit counts)."""
        return sum(b.get("_tokens", 0) for b in self.batches.values()
                   if b["status"] in ("in_progress", "finalizing", "cancelling"))


REJECTED = "Invalid parameter: 'response_format' of type '{}' is not supported with this model."
# OpenAI's message, as quoted in openai/openai-python issue 2084 (BatchError code token_limit_exceeded)
OVER_LIMIT = ("Enqueued token limit reached for {model} in organization org-fakellm. Limit: {limit:,} enqueued "
              "tokens. Please try again once some in_progress batches have been completed.")


def _prompt_tokens(line: dict[str, Any]) -> int:
    return sum(len(str(m.get("content") or "")) for m in line["body"].get("messages") or []) // 4


def _mode(body: dict[str, Any]) -> str:
    return str((body.get("response_format") or {}).get("type", "none"))


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        out[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return out


def handle(handler: Any, method: str, path: str, raw: bytes) -> bool:
    """Answer a files/batches request; False when `path` is not one of ours."""
    fake = handler.server.fake
    st: BatchState = fake.batch_state
    parts = path.strip("/").split("/")[1:]  # drop "v1"
    if not parts or parts[0] not in ("files", "batches"):
        return False
    query = dict(p.split("=", 1) for p in handler.path.partition("?")[2].split("&") if "=" in p)
    with st.lock:
        status, payload = _route(fake, st, method, parts, raw, handler.headers.get("Content-Type", ""), query)
    if isinstance(payload, bytes):
        handler._send(status, payload, content_type="application/octet-stream")
    else:
        handler._send(status, payload)
    return True


def _file_obj(fid: str, name: str, size: int, purpose: str) -> dict[str, Any]:
    return {"id": fid, "object": "file", "bytes": size, "created_at": int(time.time()), "filename": name,
            "purpose": purpose, "status": "processed"}


def _route(fake: Any, st: BatchState, method: str, parts: list[str], raw: bytes,
           content_type: str, query: dict[str, str]) -> tuple[int, Any]:
    if parts[0] == "files":
        if method == "POST" and len(parts) == 1:
            form = _multipart(content_type, raw)
            name, content = form.get("file", (None, b""))
            fid = f"file-{uuid.uuid4().hex[:20]}"
            st.files[fid] = (name or "upload.jsonl", content)
            return 200, _file_obj(fid, name or "upload.jsonl", len(content), form.get("purpose", (None, b""))[1].decode())
        if method == "GET" and len(parts) == 3 and parts[2] == "content" and parts[1] in st.files:
            return 200, st.files[parts[1]][1]
        if method == "GET" and len(parts) == 2 and parts[1] in st.files:
            name, content = st.files[parts[1]]
            return 200, _file_obj(parts[1], name, len(content), "batch")
        return 404, {"error": {"message": f"No such file: {'/'.join(parts)}", "type": "invalid_request_error"}}
    if method == "POST" and len(parts) == 1:
        body = json.loads(raw or b"{}")
        if body.get("input_file_id") not in st.files:
            return 400, {"error": {"message": "input_file_id not found", "type": "invalid_request_error"}}
        st.creates += 1
        bid = f"batch_{uuid.uuid4().hex[:20]}"
        lines = [ln for ln in st.files[body["input_file_id"]][1].splitlines() if ln.strip()]
        parsed = [json.loads(ln) for ln in lines]
        tokens = sum(_prompt_tokens(ln) for ln in parsed)
        st.batches[bid] = {
            "id": bid, "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": body.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": int(time.time()), "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "_gets": 0,
            "_tokens": tokens, "_model": parsed[0]["body"].get("model") if parsed else "",
        }
        return 200, _public(st.batches[bid])
    if method == "GET" and len(parts) == 1:
        st.list_calls += 1
        newest = list(reversed(st.batches))
        start = newest.index(query["after"]) + 1 if query.get("after") in st.batches else 0
        size = min(int(query.get("limit") or 20), 100)
        data = [_public(st.batches[b]) for b in newest[start:start + size]]
        return 200, {"object": "list", "data": data, "has_more": start + size < len(newest),
                     "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
    b = st.batches.get(parts[1]) if len(parts) > 1 else None
    if b is None:
        return 404, {"error": {"message": "No such batch", "type": "invalid_request_error"}}
    if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
        if b["status"] in ("validating", "in_progress"):
            b["status"] = "cancelling"
        return 200, _public(b)
    if method == "GET" and len(parts) == 2:
        _advance(fake, st, b)
        return 200, _public(b)
    return 404, {"error": {"message": "Unknown batch path", "type": "invalid_request_error"}}


def _public(b: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in b.items() if not k.startswith("_")}


def _advance(fake: Any, st: BatchState, b: dict[str, Any]) -> None:
    if b["status"] == "cancelling":
        _finish(fake, st, b, "cancelled", answer=0)
        return
    if b["status"] not in ("validating", "in_progress"):
        return
    b["_gets"] += 1
    limit = st.enqueued_token_limit
    if b["status"] == "validating" and limit is not None and st.enqueued() + b["_tokens"] > limit:
        st.limit_failures += 1
        b["status"] = "failed"
        b["errors"] = {"object": "list", "data": [{"code": "token_limit_exceeded", "line": None, "param": None,
                       "message": OVER_LIMIT.format(model=b["_model"], limit=limit)}]}
        return
    if b["_gets"] < st.steps_to_finish:
        b["status"] = "in_progress"
        st.peak_enqueued = max(st.peak_enqueued, st.enqueued())
        return
    refused = st.reject_format is not None and st.reject_as == "batch" and any(
        _mode(json.loads(ln)["body"]) == st.reject_format for ln in st.files[b["input_file_id"]][1].splitlines())
    if st.final_status == "failed" or refused:
        message = REJECTED.format(st.reject_format) if refused else "fakebatch: failed by script"
        b["status"] = "failed"
        b["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": message}]}
        b["request_counts"]["failed"] = b["request_counts"]["total"]
        return
    _finish(fake, st, b, st.final_status, answer=st.expire_after)


def _finish(fake: Any, st: BatchState, b: dict[str, Any], status: str, answer: int | None) -> None:
    from fakellm import Call, Error, Reply

    lines = [json.loads(ln) for ln in st.files[b["input_file_id"]][1].splitlines() if ln.strip()]
    out, err = [], []
    for i, line in enumerate(lines):
        rid = f"batch_req_{uuid.uuid4().hex[:16]}"
        if answer is not None and i >= answer:
            if status != "cancelled":
                err.append({"id": rid, "custom_id": line["custom_id"], "response": None,
                            "error": {"code": "batch_expired", "message": "This request could not be executed before "
                                      "the completion window expired."}})
            continue
        if st.reject_format is not None and st.reject_as == "requests" and _mode(line["body"]) == st.reject_format:
            err.append({"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                "status_code": 400, "request_id": rid, "body": fake._error_body(
                    400, REJECTED.format(st.reject_format), "invalid_request_error", None, model=line["body"]["model"])}})
            continue
        step = fake._next_step()
        step = Reply(step) if isinstance(step, str) else step
        if isinstance(step, (Reply, Call)):
            content = step.content if isinstance(step, Reply) else step.fn(line["body"])
            out.append({"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                "status_code": 200, "request_id": rid, "body": fake._completion(line["body"], content, step)}})
        elif isinstance(step, Error):
            err.append({"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                "status_code": step.status, "request_id": rid,
                "body": fake._error_body(step.status, step.message, step.type, step.code, model=line["body"]["model"])}})
    for kind, rows in (("output_file_id", out), ("error_file_id", err)):
        if rows:
            fid = f"file-{uuid.uuid4().hex[:20]}"
            st.files[fid] = (f"{b['id']}_{kind}.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
            b[kind] = fid
    b["status"] = status
    b["request_counts"].update(completed=len(out), failed=len(err))
