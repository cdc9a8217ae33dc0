"""What a cohort will cost before it runs: tokens counted on the actual prompts and priced by the
judge's transport (the model's tokenizer and price as litellm knows them, or the user's prices).

An unknown price is reported as unknown (None), never as zero. Completion tokens are an estimate
(~180 per dimension: reasoning, score, quotes), said so in the output. The worst case (every repair
made, every reply as long as --max-tokens) is what --max-cost reserves before a judgment starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evaluator.errors import EvaluatorError
from evaluator.pipeline import JudgeOptions, build_judge, cache_key

if TYPE_CHECKING:
    from evaluator.batch.types import CohortRequest, CohortSummary
    from evaluator.judge.transport import ChatTransport
    from evaluator.models import Transcript
    from evaluator.rubrics import Rubric

COMPLETION_TOKENS_PER_DIMENSION = 180
COMPLETION_TOKENS_OVERHEAD = 40


def _transport(options: JudgeOptions) -> ChatTransport:
    """The judge's transport, for its token counts, context size and prices (no call is made)."""
    from evaluator.judge.llm_adapter import LiteLLMAdapter

    return LiteLLMAdapter(options)


def price_known(options: JudgeOptions) -> bool:
    """Whether a cost can be known at all: --max-cost needs one before any call is made."""
    return price(options, 1000, 1000) is not None


def price(options: JudgeOptions, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for this many tokens: explicit --price-in/--price-out, else the model's known price, else None."""
    if not options.model:
        return 0.0
    return _transport(options).price(prompt_tokens, completion_tokens)


REPAIR_MESSAGE_TOKENS = 600  # a repair request: the errors found and what to resend (generous)


def estimate_judgment(transcript: Transcript, rubric: Rubric, options: JudgeOptions,
                      format_mode: str | None = None) -> dict[str, Any]:
    """Prompt tokens counted on the real rendered prompt(s), one call per group of dimensions, rendered
    for the structured-output mode the request goes with (the model's first, or `format_mode`: where a
    provider refused the first); the expected cost and the worst case, which --max-cost reserves: every
    allowed repair is made, every reply is as long as --max-tokens, and each repair re-sends the
    conversation so far (the prompt, the earlier replies and the repair requests). A cost is None when
    the price is unknown."""
    from evaluator.judge.ensemble import wants_ensemble

    if wants_ensemble(options):  # --samples/--jury: every member is a judgment of its own
        return _sum_members(transcript, rubric, options, format_mode)
    if not options.model:
        return {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "worst_case_usd": 0.0,
                "heuristic_prompt_tokens": 0}
    from evaluator.judge.prompt import render
    from evaluator.judge.transport import estimate_message_tokens

    groups = [rubric.dimensions] if rubric.judge_mode == "single" else [[d] for d in rubric.dimensions]
    transport = _transport(options)
    # the prompt as the judge renders it for the mode it will send: without json_schema the system
    # message carries the reply's shape too (~640 characters more; judge/llm.py decides the same way)
    enforced = (format_mode or transport.capabilities.structured_output[0]) == "json_schema"
    context = transport.context_tokens()
    attempts, reply = 1 + options.repair_attempts, options.max_tokens
    prompt = completion = worst_prompt = heuristic = 0
    for dims in groups:
        messages = render(transcript, rubric, dims, context, reserve_tokens=reply, enforced=enforced).messages
        first = transport.count_tokens(messages)
        heuristic += estimate_message_tokens(messages)
        prompt += first
        completion += min(reply, COMPLETION_TOKENS_OVERHEAD + COMPLETION_TOKENS_PER_DIMENSION * len(dims))
        worst_prompt += attempts * first + (reply + REPAIR_MESSAGE_TOKENS) * attempts * (attempts - 1) // 2
    return {"calls": len(groups), "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": transport.price(prompt, completion),
            "worst_case_usd": transport.price(worst_prompt, attempts * reply * len(groups)),
            # the conservative characters-per-token count a batch submission holds to an enqueued-token limit
            "heuristic_prompt_tokens": heuristic}


def _sum_members(transcript: Transcript, rubric: Rubric, options: JudgeOptions,
                 format_mode: str | None = None) -> dict[str, Any]:
    """One estimate per juror (its model's tokenizer and price), times its samples."""
    from evaluator.judge.ensemble import member_options

    total: dict[str, Any] = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
                             "worst_case_usd": 0.0, "heuristic_prompt_tokens": 0}
    per_juror: dict[Any, dict[str, Any]] = {}
    for juror, _, member in member_options(options):
        e = per_juror.get(juror)
        if e is None:
            e = per_juror[juror] = estimate_judgment(transcript, rubric, member, format_mode)
        for k, v in e.items():
            total[k] = None if total[k] is None or v is None else total[k] + v
    return total


def members_per_judgment(options: JudgeOptions) -> int:
    """How many judgments each transcript costs: --samples times the jurors (1 for a plain judge)."""
    from evaluator.judge.ensemble import member_options, wants_ensemble

    return len(member_options(options)) if wants_ensemble(options) else 1


def estimate_cohort(request: CohortRequest, format_mode: str | None = None) -> CohortSummary:
    """Dry run: read every item, skip what the store already has, estimate the rest (`format_mode`:
    the structured-output mode the requests will go with, when not the model's first). No model
    call, no write (the store is opened read-only, and only if it exists)."""
    import time

    from evaluator.batch.inputs import iter_items, key_extra
    from evaluator.batch.types import CohortSummary
    from evaluator.ingest import parse_source, read_source
    from evaluator.rubrics import select_rubric
    from evaluator.store.db import Store, default_db_path
    from evaluator.store.texts import view_of

    started = time.perf_counter()
    info = build_judge(request.judge).info()
    db_path = request.db or default_db_path()
    # Store(), not open_store(): a dry run writes nothing, not even the migration open_store would
    # apply to an older file (a store older than this code simply has no cache hits to report).
    store = Store(db_path, read_only=True) if db_path.exists() and not request.force else None
    summary = CohortSummary(cohort=request.cohort, dry_run=True, judge=info.model_dump(), db=str(db_path))
    est: dict[str, Any] = {"to_judge": 0, "calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
           "worst_case_usd": 0.0,
           "completion_tokens_note": f"estimated at ~{COMPLETION_TOKENS_PER_DIMENSION} tokens per dimension"}
    rubrics: dict[str | None, Any] = {}
    seen: set[str] = set()
    try:
        for item in iter_items(request.path):
            summary.total += 1
            try:
                if item.error:
                    raise EvaluatorError(item.error)
                source = read_source(item.path, item.code)
                source.metadata = {**source.metadata, **item.overrides}
                rkey = None if request.rubric else source.exercise
                if rkey not in rubrics:
                    rubrics[rkey] = select_rubric(request.rubric, source.exercise)
                rubric = rubrics[rkey]
                key = cache_key(source.content_hash, rubric, info, key_extra(item.overrides))
                if key in seen:
                    summary.cached += 1
                    continue
                transcript = parse_source(source)
                if store is not None:  # reused only if made on the text the judge reads now (store/texts.py)
                    hits, refused = store.reusable_ids({key: view_of(transcript)})
                    summary.reread += len(refused)
                    if hits:
                        summary.cached += 1
                        continue
                seen.add(key)
                e = estimate_judgment(transcript, rubric, request.judge, format_mode)
            except EvaluatorError as err:
                summary.failed += 1
                summary.failures.append({"item": item.key, "source": str(item.path), "error": str(err)})
                continue
            est["to_judge"] += 1
            for k in ("calls", "prompt_tokens", "completion_tokens", "heuristic_prompt_tokens"):
                est[k] = est.get(k, 0) + e[k]
            for k in ("cost_usd", "worst_case_usd"):
                est[k] = None if est[k] is None or e[k] is None else est[k] + e[k]
    finally:
        if store is not None:
            store.close()
    for k in ("cost_usd", "worst_case_usd"):  # no float noise (0.07730000000000001) in what users read
        est[k] = None if est[k] is None else round(est[k], 8)
    est["calls_multiplier"] = members_per_judgment(request.judge)  # --samples x jurors
    if est["calls_multiplier"] > 1:  # said where the terminal summary already prints the estimate's note
        est["completion_tokens_note"] += (f"; every figure includes {est['calls_multiplier']} judgments per "
                                          "transcript (--samples x jurors)")
    summary.estimate = est
    summary.status = "estimated"
    if request.max_cost is not None and est["cost_usd"] is not None and est["cost_usd"] > request.max_cost:
        summary.message = (f"the estimate (${est['cost_usd']:.4f}) exceeds --max-cost ${request.max_cost:.4f}: "
                           "the run will leave part of the cohort unjudged")
    elif (request.max_cost is not None and est["worst_case_usd"] is not None
          and est["worst_case_usd"] > request.max_cost):
        summary.message = (f"the estimate fits --max-cost ${request.max_cost:.4f}, but the worst case "
                           f"(${est['worst_case_usd']:.4f}: every repair made, every reply --max-tokens long) "
                           "does not: judgments start only while their worst case fits, so some may be left")
    summary.wall_seconds = round(time.perf_counter() - started, 3)
    return summary
