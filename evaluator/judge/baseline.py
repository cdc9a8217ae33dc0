"""The offline baseline judge: deterministic text signals, no model, no network.

It exists so the evaluator still says something useful (and testable) when no LLM is configured,
and as a yardstick for the LLM judge. Each built-in dimension rewards *substance* rather than
keywords: a concrete invariant that is later asserted, named boundary cases that are handled and
tested, quantified cost reasoning. Every score carries verbatim quotes (a sentence of a turn or a
line of code) so a reader can check why. The pattern tables live in `signals.py`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from evaluator.judge import signals as S
from evaluator.judge.base import JudgeOutput
from evaluator.judge.segment import Piece, View, build_view, quote_of
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

SCORING_REVISION = 1  # bump when the scoring logic (not just the tables) changes
PROMPT_VERSION = f"baseline-v1+{S.TABLES_HASH}.{SCORING_REVISION}"
NOTE = ("Offline baseline judge: deterministic text signals, not an LLM. It counts concrete statements, "
        "code guards, asserts and tests and quotes them; it cannot judge whether the reasoning is right. "
        "Treat its scores as a rough floor/ceiling check, not a verdict.")
IMPORT = re.compile(r"(import|from)\s")  # import lines are never a guard for an edge case


@dataclass
class Verdict:
    """A dimension's internal result on the 1-5 baseline scale, before mapping onto the rubric scale."""

    score: int | None
    rationale: str
    evidence: list[Evidence] = field(default_factory=list)
    status: str = "scored"
    reason: str | None = None


def _evidence(*items: tuple[Piece | None, list[str] | None]) -> list[Evidence]:
    """At most three distinct quotes, in the order given (most telling first); a long sentence is
    clipped around the first match of the named tables."""
    out: list[Evidence] = []
    for piece, tables in items:
        if piece is None:
            continue
        ev = Evidence(quote=quote_of(piece, [S.P[t][0] for t in tables or ()]), source=piece.source)
        # The quote verifier cannot place very short quotes ("try:"), so those are never offered.
        if len(re.sub(r"\W", "", ev.quote)) >= 10 and all(ev.quote != e.quote for e in out):
            out.append(ev)
    return out[:3]


def _clamp(x: int) -> int:
    return max(1, min(5, x))


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3].rstrip() + "..."


# ---------------------------------------------------------------------------------------------
# invariant
# ---------------------------------------------------------------------------------------------

def _is_concrete(text: str) -> bool:
    """A claim is concrete when it states a relation ("<=", "never exceeds", "the same", "cites")
    between named things (a quantity, a field, a structure): "size <= capacity" is, "the invariant
    is that the system behaves correctly" is not."""
    return S.find("relations", text) is not None and S.find("entities", text) is not None


def _own(piece: Piece, view: View) -> str:
    """"own", "prompted" (the interviewer just asked what must hold) or "supplied" (the interviewer
    stated this property first and the candidate repeats it)."""
    before = [i for i in view.interviewer if i.pos < piece.pos]
    terms = S.terms(piece.text)
    for i in before:
        shared = terms & S.terms(i.text)
        if terms and len(shared) >= 0.6 * len(terms) and S.find("cues", i.text) and _is_concrete(i.text):
            return "supplied"
    last_turn = max((i.pos[0] for i in before), default=None)
    asked = any(i.pos[0] == last_turn and S.find("cues", i.text) for i in before)
    return "prompted" if asked else "own"


def score_invariant(view: View) -> Verdict:
    """Concrete must-hold statements (relation + named things), credited more when stated unprompted
    before the first code and when an assert, guard, test or later argument refers back to them."""
    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    concrete = [p for p in S.hits(prose, "cues") if _is_concrete(p.text)]
    checks = S.checks(view.code)
    if not concrete:
        hollow = S.hits(prose, "cues") + S.hits(prose, "inv_hollow")
        if hollow:
            return Verdict(2, f"Mentions invariants/correctness ({len(S.distinct(hollow))}x) but never states "
                              "a concrete property that must hold (no relation between named quantities or fields).",
                           _evidence((hollow[0], None)))
        if checks:
            return Verdict(2, "Code has asserts/guards but no invariant is stated in words.",
                           _evidence((checks[0], None)))
        return Verdict(1, "No statement of what must always hold, and no asserts in code.")
    origin = {id(p): _own(p, view) for p in concrete}
    own = [p for p in concrete if origin[id(p)] == "own"]
    early = [p for p in own if S.before_code(p, view)]
    first = early[0] if early else (own or concrete)[0]
    terms = set().union(*(S.terms(p.text) for p in concrete))
    linked = sorted((c for c in checks if S.terms(c.text) & terms),
                    key=lambda c: (not c.text.startswith("assert"), -len(S.terms(c.text) & terms), c.pos))
    impl = [c for c in linked if c.context != "test"]
    tests = [c for c in linked if c.context == "test"]
    reasoning = [p for p in S.hits(view.candidate, "inv_use") if p.pos > first.pos]
    used = bool(impl or tests or reasoning)
    if all(origin[id(p)] == "supplied" for p in concrete):
        score, how = 2, "only repeats an invariant the interviewer supplied"
    elif not own:
        score, how = 3, "only when the interviewer asked for one"
    else:  # the rubric's 4 needs "before coding and used"; 5 needs use in more than one way
        ways = bool(impl) + bool(tests) + bool(reasoning)
        score = 3 if not (early and ways) else 4 if ways == 1 else 5
        how = "first one before any code" if early else "none before the first code"
    parts = [f"Stated {len(concrete)} concrete invariant(s) (\"{_short(first.text)}\"); {how}"]
    uses = [f"{len(impl)} assert/guard in code" if impl else "", f"{len(tests)} test assert(s)" if tests else "",
            "referred back to it while reasoning" if reasoning else ""]
    parts.append("Used: " + ", ".join(u for u in uses if u) if used else
                 "Not used afterwards: no assert, guard or test refers to it"
                 + (" (asserts exist but check other things)" if checks else ""))
    evidence = _evidence((first, ["cues"]), (impl[0] if impl else None, None), (tests[0] if tests else None, None),
                         (reasoning[0] if reasoning else None, ["inv_use"]))
    return Verdict(score, ". ".join(parts) + ".", evidence)


# ---------------------------------------------------------------------------------------------
# edge_cases
# ---------------------------------------------------------------------------------------------

def score_edge_cases(view: View) -> Verdict:
    """Distinct boundary categories the candidate names (in prose or a test's name), crossed with a
    guard for it in the implementation and a test named after it. A category the interviewer raised
    first only counts if the candidate then acts on it (guard or test)."""
    def first_by_label(pieces: list[Piece], rename: bool = False) -> dict[str, Piece]:
        found: dict[str, Piece] = {}
        for p in pieces:
            for label in S.labels(p.text.replace("_", " ") if rename else p.text):
                found.setdefault(label, p)
        return found

    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    impl = [p for p in view.code if p.kind == "code" and p.context != "test" and not IMPORT.match(p.text)]
    test_defs = [p for p in view.code if p.context == "test" and re.match(r"(async\s+)?def\s+test", p.text)]
    said, tests = first_by_label(prose), first_by_label(test_defs, True)
    mentioned = said.keys() | tests.keys()
    # Hints and guards matter only for categories the candidate mentions: one regex each, first hit wins.
    asked, guards = {}, {}
    for label, prose_rx, code_rx in S.EDGE:
        if label in mentioned:
            hint = next((p for p in view.interviewer if prose_rx.search(p.text)), None)
            guard = next((p for p in impl if code_rx.search(p.text)), None)
            asked.update({label: hint} if hint else {})
            guards.update({label: guard} if guard else {})
    named: dict[str, Piece] = {}
    prompted_only: list[str] = []
    for label, _, _ in S.EDGE:
        mentions = [p for p in (said.get(label), tests.get(label)) if p is not None]
        if not mentions:
            continue
        hint = asked.get(label)
        acted = label in guards or label in tests
        if hint is not None and hint.pos < min(p.pos for p in mentions) and not acted:
            prompted_only.append(label)
        else:
            named[label] = mentions[0]
    handled = {lab: guards[lab] for lab in named if lab in guards}
    tested = {lab: tests[lab] for lab in named if lab in tests}
    if not named:
        after_hint = (f" Only mentioned after the interviewer raised it, with no guard or test: "
                      f"{', '.join(prompted_only)}." if prompted_only else "")
        hollow = S.hits(prose, "edge_hollow")
        if hollow or prompted_only:
            lead = f"Says \"edge cases\" ({len(hollow)}x) but names" if hollow else "Names"
            return Verdict(2, f"{lead} no concrete boundary case unprompted." + after_hint,
                           _evidence((hollow[0] if hollow else None, ["edge_hollow"])))
        return Verdict(1, "Names no boundary case (empty input, zero capacity, missing key, expiry, ...).")
    n, h, t = len(named), len(handled), len(tested)
    score = 1 + (2 if n >= 3 else 1) + (h >= max(1, n // 2)) + (t >= min(2, n))
    untested = [lab for lab in named if lab not in tested]
    unhandled = [lab for lab in named if lab not in handled]
    gaps = ([f"no test for {', '.join(untested[:3])}"] if untested else []) + (
        [f"no guard found for {', '.join(unhandled[:2])}"] if unhandled and h else []) + (
        [f"raised only by the interviewer and not acted on: {', '.join(prompted_only)}"] if prompted_only else [])
    rationale = (f"Named {n} boundary case(s) ({', '.join(named)}); {h} handled in code; {t} covered by a test."
                 + (f" Missing: {'; '.join(gaps)}." if gaps else ""))
    # Quote the sentence that names the most categories, then a guard and a test.
    prose_named = sorted({id(p): p for p in named.values() if p.kind != "code"}.values(),
                         key=lambda p: (-len(S.labels(p.text)), p.pos))
    evidence = _evidence((prose_named[0] if prose_named else None, ["edge_prose"]),
                         (next(iter(handled.values()), None), None), (next(iter(tested.values()), None), None),
                         (prose_named[1] if len(prose_named) > 1 else None, ["edge_prose"]))
    return Verdict(_clamp(score), rationale, evidence)


# ---------------------------------------------------------------------------------------------
# restraint
# ---------------------------------------------------------------------------------------------

def score_restraint(view: View) -> Verdict:
    """Start at 3; credit scoping down out loud and deferring extensions (or building in small steps);
    debit unrequested concurrency/caching/abstraction in the first code, big-design talk and a huge
    first block. Restraint talk contradicted by the first code earns nothing."""
    scope, defer = S.hits(view.candidate, "scope"), S.hits(view.candidate, "defer")
    sizes = view.block_sizes
    iterative = len(sizes) >= 2 and sizes[0] <= S.SMALL_FIRST_BLOCK
    premature, big_talk = S.premature(view), S.big_talk(view)
    opening = [p for p in premature if p[2]]  # in the first code: "opens with a framework"
    big_first = bool(sizes) and sizes[0] > S.LARGE_FIRST_BLOCK
    contradicted = bool(premature or big_first)
    credit = 0 if contradicted else bool(scope) + bool(defer or iterative)
    debit = min(2, len(opening) + bool(len(premature) > len(opening) or big_talk))
    score = 3 + credit - debit - big_first
    if not view.code:
        score = min(score, 3) if credit else 2
    parts = [f"{len(scope)} scope-down and {len(defer)} deferral statement(s)" if scope or defer
             else "No smallest-first or deferral statement"]
    if contradicted and (scope or defer):
        parts[0] += ", contradicted by the code"
    if iterative:
        parts.append(f"built in {len(sizes)} code steps starting with {sizes[0]} lines")
    if opening:
        parts.append("unrequested " + ", ".join(lab for lab, _, _ in opening) + " in the first code")
    if len(premature) > len(opening):
        parts.append("unrequested " + ", ".join(lab for lab, _, first in premature if not first) + " added later")
    if big_talk:
        parts.append(f"proposes a heavyweight design ({len(big_talk)} statement(s))")
    if big_first:
        parts.append(f"first code block is {sizes[0]} lines")
    if not view.code:
        parts.append("no code written, so restraint is not shown in practice")
    elif not premature and not big_first:
        parts.append("no unrequested concurrency/caching/abstraction in the code")
    said = scope + defer
    talk = (said[0] if said else None, ["scope", "defer"])
    machinery = [(premature[0][1] if premature else None, None),
                 (big_talk[0] if big_talk else None, ["prem_prose"])]
    if contradicted:  # lead with what was built, then the talk it contradicts
        evidence = _evidence(*machinery, talk)
    else:
        evidence = _evidence(talk, *machinery, (defer[0] if scope and defer else None, ["defer"]))
    return Verdict(_clamp(score), "; ".join(parts) + ".", evidence)


# ---------------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------------

def _episode(view: View, mistakes: list[Piece], end: int) -> tuple[int, dict]:
    """Score one episode. 4 = names the cause, fixes it and re-checks it; 5 adds noticing it
    themselves or resetting to a smaller case; panic costs a point (2 is the floor once fixed)."""
    first = mistakes[0]
    window = [p for p in view.candidate if first.pos <= p.pos and p.pos[0] <= end]
    later_code = [p for p in view.code if first.pos < p.pos and p.pos[0] <= end]
    new_code = [p for p in later_code if p.kind == "code"]
    body = [p for p in new_code if len(p.text) >= 12 and not p.text.startswith(("def ", "async def ", "class ", "@"))]
    found = {"cause": S.hits(window, "cause"), "reset": S.hits(window, "reset"),
             "fix": S.hits(window, "fix") + (body or new_code)[:1], "verified": S.hits(window + later_code, "verified")}
    panic = []
    for label, rx in S.PANIC_RX:
        hits = [p for p in window if rx.search(p.text)]
        if len(hits) >= (2 if label == "apologising" else 1):
            panic.append((label, hits[0]))
    prev = [i for i in view.interviewer if i.pos < first.pos and i.pos[0] == max(
        (j.pos[0] for j in view.interviewer if j.pos < first.pos), default=-1)]
    self_noticed = first.role == "candidate" and not S.find("hinted", first.text) and not any(
        S.find("probe", i.text) or S.find("mistake_i", i.text) for i in prev)
    fixed, cause, recheck = bool(found["fix"]), bool(found["cause"]), bool(found["verified"] or found["reset"])
    if fixed and cause and recheck:
        score = 5 if self_noticed or found["reset"] else 4
    elif fixed and (cause or recheck):
        score = 3
    else:
        score = 2
    score = max(2 if fixed else 1, score - min(2, len(panic)))
    return score, {**found, "panic": panic, "first": first, "self": self_noticed}


def score_recovery(view: View, dim: Dimension) -> Verdict:
    mistakes = S.mistakes(view)
    if not mistakes:
        text = "No mistake, failing test or interviewer challenge was observed, so recovery could not be judged."
        if dim.allow_not_observed:
            return Verdict(None, text, status="not_observed")
        return Verdict(3, text + " Neutral score.")
    results = [_episode(view, ms, end) for ms, end in S.episodes(view, mistakes)]
    mean = sum(sc for sc, _ in results) / len(results)
    score = math.ceil(mean - 0.5)  # between two levels, take the lower (rubric guidance)
    _, info = results[0]
    labels = [("named the cause", "name the cause", "cause"), ("fixed it", "fix it", "fix"),
              ("re-checked it", "re-check it", "verified"), ("reset to a smaller case", "reset", "reset")]
    done = [past for past, _, k in labels if info[k]]
    missing = [inf for _, inf, k in labels[:3] if not info[k]]
    how = "noticed it themselves" if info["self"] else "after a hint or question"
    text = (f"{len(results)} mistake episode(s); the first ({how}, \"{_short(info['first'].text)}\"): "
            + (", ".join(done) if done else "no fix, explanation or reset followed")
            + (f"; did not {' or '.join(missing)}" if done and missing else "")
            + (f"; panic signals: {', '.join(lab for lab, _ in info['panic'])}" if info["panic"] else "") + ".")
    if len(results) > 1:
        text += f" Episode scores: {', '.join(str(s) for s, _ in results)}."
    support = (info["verified"] or info["reset"] or info["fix"] or [None])[0]
    third = info["panic"][0][1] if info["panic"] else support
    evidence = _evidence((info["first"], ["mistake_c", "mistake_i", "probe"]),
                         (info["cause"][0] if info["cause"] else None, ["cause"]), (third, None), (support, None))
    return Verdict(_clamp(score), text, evidence)


# ---------------------------------------------------------------------------------------------
# cost_awareness
# ---------------------------------------------------------------------------------------------

def score_cost(view: View) -> Verdict:
    """Quantified cost reasoning (big-O, tokens, calls, latency, $, rates) beats topic words; a
    quantified trade-off ("one extra model call instead of ...") tops it. Numbers given only in
    answer to the interviewer's cost question cap the score at 3."""
    prose = S.distinct(view.candidate + [p for p in view.code if p.kind == "comment"])
    kinds_of = {id(p): S.kinds(p.text) for p in prose}
    quantified = [p for p in prose if kinds_of[id(p)]]
    kinds = set().union(*kinds_of.values()) if prose else set()
    asked = S.prompted_turns(view)
    unprompted = [p for p in quantified if p.kind != "prose" or not asked.get(p.pos[0], False)]
    near = {id(p) for i, p in enumerate(prose) for q in prose[max(0, i - 1):i + 2]
            if kinds_of[id(q)] and q.pos[0] == p.pos[0]}
    trade = [p for p in S.hits(prose, "tradeoff") if id(p) in near]
    topic = S.hits(prose, "topic") + S.hits(prose, "tradeoff")
    q = len(quantified)
    if q == 0:
        score = 2 if topic else 1
        rationale = (f"Talks about cost/latency in general terms ({len(topic)} mention(s)) but quantifies nothing "
                     "(no big-O, token, call, latency or $ figures)." if topic else
                     "No reasoning about model calls, tokens, latency or complexity.")
    elif not unprompted:
        score = 3
        rationale = (f"Quantifies cost ({', '.join(sorted(kinds))}) only when the interviewer asks "
                     f"({q} statement(s))" + ("; names a trade-off." if trade else "; no explicit trade-off."))
    else:
        score = 3 + (len(kinds) >= 2 or q >= 3) + bool(trade)
        rationale = (f"{q} quantified statement(s) ({', '.join(sorted(kinds))}), {len(unprompted)} unprompted"
                     + (f"; {len(trade)} quantified trade-off(s)." if trade else "; no quantified trade-off."))
    best = sorted(quantified, key=lambda p: (-len(kinds_of[id(p)]), p.pos))
    evidence = _evidence((best[0] if best else None, None), (trade[0] if trade else None, ["tradeoff"]),
                         (best[1] if len(best) > 1 else None, None),
                         (topic[0] if not best and topic else None, ["topic", "tradeoff"]))
    return Verdict(_clamp(score), rationale, evidence)


# ---------------------------------------------------------------------------------------------
# rubric-supplied signals, and the judge itself
# ---------------------------------------------------------------------------------------------

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


class BaselineJudge:
    """Deterministic, offline judge with the same output schema as the LLM judge."""

    def __init__(self) -> None:
        self._info = JudgeInfo(kind="baseline", model=None, prompt_version=PROMPT_VERSION,
                               params={"builtin_dimensions": sorted(BUILTIN)}, note=NOTE)

    def info(self) -> JudgeInfo:
        return self._info.model_copy(deep=True)

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
