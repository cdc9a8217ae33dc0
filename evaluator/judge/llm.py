"""The LLM judge: prompt -> model -> parse/validate/evidence-check -> bounded repair -> results.

A dimension that never validates becomes `unscored` with the reason and the raw replies kept in
the exchanges; there is no default score anywhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

from evaluator.judge.base import JudgeOutput
from evaluator.judge.degenerate import find_loop
from evaluator.judge.distribution import score_distribution
from evaluator.judge.evidence import EvidenceIndex, misplaced_quotes
from evaluator.judge.llm_adapter import LiteLLMAdapter
from evaluator.judge.parse import DimensionParse, validate_dimensions
from evaluator.judge.prompt import (
    example_output,
    output_schema,
    prompt_version,
    render,
    render_brief_repair,
    render_repair,
    render_withheld,
)
from evaluator.judge.repair import (
    REPAIR_POLICY,
    Failure,
    Step,
    deterministic,
    fingerprint,
    next_step,
    reasoning_chars,
    stop_reason,
)
from evaluator.judge.reply_json import extract_json
from evaluator.judge.request import ModelConfig
from evaluator.judge.transport import CallFailed, CallResult, ChatTransport
from evaluator.models import (
    DimensionResult,
    Exchange,
    Flag,
    JudgeInfo,
    Transcript,
    Usage,
)
from evaluator.rubrics import Dimension, Rubric


class LLMJudge:
    """Judge through a chat transport (litellm's by default); one request per transcript unless the
    rubric asks per dimension."""

    def __init__(self, config: ModelConfig, repair_attempts: int = 2, adapter: ChatTransport | None = None):
        self.config = config
        self.repair_attempts = repair_attempts
        self.adapter: ChatTransport = adapter or LiteLLMAdapter(config)

    def _top_logprobs(self) -> int:
        return self.adapter.capabilities.top_logprobs(self.config.logprobs)

    def info(self) -> JudgeInfo:
        params = {**self.config.sampling(), "api_base": self.config.api_base,
                  "context_tokens": self.adapter.context_tokens()}
        if self._top_logprobs():  # the result then carries distributions: a different result
            params["top_logprobs"] = self._top_logprobs()
        caps = self.adapter.capabilities
        # what this model's requests may carry beyond the configured sampling: length bounds in the
        # schema, and the sampling levers a repair sets after a looping or cut-off reply (repair.py)
        params["repair"] = {"policy": REPAIR_POLICY, "string_bounds": caps.string_bounds,
                            "levers": list(caps.sampling_levers)}
        return JudgeInfo(
            kind="llm", model=self.config.model, prompt_version=prompt_version(),
            # everything that changes the result goes into the cache key: sampling, where the model is
            # served (two local servers may serve different weights under one name) and the context
            # size (it decides which turns a long transcript keeps)
            params=params,
        )

    async def judge(self, transcript: Transcript, rubric: Rubric) -> JudgeOutput:
        groups = [rubric.dimensions] if rubric.judge_mode == "single" else [[d] for d in rubric.dimensions]
        index = EvidenceIndex.of(transcript)
        try:
            async with asyncio.TaskGroup() as tg:  # one failing group cancels the others: no orphan calls
                tasks = [tg.create_task(self._judge_group(transcript, rubric, g, index)) for g in groups]
        except ExceptionGroup as eg:  # callers expect the error itself (e.g. JudgeUnavailable)
            raise eg.exceptions[0] from None
        parts = [t.result() for t in tasks]
        out = JudgeOutput(dimensions=[])
        by_id: dict[str, DimensionResult] = {}
        for part in parts:
            for d in part.dimensions:
                by_id[d.id] = d
            out.exchanges += part.exchanges
            out.flags += [f for f in part.flags if f not in out.flags]  # per-dimension groups repeat cuts
            out.truncation = out.truncation or part.truncation
            out.usage = out.usage.add(part.usage)
        out.dimensions = [by_id[d.id] for d in rubric.dimensions]
        for n, ex in enumerate(out.exchanges, 1):
            ex.attempt = n
        if self.adapter.fallbacks:
            out.flags.append(Flag(kind="response_format_fallback", detail="; ".join(self.adapter.fallbacks)))
        reasons = {d.reason for d in out.dimensions if d.status == "unscored"}
        if reasons and len(reasons) == 1 and all(d.status == "unscored" for d in out.dimensions):
            out.reason = reasons.pop()
        return out

    async def _judge_group(
        self, transcript: Transcript, rubric: Rubric, dims: list[Dimension], index: EvidenceIndex
    ) -> JudgeOutput:
        context = self.adapter.context_tokens()
        enforced = self._format_mode() == "json_schema"
        max_tokens = self.config.max_tokens
        bound = reasoning_chars(max_tokens, len(dims))
        rendered = render(transcript, rubric, dims, context, reserve_tokens=max_tokens, enforced=enforced,
                          reasoning_chars=bound)
        schema = self._schema(rubric, dims, bound)
        messages: list[dict[str, Any]] = list(rendered.messages)
        sampling: dict[str, float] = {}  # this request's overrides of the configured sampling
        steps: list[Step] = []  # the brief repairs sent (repair.py's ladder goes on from the last)
        changes: list[str] = []  # what each brief repair changed, for the flag
        sent: list[str] = []  # fingerprints of the requests sent, in order
        stopped: str | None = None
        kind = Failure()
        accepted: dict[str, DimensionParse] = {}
        answered_in: dict[str, CallResult] = {}  # the reply each accepted dimension came from
        last: dict[str, DimensionParse] = {}
        exchanges: list[Exchange] = []
        usage = Usage()
        flags = [Flag(kind="truncated", detail=w) for w in rendered.warnings]
        pending = list(dims)
        failure: str | None = None
        call_failed = False
        for attempt in range(1 + self.repair_attempts):
            request = fingerprint(messages, schema, sampling)
            if request in sent and deterministic(self.config.temperature, self.config.seed, sampling):
                stopped = stop_reason(sent.index(request) + 1, kind, self.adapter.capabilities.sampling_levers,
                                      max_tokens)
                break
            sent.append(request)
            try:
                result = await self.adapter.complete(messages, schema, top_logprobs=self._top_logprobs(),
                                                     sampling=sampling or None)
            except CallFailed as e:
                exchanges.append(Exchange(
                    attempt=attempt + 1, purpose="initial" if attempt == 0 else "repair",
                    dimensions=[d.id for d in pending], response_format=e.response_format,
                    request_messages=list(messages), error=str(e), latency_ms=e.latency_ms,
                    transport_attempts=e.attempts,
                ))
                # errors are not billed
                usage = usage.add(Usage(calls=e.attempts, cost_usd=0.0, latency_ms=e.latency_ms))
                failure = f"model call failed: {e}"
                call_failed = True
                break
            obj, parse_error = extract_json(result.text)
            errors: list[str] = []
            misplaced: list[str] = []
            if parse_error:
                errors.append(f"{parse_error} ({result.error})" if result.error else parse_error)
            else:
                assert obj is not None  # no parse error: an object was read
                parsed = validate_dimensions(obj, rubric, pending, index)
                for dim_id, dp in parsed.items():
                    last[dim_id] = dp
                    if dp.error is None:
                        accepted[dim_id] = dp
                        answered_in[dim_id] = result
                    else:
                        errors.append(dp.error)
                misplaced = misplaced_quotes({k: p for k, p in parsed.items() if p.error}, rendered.prompt_parts)
            left = [d for d in dims if d.id not in accepted]
            kind = Failure(cut_off=result.finish_reason == "length", loop=find_loop(result.text) if left else None)
            if left and kind.cut_off:
                errors.append(f"the reply was cut off at the {max_tokens}-token limit "
                              "(finish_reason=length): answer more briefly, or raise --max-tokens")
            if left and kind.loop is not None:
                errors.append(kind.loop.describe())
            exchanges.append(Exchange(
                attempt=attempt + 1, purpose="initial" if attempt == 0 else "repair",
                dimensions=[d.id for d in pending], response_format=result.response_format,
                request_messages=list(messages), raw_response=result.text, reasoning=result.reasoning,
                error=result.error, parsed=obj, errors=errors,
                prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                cost_usd=result.cost_usd, latency_ms=result.latency_ms,
                transport_attempts=result.transport_attempts,
            ))
            usage = usage.add(Usage(
                calls=result.transport_attempts, prompt_tokens=result.prompt_tokens or 0,
                completion_tokens=result.completion_tokens or 0, cost_usd=result.cost_usd,
                latency_ms=result.latency_ms,
            ))
            pending = left
            if not pending:
                break
            failure = "; ".join(errors)
            if attempt == self.repair_attempts:
                break
            step = next_step(kind, steps, bound, self.config.temperature, self.adapter.capabilities.sampling_levers)
            sampling = step.sampling
            # the schema of what is asked again: a server that enforces it must not spend the reply's
            # tokens on dimensions already accepted (their answers would be ignored)
            schema = self._schema(rubric, pending, step.reasoning_chars)
            if step.brief:
                # the failed reply is left out (the model is not shown its loop to continue) and the
                # first messages stay byte-identical, so a server's prompt cache re-reads only the tail
                steps.append(step)
                changes.append(f"repair {attempt + 1} ({', '.join(d.id for d in pending)}): {step.describe()}")
                why = kind.why(max_tokens)
                messages = list(rendered.messages) + [
                    {"role": "assistant", "content": render_withheld(why)},
                    # no example of the shape: the reply ran too long, its shape was not the problem, and
                    # a small model copies an example's placeholders ("<verbatim quote>") as its answer
                    {"role": "user", "content": render_brief_repair(why, pending, rendered.tag, step.reasoning_chars)},
                ]
                continue
            # append, never re-render: the earlier messages stay byte-identical, so a local server's
            # prompt cache (llama.cpp `cache_prompt`) reads only the new tail of a repair request
            messages = messages + [
                {"role": "assistant", "content": result.text or ""},
                {"role": "user", "content": render_repair(
                    errors, pending, rendered.tag, misplaced,
                    # the first message left the shape to the schema; a server may have stepped down from
                    # json_schema during the call, or taken it without enforcing it (some OpenAI-compatible
                    # servers ignore it): the repair (appended; the prefix stays the same) shows the shape
                    example=example_output(rubric, pending) if enforced else "")},
            ]
        results: list[DimensionResult] = []
        dropped_total = 0
        for d in dims:
            kept = accepted.get(d.id)
            if kept is None:
                prev = last.get(d.id)
                dropped_total += len(prev.dropped) if prev else 0
                results.append(DimensionResult(
                    id=d.id, status="unscored",
                    reason=_unscored_reason(
                        (failure if call_failed or not (prev and prev.error) else prev.error) or "no valid answer",
                        None if call_failed else kind, stopped, max_tokens),
                    rationale=prev.reasoning if prev else "",
                    dropped_evidence=prev.dropped if prev else [],
                ))
                continue
            dropped_total += len(kept.dropped)
            results.append(DimensionResult(
                id=d.id,
                status="not_observed" if kept.score == "not_observed" else "scored",
                score=None if kept.score == "not_observed" else int(kept.score),  # type: ignore[arg-type]
                rationale=kept.reasoning, evidence=kept.evidence, dropped_evidence=kept.dropped,
                **self._distribution(answered_in[d.id], d, rubric),
            ))
        if dropped_total:
            flags.append(Flag(kind="evidence_dropped",
                              detail=f"{dropped_total} quote(s) not found in the transcript or code were dropped"))
        if len(exchanges) > 1 and any(e.purpose == "repair" for e in exchanges):
            asked = dict.fromkeys(dim for e in exchanges if e.purpose == "repair" for dim in e.dimensions)
            flags.append(Flag(kind="repaired", detail=f"{len(exchanges) - 1} repair request(s) for {', '.join(asked)}"))
        if changes:
            flags.append(Flag(kind="repair_changed", detail="; ".join(changes)))
        if stopped:
            flags.append(Flag(kind="repair_stopped", detail=stopped))
        return JudgeOutput(dimensions=results, exchanges=exchanges, usage=usage, flags=flags,
                           truncation=rendered.truncation)

    def _schema(self, rubric: Rubric, dims: list[Dimension], chars: int) -> dict[str, Any]:
        """The output schema sent: with length bounds where the server's json_schema mode enforces them."""
        return output_schema(rubric, dims, chars if self.adapter.capabilities.string_bounds else None)

    def _format_mode(self) -> str:
        """The structured-output mode the next request goes with: the transport's current one where it
        tracks it (after a step-down), else the first its capabilities allow."""
        mode = getattr(self.adapter, "format_mode", None)
        return mode if isinstance(mode, str) else self.adapter.capabilities.structured_output[0]

    def _distribution(self, result: CallResult, dim: Dimension, rubric: Rubric) -> dict[str, Any]:
        """The score distribution fields of one answered dimension (none unless --logprobs was asked)."""
        if self.config.logprobs <= 0:
            return {}
        top = self._top_logprobs()
        if not top:
            return {"distribution_note": f"{self.config.model} does not return log-probabilities (its capabilities)"}
        dist = score_distribution(result.text, result.logprobs, dim.id, rubric.scale.levels, top)
        return {"distribution": dist.probs, "expected_score": dist.expected, "distribution_note": dist.note}


def _unscored_reason(base: str, kind: Failure | None, stopped: str | None, max_tokens: int) -> str:
    """Why a dimension ended unscored: the last problem with it, then what ran away in the last reply
    (cut off, looping: the user's lever is --max-tokens or another model), then why no further repair
    was sent, if one was withheld."""
    reason = base
    if kind is not None and kind.cut_off:
        reason += f" (the last reply was cut off at the {max_tokens}-token limit: raise --max-tokens)"
    if kind is not None and kind.loop is not None and kind.loop.describe() not in base:
        reason += f" ({kind.loop.describe()})"
    return f"{reason}; {stopped}" if stopped else reason
