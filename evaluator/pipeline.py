"""The library entry points the CLI calls: choose a judge, judge one transcript, store the result.

`judge_transcript` is the reusable async core (the cohort runner will call it many times at once);
`evaluate_file` is the whole single-transcript job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from evaluator.errors import BadInput, JudgeUnavailable
from evaluator.gate import Threshold, check_against_rubrics
from evaluator.ingest import load_transcript
from evaluator.judge.base import Judge
from evaluator.judge.request import ModelConfig
from evaluator.judge.unanswered import last_error, unanswered
from evaluator.models import DimensionResult, Evidence, Flag, JudgeInfo, Judgment, Transcript, Usage
from evaluator.rubrics import Rubric, select_rubric_with_warnings
from evaluator.safety import detect_injection

if TYPE_CHECKING:
    from evaluator.judge.ratelimit import RateLimiter

STORE_WAIT_SECONDS = 5.0
BASELINE_NOTICE = (
    "No model configured: using the offline baseline judge (deterministic text signals, not an LLM). "
    "Set --model or EVALUATOR_MODEL to judge with a model."
)


@dataclass
class JudgeOptions(ModelConfig):
    """How to judge: the model call's settings (one definition, judge/request.py) plus the repair
    budget. `model=None` selects the offline baseline judge."""

    model: str | None = None  # type: ignore[assignment]
    repair_attempts: int = 2
    samples: int = 1  # judge each transcript this many times and take the median (judge/ensemble.py)
    jury: str | None = None  # MODEL[@API_BASE],MODEL...: several models, combined per dimension
    temperature_set: bool = False  # --temperature was given (else samples > 1 use a default above 0)
    redact: bool | None = None  # None: on for hosted providers, off for local servers (evaluator/redact.py)
    redact_terms: tuple[str, ...] = ()  # company (or other) names to redact as well

    @classmethod
    def from_env(cls, **given) -> JudgeOptions:
        """Explicit options win; EVALUATOR_MODEL / EVALUATOR_API_BASE / EVALUATOR_API_KEY fill the gaps."""
        given = {k: v for k, v in given.items() if v is not None}
        given.setdefault("temperature_set", "temperature" in given)
        given.setdefault("model", os.environ.get("EVALUATOR_MODEL") or None)
        given.setdefault("api_base", os.environ.get("EVALUATOR_API_BASE") or None)
        if "logprobs" not in given and os.environ.get("EVALUATOR_LOGPROBS"):
            try:
                given["logprobs"] = int(os.environ["EVALUATOR_LOGPROBS"])
            except ValueError:
                raise BadInput("EVALUATOR_LOGPROBS must be a whole number, "
                               f"got {os.environ['EVALUATOR_LOGPROBS']!r}") from None
        if "redact_terms" not in given and os.environ.get("EVALUATOR_REDACT_LIST"):
            from evaluator.redact import load_terms

            given["redact_terms"] = load_terms(Path(os.environ["EVALUATOR_REDACT_LIST"]))
        key = given.pop("api_key", None) or os.environ.get("EVALUATOR_API_KEY") or None
        return cls(**given, api_key=SecretStr(key) if key else None)


@dataclass
class EvaluateRequest:
    """What `evaluate FILE` was asked: the transcript, its code, the rubric, the judge and the store."""

    transcript: Path | Transcript  # a file, or a transcript already read (e.g. from standard input)
    code: list[Path] = field(default_factory=list)
    rubric: str | None = None
    judge: JudgeOptions = field(default_factory=JudgeOptions)
    db: Path | None = None
    store: bool = True
    force: bool = False
    thresholds: list[Threshold] = field(default_factory=list)  # --fail-under: checked against the rubric first


@dataclass
class EvaluateResult:
    """One judged (or cached) transcript, with what the command prints about it."""

    judgment: Judgment
    transcript: Transcript
    rubric: Rubric
    cached: bool = False
    judgment_id: str | None = None
    db_path: str | None = None
    wall_seconds: float = 0.0
    notices: list[str] = field(default_factory=list)


def build_judge(options: JudgeOptions, limiter: RateLimiter | None = None) -> Judge:
    """The offline baseline when no model is configured, else the LLM judge (with shared rate limits);
    with --samples above 1 or a --jury, the composite judge over those (judge/ensemble.py)."""
    from evaluator.judge.ensemble import build_ensemble, wants_ensemble

    if wants_ensemble(options):
        return build_ensemble(options, limiter, build_judge)
    if not options.model:
        from evaluator.judge.baseline import BaselineJudge

        return BaselineJudge()
    if options.api_base and not options.api_base.startswith(("http://", "https://")):
        raise BadInput(f"--api-base must be an http(s) URL, got {options.api_base!r}")
    for name, value in (("timeout", options.timeout), ("max-tokens", options.max_tokens)):
        if value <= 0:
            raise BadInput(f"--{name} must be positive, got {value}")
    if options.max_retries < 0 or options.repair_attempts < 0:
        raise BadInput("--retries and --repair-attempts cannot be negative")
    for name, per_token in (("price-in", options.input_cost_per_token), ("price-out", options.output_cost_per_token)):
        if per_token is not None and per_token < 0:
            raise BadInput(f"--{name} cannot be negative, got {per_token * 1e6:g} USD per million tokens")
    if not 0 <= options.logprobs <= 20:
        raise BadInput(f"--logprobs must be between 0 (off) and 20 alternatives per token, got {options.logprobs}")
    if options.context_tokens is not None and options.context_tokens <= 0:
        raise BadInput(f"--context-tokens must be positive, got {options.context_tokens}")
    from evaluator.judge.llm import LLMJudge
    from evaluator.judge.llm_adapter import LiteLLMAdapter
    from evaluator.redact import maybe_redact

    judge = LLMJudge(options, repair_attempts=options.repair_attempts, adapter=LiteLLMAdapter(options, limiter))
    return maybe_redact(judge, options.model, options.api_base, options.redact, options.redact_terms)


def cache_key(content_hash: str, rubric: Rubric, info: JudgeInfo, extra: dict | None = None) -> str:
    """Content hash of everything that changes the result: transcript and code (`content_hash`),
    rubric version, prompt version, judge kind and model, sampling parameters."""
    payload = {
        "transcript": content_hash, "rubric": rubric.version, "prompt": info.prompt_version,
        "judge": info.kind, "model": info.model, "params": info.params,
    }
    if extra:  # e.g. a manifest's candidate override, which changes who is read as the candidate
        payload["extra"] = extra
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def judge_transcript(transcript: Transcript, rubric: Rubric, judge: Judge,
                           key_extra: dict | None = None,
                           reuse: Mapping[str, tuple[str, Judgment]] | None = None) -> Judgment:
    """Run a judge and assemble the Judgment: status, flags (injection, dropped evidence), warnings.
    `key_extra`: what else changed the result (a manifest's candidate override), for the cache key.
    A composite judge (samples, jury) returns the aggregate carrying its members; `reuse` (member
    cache key -> stored id and judgment) is what it need not judge again."""
    from evaluator.judge.ensemble import EnsembleJudge

    if isinstance(judge, EnsembleJudge):
        return await judge.judge_all(transcript, rubric, key_extra, reuse)
    info = judge.info()
    output = await judge.judge(transcript, rubric)
    dropped = _locate_evidence(transcript, output.dimensions)
    if dropped:
        output.flags.append(Flag(kind="evidence_dropped",
                                 detail=f"{dropped} quote(s) not found in the transcript or code were dropped"))
    flags = detect_injection(transcript, rubric.dimension_ids) + output.flags
    if not transcript.speakers_recognised:
        flags.append(Flag(kind="speakers_unrecognised",
                          detail="speakers not told apart (no labels, or no candidate): judged as one block"))
    truncation = output.truncation
    if truncation is not None:
        truncation = {**truncation, "detail": "; ".join(f.detail for f in output.flags if f.kind == "truncated")}
    return Judgment(
        status=Judgment.status_of(output.dimensions),
        transcript_hash=transcript.content_hash,
        source=transcript.source,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        judge=info,
        dimensions=output.dimensions,
        flags=flags,
        warnings=list(transcript.warnings),
        usage=output.usage,
        exchanges=output.exchanges,
        cache_key=cache_key(transcript.content_hash, rubric, info, key_extra),
        reason=output.reason,
        truncation=truncation,
    )


def _locate_evidence(transcript: Transcript, dimensions: list[DimensionResult]) -> int:
    """Every quote, from any judge, is checked against the transcript and code with the same rules;
    the LLM judge has done it already (match set), the baseline's quotes get their place filled in."""
    from evaluator.judge.evidence import EvidenceIndex

    index = None
    dropped = 0
    for d in dimensions:
        unchecked = [e for e in d.evidence if e.match is None]
        if not unchecked:
            continue
        index = index or EvidenceIndex.of(transcript)
        kept = []
        for e in d.evidence:
            found = index.locate(e.quote, prefer=e.source) if e.match is None else e
            if found is None:
                d.dropped_evidence.append(e.quote)
                dropped += 1
            elif found is e:
                kept.append(e)
            else:  # the span is where the verifier found it (looked for first in the judge's source)
                kept.append(Evidence(quote=e.quote, source=found.source, match=found.match, role=found.role,
                                     start=found.start, end=found.end))
        d.evidence = kept
    return dropped


def judgment_from_record(record: dict, info: JudgeInfo) -> Judgment:
    """Rebuild a Judgment from a stored row (cache hit): this run made no calls."""
    return Judgment(
        status=record["status"], transcript_hash=record["transcript_hash"], source=record["source"],
        rubric_id=record["rubric_id"], rubric_version=record["rubric_version"], judge=info,
        dimensions=[
            DimensionResult(
                id=d["id"], status=d["status"], score=d["score"], rationale=d["rationale"],
                evidence=[Evidence(**e) for e in d["evidence"]], dropped_evidence=d["dropped_evidence"],
                reason=d["reason"], distribution=d.get("distribution"), expected_score=d.get("expected_score"),
                distribution_note=d.get("distribution_note"), ensemble=d.get("ensemble"),
            )
            for d in record["dimensions"]
        ],
        flags=[Flag(**f) for f in record["flags"] or []], warnings=record["warnings"] or [],
        usage=Usage(cost_usd=0.0), cache_key=record["cache_key"], reason=record["reason"],
        truncation=record["truncation"], kind=record.get("kind") or "single",
    )


def stored_members(store, judge: Judge, transcript: Transcript, rubric: Rubric,
                   key_extra: dict | None = None) -> tuple[dict[str, tuple[str, Judgment]], int]:
    """The members of a composite judge already stored (cache key -> id and judgment) and made on
    the view the transcript gives now: raising --samples or adding a juror pays only for what is new.
    Also how many stored members were refused for another view (store/texts.py). Empty for a plain judge."""
    from evaluator.judge.ensemble import EnsembleJudge
    from evaluator.store.texts import view_of

    if not isinstance(judge, EnsembleJudge):
        return {}, 0
    view = view_of(transcript)
    infos = dict(zip(judge.member_keys(transcript.content_hash, rubric, key_extra),
                     (member.info() for _, _, member in judge.members), strict=True))
    hits, refused = store.reusable_ids(dict.fromkeys(infos, view))
    found = {key: (jid, judgment_from_record(store.load_judgment(jid), infos[key])) for key, (jid, _) in hits.items()}
    return found, len(refused)


def weigh_jury(store, judge: Judge, rubric: Rubric, transcript: Transcript) -> bool:
    """A jury weighted by its jurors' held-out agreement with the stored human labels, when there
    are enough (judge/weights.py); True when weights were given."""
    from evaluator.judge.ensemble import EnsembleJudge

    if not isinstance(judge, EnsembleJudge) or not judge.jury:
        return False
    from evaluator.judge.weights import apply_label_weights

    apply_label_weights(store, judge, rubric, transcript.content_hash)
    return judge.weights is not None


def unanswered_error(judgment: Judgment, options: JudgeOptions, judgment_id: str | None) -> JudgeUnavailable:
    """A judge whose every request failed on the server's side is unavailable (exit 3), as one that
    cannot be reached: the transcript did not score nothing, the model was never heard from. The
    failed judgment is stored all the same (unscored, with its exchanges: what the server said), as a
    cohort stores its own; it is never reused, so the next run judges afresh."""
    where = f" at {options.api_base}" if options.api_base else ""
    kept = f"; recorded as unscored judgment {judgment_id[:8]} (evaluate show)" if judgment_id else ""
    error = JudgeUnavailable(
        f"model {judgment.judge.model}{where} answered none of the {judgment.usage.calls} request(s) sent: "
        f"every one failed on the server's side (last: {last_error(judgment)}){kept}; run again when "
        "the server is healthy")
    error.requests = judgment.usage.calls
    return error


def evaluate_file(request: EvaluateRequest) -> EvaluateResult:
    """Judge one transcript file end to end and (unless told not to) store the judgment."""
    started = time.perf_counter()
    transcript = (request.transcript if isinstance(request.transcript, Transcript)
                  else load_transcript(request.transcript, request.code))
    rubric, rubric_warnings = select_rubric_with_warnings(request.rubric, transcript.exercise)
    transcript.warnings.extend(rubric_warnings)
    check_against_rubrics(request.thresholds, [rubric])  # a gate that cannot work is refused before any call
    judge = build_judge(request.judge)
    info = judge.info()
    notices = [BASELINE_NOTICE] if info.kind == "baseline" else []
    key = cache_key(transcript.content_hash, rubric, info)
    db_path = None
    reuse: dict[str, tuple[str, Judgment]] = {}
    if request.store:
        from evaluator.store.db import default_db_path, open_store
        from evaluator.store.texts import refused_notice, view_of

        db_path = request.db or default_db_path()
        record, refused = None, 0
        # The store is opened twice, briefly: to look up the cache (and to fail before paying for a
        # call if the file is unusable), then to save. Holding it while the model thinks would lock
        # out a cohort writer or a report server for the whole call.
        with open_store(db_path, wait_seconds=STORE_WAIT_SECONDS) as store:
            if weigh_jury(store, judge, rubric, transcript):  # the weights are part of the judge's identity
                info = judge.info()
                key = cache_key(transcript.content_hash, rubric, info)
            if not request.force:  # reused only if made on the text the judge reads now (store/texts.py)
                hits, refused_keys = store.reusable_ids({key: view_of(transcript)})
                record = store.load_judgment(hits[key][0]) if key in hits else None
                refused = len(refused_keys)
                if record is None:
                    reuse, members_refused = stored_members(store, judge, transcript, rubric)
                    refused += members_refused
        if refused:
            notices.append(refused_notice(refused))
        if record is not None:
            return EvaluateResult(
                judgment=judgment_from_record(record, info), transcript=transcript, rubric=rubric,
                cached=True, judgment_id=record["id"], db_path=str(db_path),
                wall_seconds=time.perf_counter() - started,
                notices=notices + [f"Reused the stored judgment {record['id'][:8]} (same transcript as read now, "
                                   "rubric, prompt, model and parameters); --force to judge again."],
            )
    judgment = asyncio.run(judge_transcript(transcript, rubric, judge, reuse=reuse))
    judgment_id = None
    if db_path is not None:
        with open_store(db_path, wait_seconds=STORE_WAIT_SECONDS) as store:
            run_id = store.start_run(command="evaluate", judge_info=info, rubric=rubric)
            judgment_id = store.save_judgment(run_id, judgment, transcript, rubric)
            store.finish_run(run_id, judgment.status)
    if unanswered(judgment):
        raise unanswered_error(judgment, request.judge, judgment_id)
    return EvaluateResult(
        judgment=judgment, transcript=transcript, rubric=rubric, judgment_id=judgment_id,
        db_path=str(db_path) if db_path else None, wall_seconds=time.perf_counter() - started,
        notices=notices,
    )
