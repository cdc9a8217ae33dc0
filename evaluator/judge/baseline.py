"""The offline baseline judge: deterministic text signals, no model, no network.

It exists so the evaluator still says something useful (and testable) when no LLM is configured,
and as a yardstick for the LLM judge. Each built-in dimension rewards *substance* rather than
keywords: a concrete invariant that is later asserted, named boundary cases that are handled and
tested, quantified cost reasoning. Every score carries verbatim quotes (a sentence of a turn or a
line of code) so a reader can check why. The pattern tables live in `signals.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from evaluator.judge.base import JudgeOutput
from evaluator.judge import signals as S
from evaluator.judge.signals import Piece, View, build_view, compile_all, first_hit, quote_of
from evaluator.models import DimensionResult, Evidence, Flag, JudgeInfo, Transcript, Usage
from evaluator.rubrics import Dimension, Rubric

SCORING_REVISION = 1  # bump when the scoring logic (not just the tables) changes
PROMPT_VERSION = f"baseline-v1+{S.TABLES_HASH}.{SCORING_REVISION}"
NOTE = ("Offline baseline judge: deterministic text signals, not an LLM. It counts concrete statements, "
        "code guards, asserts and tests and quotes them; it cannot judge whether the reasoning is right. "
        "Treat its scores as a rough floor/ceiling check, not a verdict.")

P = {name: compile_all(table) for name, table in {
    "cues": S.INVARIANT_CUES, "relations": S.RELATIONS, "entities": S.ENTITIES, "inv_hollow": S.INVARIANT_HOLLOW,
    "inv_use": S.INVARIANT_USE, "edge_hollow": S.EDGE_HOLLOW, "scope": S.RESTRAINT_SCOPE, "defer": S.RESTRAINT_DEFER,
    "prem_prose": S.PREMATURE_PROSE, "mistake_c": S.MISTAKE_CANDIDATE, "mistake_i": S.MISTAKE_INTERVIEWER,
    "probe": S.PROBE_INTERVIEWER, "ack": S.ACKNOWLEDGE, "hypo": S.HYPOTHETICAL, "cause": S.RECOVERY_CAUSE,
    "reset": S.RECOVERY_RESET, "fix": S.RECOVERY_FIX, "verified": S.RECOVERY_VERIFIED,
    "tradeoff": S.COST_TRADEOFF, "topic": S.COST_TOPIC, "cost_prompt": S.COST_PROMPT}.items()}
P["output"] = [re.compile(p, re.MULTILINE) for p in S.MISTAKE_OUTPUT]  # case matters: FAILED, KeyError:
EDGE = [(label, re.compile(prose, re.I), re.compile(code, re.I)) for label, prose, code in S.EDGE_CATEGORIES]
PREMATURE = [(label, re.compile(code, re.I), re.compile(why, re.I)) for label, code, why in S.PREMATURE_CODE]
PANIC = [(label, re.compile(p, re.I)) for label, p in S.PANIC]
QUANT = [(label, re.compile(p, re.I)) for label, p in S.COST_QUANTITIES]
NEGATED = re.compile(r"\b(don'?t|do not|no need|not|without|never|avoid|instead of)\b", re.I)
CHECK_LINE = re.compile(r"^(assert\b|if\b.*:\s*raise\b|raise\b)")
STOP = set("""the and must always never hold holds that this with every should will have has than more less
equal equals invariant exceed exceeds are for from our its into only each all any least most not which when
after before self true false none need want make sure guarantee guaranteed stay stays remain remains""".split())
SYNONYM = {"size": "len", "length": "len", "count": "len", "number": "len"}


@dataclass
class Verdict:
    """A dimension's internal result on the 1-5 baseline scale, before mapping onto the rubric scale."""

    score: int | None
    rationale: str
    evidence: list[Evidence] = field(default_factory=list)
    status: str = "scored"
    reason: str | None = None


def _ev(piece: Piece, patterns: list[re.Pattern[str]] | None = None) -> Evidence:
    return Evidence(quote=quote_of(piece, patterns), source=piece.source)


def _evidence(*items: tuple[Piece | None, list[re.Pattern[str]] | None]) -> list[Evidence]:
    """At most three distinct quotes, in the order given (most telling first)."""
    out: list[Evidence] = []
    for piece, patterns in items:
        if piece is None:
            continue
        ev = _ev(piece, patterns)
        if ev.quote and all(ev.quote != e.quote for e in out):
            out.append(ev)
    return out[:3]


def _distinct(pieces: list[Piece]) -> list[Piece]:
    seen: set[str] = set()
    out = []
    for p in pieces:
        key = re.sub(r"\W+", " ", p.text.lower()).strip()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _hits(pieces: list[Piece], patterns: list[re.Pattern[str]]) -> list[Piece]:
    return _distinct([p for p in pieces if first_hit(patterns, p.text)])


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
    return first_hit(P["relations"], text) is not None and first_hit(P["entities"], text) is not None


def _terms(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower().replace("_", " ").replace(".", " "))
    return {SYNONYM.get(w, w)[:4] for w in words if len(w) >= 3 and w not in STOP}


def _checks(code: list[Piece]) -> list[Piece]:
    """Assert lines and `if ...: raise` guards (an `if` line directly followed by a raise)."""
    out = []
    for prev, cur in zip([None, *code], code):
        if cur.kind != "code":
            continue
        if CHECK_LINE.match(cur.text) and not cur.text.startswith("raise"):
            out.append(cur)
        elif cur.text.startswith("raise") and prev is not None and prev.text.startswith(("if ", "elif ")):
            out.append(prev)
    return out


def _before_code(piece: Piece, view: View) -> bool:
    if piece.kind != "prose":
        return False
    if view.first_code_pos is not None:
        return piece.pos < view.first_code_pos
    # Only attached files: timing is unknown, so credit statements in the first third of the talk.
    return bool(view.code) and piece.pos[0] < max(1, view.turn_count // 3)


def score_invariant(view: View) -> Verdict:
    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    stated = _hits(prose, P["cues"])
    concrete = [p for p in stated if _is_concrete(p.text)]
    checks = _checks(view.code)
    if not concrete:
        hollow = _hits(prose, P["cues"] + P["inv_hollow"])
        if hollow:
            return Verdict(2, f"Mentions invariants/correctness ({len(hollow)}x) but never states a concrete property "
                              "that must hold (no relation, quantity or named field).", _evidence((hollow[0], None)))
        if checks:
            return Verdict(2, "Code has asserts/guards but no invariant is stated in words.",
                           _evidence((checks[0], None)))
        return Verdict(1, "No statement of what must always hold, and no asserts in code.")
    early = [p for p in concrete if _before_code(p, view)]
    first = early[0] if early else concrete[0]
    terms = set().union(*(_terms(p.text) for p in concrete))
    linked = [c for c in checks if _terms(c.text) & terms]
    impl = [c for c in linked if c.context != "test"]
    tests = [c for c in linked if c.context == "test"]
    reasoning = [p for p in _hits(view.candidate, P["inv_use"]) if p.pos > first.pos]
    used = bool(impl or tests or reasoning)
    score = 3 + bool(early) + used
    parts = [f"Stated {len(concrete)} concrete invariant(s) (\"{_short(first.text)}\")"
             + ("; first one before any code" if early else "; none before the first code")]
    uses = [f"{len(impl)} assert/guard in code" if impl else "", f"{len(tests)} test assert" if tests else "",
            "referred back to it while reasoning" if reasoning else ""]
    parts.append("Used: " + ", ".join(u for u in uses if u) if used else
                 "Not used afterwards: no assert, guard or test refers to it" + (" (asserts exist but check other things)" if checks else ""))
    evidence = _evidence((first, P["cues"]), (impl[0] if impl else None, None), (tests[0] if tests else None, None),
                         (reasoning[0] if reasoning else None, P["inv_use"]))
    return Verdict(score, ". ".join(parts) + ".", evidence)


# ---------------------------------------------------------------------------------------------
# edge_cases
# ---------------------------------------------------------------------------------------------

def _first_mention(pieces: list[Piece], rx: re.Pattern[str]) -> Piece | None:
    return next((p for p in pieces if rx.search(p.text)), None)


def score_edge_cases(view: View) -> Verdict:
    """Distinct boundary categories the candidate names (in prose or a test's name), crossed with a
    guard for it in the implementation and a test named after it. A category the interviewer raised
    first only counts if the candidate then acts on it (guard or test)."""
    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    impl = [p for p in view.code if p.kind == "code" and p.context != "test"]
    test_defs = [p for p in view.code if p.context == "test" and re.match(r"(async\s+)?def\s+test", p.text)]
    named: dict[str, Piece] = {}
    handled: dict[str, Piece] = {}
    tested: dict[str, Piece] = {}
    prompted_only: list[str] = []
    for label, prose_re, code_re in EDGE:
        said = _first_mention(prose, prose_re)
        test = next((t for t in test_defs if prose_re.search(t.text.replace("_", " "))), None)
        if said is None and test is None:
            continue
        guard = _first_mention(impl, code_re)
        asked = _first_mention(view.interviewer, prose_re)
        mention = min((p for p in (said, test) if p is not None), key=lambda p: p.pos)
        if asked is not None and asked.pos < mention.pos and guard is None and test is None:
            prompted_only.append(label)
            continue
        named[label] = said or test  # type: ignore[assignment]
        if guard is not None:
            handled[label] = guard
        if test is not None:
            tested[label] = test
    after_hint = (f" Only mentioned after the interviewer raised it, with no guard or test: "
                  f"{', '.join(prompted_only)}." if prompted_only else "")
    if not named:
        hollow = _hits(prose, P["edge_hollow"])
        if hollow or prompted_only:
            said = f"Says \"edge cases\" ({len(hollow)}x) but names" if hollow else "Names"
            return Verdict(2, f"{said} no concrete boundary case unprompted." + after_hint,
                           _evidence((hollow[0] if hollow else None, P["edge_hollow"])))
        return Verdict(1, "Names no boundary case (empty input, zero capacity, missing key, expiry, ...).")
    n, h, t = len(named), len(handled), len(tested)
    score = 1 + (2 if n >= 3 else 1) + (h >= max(1, n // 2)) + (t >= min(2, n))
    untested = [lab for lab in named if lab not in tested]
    unhandled = [lab for lab in named if lab not in handled]
    rationale = (f"Named {n} boundary case(s) ({', '.join(named)}); {h} handled in code; {t} covered by a test."
                 + (f" No test for {', '.join(untested[:3])}." if untested else "")
                 + (f" No guard found for {', '.join(unhandled[:2])}." if unhandled and h else "") + after_hint)
    # Quote the sentence that names the most categories, then a guard and a test.
    prose_named = sorted({id(p): p for p in named.values() if p.kind != "code"}.values(),
                         key=lambda p: (-sum(bool(rx.search(p.text)) for _, rx, _ in EDGE), p.pos))
    evidence = _evidence((prose_named[0] if prose_named else None, None),
                         (next(iter(handled.values()), None), None), (next(iter(tested.values()), None), None),
                         (prose_named[1] if len(prose_named) > 1 else None, None))
    return Verdict(_clamp(score), rationale, evidence)


# ---------------------------------------------------------------------------------------------
# restraint
# ---------------------------------------------------------------------------------------------

def _premature(view: View) -> list[tuple[str, Piece]]:
    """Heavy machinery in the *first* code (or in attached files when the talk has no code), unless
    the interviewer asked for it earlier."""
    if view.first_code_pos is not None:
        early = [p for p in view.code if p.pos[0] == view.first_code_pos[0] and p.kind == "code"]
    else:
        early = [p for p in view.code if p.kind == "code"]
    found = []
    for label, code_re, why_re in PREMATURE:
        line = _first_mention(early, code_re)
        asked = line is not None and any(i.pos < line.pos and why_re.search(i.text) for i in view.interviewer)
        if line is not None and not asked:
            found.append((label, line))
    return found


def _big_talk(view: View) -> list[Piece]:
    """Heavyweight designs proposed in prose, unless negated just before ("we don't need sharding")
    or explicitly deferred ("a plugin system later, if we need it")."""
    out = []
    for p in _hits(view.candidate, P["prem_prose"]):
        m = first_hit(P["prem_prose"], p.text)
        if m and not NEGATED.search(p.text[max(0, m.start() - 25):m.start()]) and not first_hit(P["defer"], p.text):
            out.append(p)
    return out


def score_restraint(view: View) -> Verdict:
    """Start at 3; credit scoping down out loud and deferring extensions (or building in small steps);
    debit unrequested concurrency/caching/abstraction in the first code, big-design talk and a huge
    first block. Restraint talk contradicted by the first code earns nothing."""
    scope, defer = _hits(view.candidate, P["scope"]), _hits(view.candidate, P["defer"])
    sizes = view.block_sizes
    iterative = len(sizes) >= 2 and sizes[0] <= S.SMALL_FIRST_BLOCK
    premature, big_talk = _premature(view), _big_talk(view)
    big_first = bool(sizes) and sizes[0] > S.LARGE_FIRST_BLOCK
    contradicted = bool(premature or big_first)
    credit = 0 if contradicted else bool(scope) + bool(defer or iterative)
    score = 3 + credit - min(2, len(premature) + bool(big_talk)) - big_first
    if not view.code:
        score = min(score, 3) if credit else 2
    parts = [f"{len(scope)} scope-down and {len(defer)} deferral statement(s)" if scope or defer
             else "No smallest-first or deferral statement"]
    if contradicted and (scope or defer):
        parts[0] += ", contradicted by the first code"
    if iterative:
        parts.append(f"built in {len(sizes)} code steps starting with {sizes[0]} lines")
    if premature:
        parts.append("unrequested " + ", ".join(lab for lab, _ in premature) + " in the first code")
    if big_talk:
        parts.append(f"proposes a heavyweight design ({len(big_talk)} statement(s))")
    if big_first:
        parts.append(f"first code block is {sizes[0]} lines")
    if not view.code:
        parts.append("no code written, so restraint is not shown in practice")
    elif not premature and not big_first:
        parts.append("no premature concurrency/caching/abstraction in the first code")
    said = scope + defer
    evidence = _evidence((said[0] if said else None, P["scope"] + P["defer"]),
                         (premature[0][1] if premature else None, None),
                         (big_talk[0] if big_talk else None, P["prem_prose"]),
                         (defer[0] if scope and defer else None, P["defer"]))
    return Verdict(_clamp(score), "; ".join(parts) + ".", evidence)


# ---------------------------------------------------------------------------------------------
# recovery
# ---------------------------------------------------------------------------------------------

def _admits(piece: Piece) -> bool:
    """A candidate admission of a mistake, not a hypothetical ("if the call fails, we retry")."""
    m = first_hit(P["mistake_c"], piece.text)
    return m is not None and not first_hit(P["hypo"], piece.text[: m.start()])


def _mistakes(view: View) -> list[Piece]:
    found = [p for p in view.candidate if _admits(p)]
    found += [p for p in view.candidate + view.interviewer if first_hit(P["output"], p.text)]
    found += [p for p in view.code if p.source.startswith("t") and first_hit(P["output"], p.text)
              and p.pos[0] < view.turn_count]
    found += [p for p in view.interviewer if first_hit(P["mistake_i"], p.text)]
    for probe in (p for p in view.interviewer if first_hit(P["probe"], p.text)):
        reply_turn = min((c.pos[0] for c in view.candidate if c.pos[0] > probe.pos[0]), default=None)
        reply = [c for c in view.candidate if c.pos[0] == reply_turn]
        if any(first_hit(P["ack"], c.text) for c in reply):
            found.append(probe)
    return sorted(found, key=lambda p: p.pos)


def score_recovery(view: View, dim: Dimension) -> Verdict:
    mistakes = _mistakes(view)
    if not mistakes:
        text = "No mistake, failing test or interviewer challenge was observed, so recovery could not be judged."
        if dim.allow_not_observed:
            return Verdict(None, text, status="not_observed")
        return Verdict(3, text + " Neutral score.")
    first = mistakes[0]
    cand_turns = sorted({p.pos[0] for p in view.candidate + view.code if p.pos[0] >= first.pos[0]})
    last_turn = max([m.pos[0] for m in mistakes] + [first.pos[0]])
    later = [t for t in cand_turns if t > last_turn][:3]
    horizon = later[-1] if later else last_turn
    window = [p for p in view.candidate if first.pos <= p.pos and p.pos[0] <= horizon]
    cause = _hits(window, P["cause"])
    reset = _hits(window, P["reset"])
    new_code = [p for p in view.code if first.pos < p.pos and p.pos[0] <= horizon and p.kind == "code"]
    fix = _hits(window, P["fix"])
    verified = _hits(window + [p for p in view.code if first.pos < p.pos], P["verified"])
    panic = []
    for label, rx in PANIC:
        n = sum(1 for p in window if rx.search(p.text))
        if n >= (2 if label == "apologising" else 1):
            panic.append((label, next(p for p in window if rx.search(p.text))))
    fixed = bool(fix or new_code)
    pts = bool(cause) + bool(reset or fixed) + bool(verified)
    score = _clamp(2 + pts - min(1 if fixed else 2, len(panic)))
    parts = [f"{len(mistakes)} mistake signal(s), first: \"{_short(first.text)}\""]
    got = [("named the cause", "name the cause", cause), ("reset to a smaller case", "reset", reset),
           ("fixed it", "fix it", fix or new_code), ("verified the fix", "verify the fix", verified)]
    done = [past for past, _, x in got if x]
    parts.append(("Then " + ", ".join(done)) if done else "No fix, explanation or reset followed")
    if done and len(done) < len(got):
        parts[-1] += "; did not " + " or ".join(inf for _, inf, x in got if not x)
    if panic:
        parts.append("panic signals: " + ", ".join(lab for lab, _ in panic))
    evidence = _evidence((first, None), (cause[0] if cause else None, P["cause"]),
                         (verified[0] if verified else (reset[0] if reset else (fix[0] if fix else None)), None),
                         (panic[0][1] if panic else None, None))
    if panic:  # a panic quote matters more than a third supporting one
        evidence = evidence[:2] + _evidence((panic[0][1], None))
    return Verdict(score, ". ".join(parts) + ".", evidence)


# ---------------------------------------------------------------------------------------------
# cost_awareness
# ---------------------------------------------------------------------------------------------

def _prompted_turns(view: View) -> dict[int, bool]:
    """For each turn position: was the latest interviewer turn before it a question about cost?"""
    asks: dict[int, bool] = {}
    for p in view.interviewer:
        asks[p.pos[0]] = asks.get(p.pos[0], False) or bool(first_hit(P["cost_prompt"], p.text))
    out, last = {}, False
    for n in range(view.turn_count):
        out[n] = last
        last = asks.get(n, last)
    return out


def score_cost(view: View) -> Verdict:
    """Quantified cost reasoning (big-O, tokens, calls, latency, $, rates) beats topic words; a
    quantified trade-off ("one extra model call instead of ...") tops it. Numbers given only in
    answer to the interviewer's cost question cap the score at 3."""
    prose = _distinct(view.candidate + [p for p in view.code if p.kind == "comment"])
    kinds_of = {id(p): {label for label, rx in QUANT if rx.search(p.text)} for p in prose}
    quantified = [p for p in prose if kinds_of[id(p)]]
    kinds = set().union(*kinds_of.values()) if prose else set()
    asked = _prompted_turns(view)
    unprompted = [p for p in quantified if p.kind != "prose" or not asked.get(p.pos[0], False)]
    near = {id(p) for i, p in enumerate(prose) for q in prose[max(0, i - 1):i + 2]
            if kinds_of[id(q)] and q.pos[0] == p.pos[0]}
    trade = [p for p in _hits(prose, P["tradeoff"]) if id(p) in near]
    topic = _hits(prose, P["topic"]) + _hits(prose, P["tradeoff"])
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
    evidence = _evidence((best[0] if best else None, None), (trade[0] if trade else None, P["tradeoff"]),
                         (best[1] if len(best) > 1 else None, None),
                         (topic[0] if not best and topic else None, P["topic"] + P["tradeoff"]))
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
    matched = _hits(view.candidate + [p for p in view.code if p.pos[0] < view.turn_count], patterns)
    n = len(matched)
    score = 1 if n == 0 else 2 if n == 1 else 3 if n == 2 else 4 if n <= 4 else 5
    rationale = (f"{n} distinct candidate statement(s) match the rubric's baseline_signals "
                 f"({len(dim.baseline_signals)} pattern(s)); keyword matching only, not a judgement of quality.")
    return Verdict(score, rationale, _evidence(*((p, patterns) for p in matched[:3])))


BUILTIN: dict[str, Callable[[View, Dimension], Verdict]] = {
    "invariant": lambda v, d: score_invariant(v),
    "edge_cases": lambda v, d: score_edge_cases(v),
    "restraint": lambda v, d: score_restraint(v),
    "recovery": score_recovery,
    "cost_awareness": lambda v, d: score_cost(v),
}
ALIASES = {"invariants": "invariant", "edge_case": "edge_cases", "edgecases": "edge_cases", "cost": "cost_awareness",
           "mistake_recovery": "recovery", "simplicity": "restraint"}


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
                              detail="Speakers were not recognised: the baseline treated all text as the candidate's."))
        return JudgeOutput(dimensions=results, usage=Usage(calls=0, prompt_tokens=0, completion_tokens=0,
                                                           cost_usd=0.0, latency_ms=0.0), flags=flags)
