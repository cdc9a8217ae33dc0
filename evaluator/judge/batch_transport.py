"""Provider batch APIs behind the model-call boundary: the files/batches calls (through litellm, like
every model call) and `BatchTransport`, a `ChatTransport` that answers a judge's first request from a
provider batch's stored reply.

Why a transport and not a second judge: a batch reply must pass through exactly the parse / validate /
evidence-check / repair path a live reply takes (judge/llm.py). So the LLM judge runs unchanged; only
where its first request is answered changes. A request the batch has not answered yet is *deferred*:
the transport hands its body to the run's batch input files (a `RequestSink`) and the judgment of
that transcript is dropped, not stored. Repairs (a follow-up turn after an invalid reply) go to the
live model by default, so one bad batch reply costs one live call instead of another day of waiting;
with `repairs=True` (`--batch-repairs`) a repair turn is deferred like a first request: the next batch
carries the same conversation a live repair sends (the original messages, the model's reply, the
repair message), re-created identically by the next run from the stored reply.

The custom_id of a request is the SHA-256 of its body: rendering is deterministic, so the same
transcript, rubric, prompt and model always map to the same id, and a reply stored under it is found
again by any later run.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from evaluator.errors import BadInput, EvaluatorError
from evaluator.judge.call_errors import format_rejected
from evaluator.judge.litellm_client import load_litellm
from evaluator.judge.transport import CallFailed, CallResult, Capabilities, ChatTransport, estimate_message_tokens

# OpenAI's documented batch limits (https://platform.openai.com/docs/guides/batch): 50,000 requests
# and 200 MB per input file. Other providers are smaller; these bound every split.
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200 * 1024 * 1024
# Providers sell batch processing at half the live price; used when litellm's map has no batch price.
DEFAULT_BATCH_DISCOUNT = 0.5
ENDPOINT = "/v1/chat/completions"
DOWNLOAD_CHUNK = 1 << 20  # bytes read from a result file's HTTP stream at a time
# litellm_metadata of a retrieve: no second download of the output file by litellm's logging (retrieve)
NO_BATCH_COST_LOGGING = {"batch_ignore_default_logging": True}
CLOSE_SECONDS = 5.0  # the longest closing litellm's clients at the end of a run waits
FIND_SKEW_SECONDS = 3600  # finding a lost create: list back to an hour before the row went to `creating`


class AwaitingBatch(EvaluatorError):
    """This transcript's first request is in (or about to go into) a provider batch."""


def provider_of(model: str) -> str:
    """Litellm's provider prefix of a model name ("openai/gpt-4o-mini" -> "openai")."""
    return model.split("/", 1)[0] if "/" in model else "openai"


def request_body(adapter: Any, messages: list[dict[str, Any]], schema: dict[str, Any],
                 top_logprobs: int = 0, sampling: dict[str, float] | None = None) -> dict[str, Any]:
    """The chat-completions body a batch line carries: what the live adapter would send, without the
    client-side settings (timeout, retries, where to send it, the key)."""
    kwargs = adapter.request_kwargs(messages, schema, adapter.format_mode, top_logprobs, sampling)
    for name in ("timeout", "num_retries", "max_retries", "api_base", "api_key"):
        kwargs.pop(name, None)
    model = str(kwargs["model"])
    kwargs["model"] = model.split("/", 1)[1] if "/" in model else model
    return kwargs


def body_json(body: dict[str, Any]) -> str:
    """The one serialisation of a request body: the batch line's and the custom_id's."""
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def custom_id(body: dict[str, Any] | str) -> str:
    """The request's id in a batch: the SHA-256 of its body (found again by any later run)."""
    text = body if isinstance(body, str) else body_json(body)
    return hashlib.sha256(text.encode()).hexdigest()


def format_rejection(text: str) -> bool:
    """Whether a provider's error text names the structured-output mode (the live adapter's test)."""
    return format_rejected(text)


@dataclass
class KnownRequest:
    """What the ledger knows about one custom_id, across every batch it went into."""

    cache_key: str | None = None
    reply: dict[str, Any] | None = None  # the provider's response body (a chat.completion)
    pending_in: str | None = None  # ledger id of an unfinished batch that holds it
    failures: list[str] = field(default_factory=list)  # provider reasons, one per failed attempt


@dataclass
class ItemContext:
    """The transcript a judge call belongs to: set per judgment by the batch runner (and copied into
    the judge's per-dimension tasks with the context), filled in by the transport."""

    key: str | None
    item: str | None
    waits: set[str] = field(default_factory=set)  # ledger ids its requests wait in ("new": this run's)
    refused: str | None = None  # why a request of it was not submitted (--max-cost)


CURRENT_ITEM: contextvars.ContextVar[ItemContext | None] = contextvars.ContextVar("batch_item", default=None)


class RequestSink(Protocol):
    """Where a request no batch holds yet goes (provider_submit.Spool: the batch input files)."""

    def add(self, cid: str, line_body: str, body: dict[str, Any], item: ItemContext | None,
            worst_usd: float, tokens: int = 0) -> str | None:
        """Take the request (`tokens`: its estimated prompt tokens, what an enqueued-token limit
        counts); None when taken, else why not (it is then not submitted)."""
        ...


class BatchTransport:
    """A ChatTransport answering requests from stored batch replies; see the module docstring.
    `retries`: how many times a request the provider failed or expired is sent again in a new batch
    before it is unscored with the provider's reason. `repairs`: repair turns go into the next batch
    too (`--batch-repairs`) instead of to the live model. `exact_costs`: a deferred request's worst
    case is priced from the model's tokenizer (for --max-cost; ~20 ms a request on a loaded machine),
    else from the conservative characters-per-token heuristic (the ledger's figure for reading)."""

    def __init__(self, live: ChatTransport, known: dict[str, KnownRequest], discount: float,
                 sink: RequestSink, retries: int = 1, repairs: bool = False, exact_costs: bool = True) -> None:
        self.live = live
        self.model = live.model
        self.known = known
        self.discount = discount
        self.sink = sink
        self.retries = retries
        self.repairs = repairs
        self.exact_costs = exact_costs

    @property
    def fallbacks(self) -> list[str]:
        return self.live.fallbacks

    @property
    def capabilities(self) -> Capabilities:
        return self.live.capabilities

    def context_tokens(self) -> int:
        return self.live.context_tokens()

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return self.live.count_tokens(messages)

    def price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        live = self.live.price(prompt_tokens, completion_tokens)
        return None if live is None else live * self.discount

    async def complete(self, messages: list[dict[str, Any]], schema: dict[str, Any],
                       top_logprobs: int = 0, sampling: dict[str, float] | None = None) -> CallResult:
        repair = any(m.get("role") == "assistant" for m in messages)
        if repair and not self.repairs:  # a repair turn: live, at once
            return await self.live.complete(messages, schema, top_logprobs, sampling)
        body = request_body(self.live, messages, schema, top_logprobs, sampling)
        line = body_json(body)
        cid = custom_id(line)
        known = self.known.get(cid) or KnownRequest()
        mode = str(body.get("response_format", {}).get("type", "none"))
        if known.reply is not None:
            return self._result(known.reply, mode)
        if known.failures and len(known.failures) > self.retries:
            raise CallFailed(f"the provider's batch failed this request {len(known.failures)} time(s): "
                             f"{known.failures[-1]}", attempts=len(known.failures), latency_ms=0.0,
                             response_format=mode)
        current = CURRENT_ITEM.get()
        if known.pending_in is None:
            tokens = (self.count_tokens(messages) if self.exact_costs
                      else estimate_message_tokens(messages))
            worst = self.price(tokens, int(body.get("max_tokens") or 0)) or 0.0
            refused = self.sink.add(cid, line, body, current, worst, tokens)
            if refused and current is not None:
                current.refused = refused
            self.known[cid] = KnownRequest(cache_key=current.key if current else None,
                                           pending_in=None if refused else "new")
        if current is not None:
            current.waits.add(known.pending_in or "new")
        # CallFailed ends this group's attempt without a repair; the batch runner drops the judgment
        raise CallFailed("awaiting the provider batch", attempts=0, latency_ms=0.0, response_format=mode)

    def _result(self, reply: dict[str, Any], mode: str) -> CallResult:
        choice = (reply.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = reply.get("usage") or {}
        pt, ct = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cost = self.price(pt or 0, ct or 0) if (pt is not None or ct is not None) else None
        return CallResult(text=message.get("content"), prompt_tokens=pt, completion_tokens=ct, cost_usd=cost,
                          latency_ms=0.0, transport_attempts=1, response_format=mode,
                          finish_reason=choice.get("finish_reason"),
                          reasoning=message.get("reasoning_content"))


def batch_discount(model: str, given: float | None) -> float:
    """Batch price as a fraction of the live price: the user's --batch-discount, else litellm's map
    (`input_cost_per_token_batches` / `input_cost_per_token`), else DEFAULT_BATCH_DISCOUNT."""
    if given is not None:
        return given
    costs = load_litellm().model_cost
    info = costs.get(model) or costs.get(model.split("/", 1)[-1]) or {}
    live, batch = info.get("input_cost_per_token"), info.get("input_cost_per_token_batches")
    if live and batch:
        return float(batch) / float(live)
    return DEFAULT_BATCH_DISCOUNT


# Providers whose batch API takes OpenAI's input file (one `POST /v1/chat/completions` per line)
# through litellm's files/batches calls: upload, create, retrieve, list, cancel, download.
OPENAI_SHAPE_PROVIDERS = frozenset({"openai", "azure", "hosted_vllm", "litellm_proxy"})


def check_batch_provider(model: str) -> None:
    """Refuse, before anything is rendered or recorded, a model whose batches litellm cannot create.
    Anthropic: litellm (checked with 1.110.2, the newest release on the package index on 2026-12-05)
    retrieves a Message Batch and downloads its results, but its create_batch, cancel_batch and
    list_batches refuse custom_llm_provider="anthropic" (its Anthropic batch transformation raises
    NotImplementedError for creation; its development branch adds list and cancel, still not create),
    so there is nothing to submit through; tests/test_provider_batch.py pins this, and fails once
    litellm can."""
    provider = provider_of(model)
    if provider in OPENAI_SHAPE_PROVIDERS:
        return
    if provider == "anthropic":
        raise BadInput(f"--batch with {model}: litellm cannot create Anthropic Message Batches (its create_batch, "
                       "cancel_batch and list_batches do not support custom_llm_provider='anthropic'; it can only "
                       "retrieve a batch and its results), and every model call goes through litellm. Judge this "
                       "cohort live (without --batch), or use --batch with an OpenAI model.")
    raise BadInput(f"--batch with {model}: batches are submitted in OpenAI's format through litellm, for the "
                   f"providers {', '.join(sorted(OPENAI_SHAPE_PROVIDERS))} (or an OpenAI-compatible server with "
                   f"--api-base and an openai/ model); '{provider}' is not one of them. Judge this cohort live "
                   "(without --batch).")


class BatchAPI:
    """The provider's files and batches endpoints, through litellm (OpenAI's shape: also any
    OpenAI-compatible server at api_base)."""

    def __init__(self, model: str, api_base: str | None, api_key: str | None, timeout: float) -> None:
        check_batch_provider(model)
        self.ll = load_litellm()
        self.provider = provider_of(model)
        self.common: dict[str, Any] = {"custom_llm_provider": self.provider, "timeout": timeout}
        if api_base:
            self.common["api_base"] = api_base
        if api_key is not None:
            self.common["api_key"] = api_key
        elif api_base and self.provider == "openai":
            self.common["api_key"] = "not-needed"  # never send OPENAI_API_KEY to another host

    async def upload(self, name: str, path: Path) -> str:
        """Upload the input file from disk (an open file: the HTTP client reads it in pieces)."""
        with path.open("rb") as handle:
            f = await self.ll.acreate_file(file=(name, handle), purpose="batch", **self.common)
        return str(f.id)

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        b = await self.ll.acreate_batch(completion_window="24h", endpoint=ENDPOINT, input_file_id=input_file_id,
                                        metadata=metadata, **self.common)
        return _plain(b)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        """The batch's state. Without `batch_ignore_default_logging`, litellm's success logging of a
        retrieve that finds the batch finished downloads its whole output file again, unstreamed,
        and parses every line to price the batch for its own spend logs (litellm_logging.py,
        batches/batch_utils.py handle_completed_batch): a second copy of a file this tool streams
        to disk, 16 MB at 10,000 requests, and the peak memory of a collect grew with it."""
        return _plain(await self.ll.aretrieve_batch(batch_id=batch_id, litellm_metadata=NO_BATCH_COST_LOGGING,
                                                    **self.common))

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return _plain(await self.ll.acancel_batch(batch_id=batch_id, **self.common))

    async def find(self, match: Callable[[dict[str, Any]], bool],
                   since: datetime | None = None) -> dict[str, Any] | None:
        """The batch whose metadata `match` accepts (reconciling a create whose answer was lost). Pages
        through the provider's list (newest first, 100 a page, `after` the last id while `has_more`),
        and stops after a page of batches all created more than an hour before `since` (UTC, naive:
        when the row went to `creating`; the hour absorbs clock skew): older ones are not this create."""
        oldest = None if since is None else since.replace(tzinfo=UTC).timestamp() - FIND_SKEW_SECONDS
        after: str | None = None
        while True:
            page = _plain(await self.ll.alist_batches(limit=100, after=after, **self.common))
            data = [_plain(b) for b in page.get("data") or []]
            for d in data:
                if match(d.get("metadata") or {}):
                    return d
            if not data or not page.get("has_more"):
                return None
            if oldest is not None and all(int(d.get("created_at") or 0) < oldest for d in data):
                return None
            after = str(data[-1]["id"])

    async def content(self, file_id: str) -> AsyncIterator[bytes]:
        """A file's bytes (a batch's output or error file), DOWNLOAD_CHUNK at a time as they arrive:
        a result file is ~1.6 KB a request (16 MB at 10,000), and reading it whole held it twice
        (litellm's response object and its parse). litellm streams the providers it names in
        FILE_CONTENT_STREAMING_PROVIDERS (openai, hosted_vllm, litellm_proxy) and hands the others
        (Azure) the whole body, which then comes in one piece."""
        r = await self.ll.afile_content(file_id=file_id, stream=True, chunk_size=DOWNLOAD_CHUNK, **self.common)
        stream = getattr(r, "stream_iterator", None)
        if stream is None:
            yield bytes(getattr(r, "content", b"") or b"")
            return
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()  # the HTTP connection goes back to the pool however the reading ended


async def close_clients() -> None:
    """Close the HTTP clients litellm made for this event loop's calls, before the loop ends.

    litellm's files and batches calls build a new OpenAI client per call and drop it unclosed; it
    is freed only when the garbage collector gets to it, and its finaliser then schedules the close
    on whatever loop runs at that moment: a later `asyncio.run` of the same process (a test, a
    benchmark, a library user), where closing connections of the finished loop fails with "Event
    loop is closed", printed as a task exception nobody retrieved. So: the cached clients are
    closed, the dropped ones collected now (their closes scheduled on this loop) and waited for."""
    import gc
    import sys

    if "litellm" not in sys.modules:  # no call was made: nothing to close (and no 4 s import)
        return
    from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

    await close_litellm_async_clients()
    gc.collect()
    closing = [t for t in asyncio.all_tasks()
               if not t.done() and getattr(t.get_coro(), "__qualname__", "").endswith(".aclose")]
    if closing:
        await asyncio.wait(closing, timeout=CLOSE_SECONDS)


def _plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    return dict(dump()) if dump else dict(vars(obj))
