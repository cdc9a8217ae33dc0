"""The offline baseline judge: deterministic text signals, no model, no network.

It exists so the evaluator still says something useful (and testable) when no LLM is configured,
and as a yardstick for the LLM judge. Each built-in dimension rewards *substance* rather than
keywords: a concrete invariant that is later asserted, named boundary cases that are handled and
tested, quantified cost reasoning. Every score carries verbatim quotes (a sentence of a turn or a
line of code) so a reader can check why. The pattern tables live in `tables/`, compiled in `signals.py`.

This module is the judge itself: which scorer reads which dimension (`BUILTIN`, `ALIASES`, and the
rubric's own baseline_signals for the others), the mapping onto the rubric's scale, the flags, and
the version that names its behaviour. Each built-in dimension's scoring policy has its own module
(`invariant.py`, `edge_cases.py`, `restraint.py`, `recovery.py`, `cost.py`) because each is a
separate reading of the round that shares only the signal helpers; they are re-exported here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any

from evaluator.judge import signals as S
from evaluator.judge.base import JudgeOutput
from evaluator.judge.cost import score_cost
from evaluator.judge.edge_cases import score_edge_cases
from evaluator.judge.invariant import score_invariant
from evaluator.judge.recovery import score_recovery
from evaluator.judge.restraint import score_restraint
from evaluator.judge.segment import View, build_view, quote_of
from evaluator.judge.verdict import Verdict
from evaluator.language import english_warning
from evaluator.models import (
    DimensionResult,
    Evidence,
    Flag,
    JudgeInfo,
    Transcript,
    Usage,
)
from evaluator.rubrics import Dimension, Rubric

NOTE = ("Offline baseline judge: deterministic text signals, not an LLM. It counts concrete statements, "
        "code guards, asserts and tests and quotes them; it cannot judge whether the reasoning is right. "
        "Treat its scores as a rough floor/ceiling check, not a verdict.")
__all__ = ["ALIASES", "BUILTIN", "NOTE", "BaselineJudge", "baseline_version", "map_score", "score_cost",
           "score_custom", "score_edge_cases", "score_invariant", "score_recovery", "score_restraint"]


def score_custom(view: View, dim: Dimension) -> Verdict:
    """Dimensions without built-in signals: count distinct candidate statements matching the rubric's
    baseline_signals regexes. A keyword count, and the rationale says so."""
    if not dim.baseline_signals:
        return Verdict(None, "", status="unscored",
                       reason=f"The offline baseline has no built-in signals for '{dim.id}' and the rubric gives "
                              "no baseline_signals for it.")
    patterns = [re.compile(p, re.I | re.M) for p in dim.baseline_signals]
    pieces = view.candidate + [p for p in view.code if p.pos[0] < view.turn_count]
    matched = S.distinct([p for p in pieces if len(p.text) >= 10 and any(rx.search(p.text) for rx in patterns)])
    n = len(matched)
    score = 1 if n == 0 else 2 if n == 1 else 3 if n == 2 else 4 if n <= 4 else 5
    rationale = (f"{n} distinct candidate statement(s) match the rubric's baseline_signals "
                 f"({len(dim.baseline_signals)} pattern(s)); keyword matching only, not a judgement of quality.")
    return Verdict(score, rationale, [Evidence(quote=quote_of(p, patterns), source=p.source) for p in matched[:3]])


BUILTIN: dict[str, Callable[[View, Dimension], Verdict]] = {
    "invariant": lambda v, d: score_invariant(v),
    "edge_cases": lambda v, d: score_edge_cases(v),
    "restraint": lambda v, d: score_restraint(v),
    "recovery": score_recovery,
    "cost_awareness": lambda v, d: score_cost(v),
}
ALIASES = {"invariants": "invariant", "edge_case": "edge_cases", "edgecases": "edge_cases",
           "cost": "cost_awareness", "mistake_recovery": "recovery", "simplicity": "restraint"}


def map_score(score: int, lo: int, hi: int) -> int:
    """Map the internal 1-5 score onto the rubric scale, rounding half up (deterministic)."""
    if (lo, hi) == (1, 5):
        return score
    return int(lo + (score - 1) * (hi - lo) / 4 + 0.5)


@lru_cache(maxsize=1)
def baseline_version() -> str:
    """The signal tables' hash plus a hash of this judge's complete output (scores, statuses,
    rationales, quotes, flags) on a fixed probe set (probes/: a strong round with its code, a middling
    one, a keyword-stuffed one, one where no mistake happened, one without speaker labels; each with
    the probe rubric on a 1-5 and a 0-10 scale).

    A change to the scoring that changes any probe's output changes the version, and so every cache
    key; a refactor or a comment does not, so stored judgments and calibrations stay valid. Nobody
    has to remember to bump a number. Computed on first use (~30 ms) and kept on disk for this exact
    code (judge/memo.py)."""
    from evaluator.judge.memo import remembered

    return remembered("baseline", _probe_version)


def _probe_version() -> str:
    from evaluator.judge import probe

    rubric = probe.rubric()
    wide = rubric.model_copy(update={"scale": rubric.scale.model_copy(update={"min": 0, "max": 10})})
    transcripts = [probe.transcript("strong.md", (probe.code_file("strong_code.txt", "strong.py"),))]
    transcripts += [probe.transcript(name) for name in ("middling.md", "hollow.md", "unprovoked.md", "unlabelled.md")]
    h = hashlib.sha256()
    for transcript in transcripts:
        for r in (rubric, wide):
            out = _finished(BaselineJudge().judge(transcript, r))
            h.update(out.model_dump_json(exclude={"usage"}).encode())
    return f"baseline-v1+{S.TABLES_HASH}.{h.hexdigest()[:8]}"


def _finished(coroutine: Coroutine[Any, Any, JudgeOutput]) -> JudgeOutput:
    """Run a coroutine that never waits (the baseline judge is async only to fit the Judge protocol)
    to its end without an event loop: the version may be asked for inside a running loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the baseline judge awaited something; it must stay synchronous")


class BaselineJudge:
    """Deterministic, offline judge with the same output schema as the LLM judge."""

    def info(self) -> JudgeInfo:
        return JudgeInfo(kind="baseline", model=None, prompt_version=baseline_version(),
                         params={"builtin_dimensions": sorted(BUILTIN)}, note=NOTE)

    async def judge(self, transcript: Transcript, rubric: Rubric) -> JudgeOutput:
        view = build_view(transcript)
        results = []
        for dim in rubric.dimensions:
            scorer = BUILTIN.get(ALIASES.get(dim.id, dim.id))
            verdict = scorer(view, dim) if scorer else score_custom(view, dim)
            results.append(DimensionResult(
                id=dim.id, status=verdict.status,  # type: ignore[arg-type]
                score=None if verdict.score is None else map_score(verdict.score, rubric.scale.min, rubric.scale.max),
                rationale=verdict.rationale, evidence=verdict.evidence, reason=verdict.reason))
        flags = []
        if not transcript.speakers_recognised:
            flags.append(Flag(kind="baseline_assumption",
                              detail="Speakers were not recognised: the baseline read all text as the candidate's."))
        not_english = english_warning(transcript.raw_text)
        if not_english:
            flags.append(Flag(kind="not_english", detail=not_english))
        return JudgeOutput(dimensions=results, usage=Usage(calls=0, prompt_tokens=0, completion_tokens=0,
                                                           cost_usd=0.0, latency_ms=0.0), flags=flags)
