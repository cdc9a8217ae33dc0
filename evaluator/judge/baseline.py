"""The offline baseline judge: deterministic text signals, no model, no network.

It exists so the evaluator still says something useful (and testable) when no LLM is configured,
and as a yardstick for the LLM judge. Each built-in dimension rewards *substance* rather than
keywords: a concrete invariant that is later asserted, named boundary cases that are handled and
tested, quantified cost reasoning. Every score carries verbatim quotes (a sentence of a turn or a
line of code) so a reader can check why. The pattern tables live in `signals.py`.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evaluator.judge import signals as S
from evaluator.judge.base import JudgeOutput
from evaluator.judge.recovery import concedes, score_recovery
from evaluator.judge.segment import Piece, View, build_view, quote_of
from evaluator.judge.verdict import Verdict
from evaluator.judge.verdict import clamp as _clamp
from evaluator.judge.verdict import evidence as _evidence
from evaluator.judge.verdict import short as _short
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
IMPORT = re.compile(r"(import|from)\s")  # import lines are never a guard for an edge case


# ---------------------------------------------------------------------------------------------
# invariant
# ---------------------------------------------------------------------------------------------

def _is_concrete(text: str, names: frozenset[str] = frozenset()) -> bool:
    """A claim is concrete when it states a relation ("<=", "never exceeds", "the same", "cites")
    between named things (a quantity, a field, a structure): "size <= capacity" is, "the invariant
    is that the system behaves correctly" is not. A claim that ties together two things the candidate's
    code names ("`out[i]` is always the vector of `texts[i]`") is concrete whatever verb relates them."""
    if S.find("relations", text) is not None and S.find("entities", text) is not None:
        return True
    return S.find("universal", text) is not None and len(S.names(text) & names) >= 2


def _own(piece: Piece, view: View) -> str:
    """"own", "prompted" (the interviewer's last turn asked what the code guarantees) or "supplied" (the
    interviewer stated this property first and the candidate repeats it). A requirement in the task
    ("never more than 4 in flight") is not a question: a guarantee the candidate derives from it is theirs."""
    before = [i for i in view.interviewer if i.pos < piece.pos]
    terms = S.terms(piece.text)
    for i in before:
        shared = terms & S.terms(i.text)
        if terms and len(shared) >= 0.6 * len(terms) and S.find("cues", i.text) and _is_concrete(i.text):
            return "supplied"
    last_turn = max((i.pos[0] for i in before), default=None)
    last = [i for i in before if i.pos[0] == last_turn]
    asked = any(i.text.rstrip().endswith("?") and S.find("inv_prompt", i.text) for i in last)
    return "prompted" if asked else "own"


def _asked_turns(view: View) -> dict[int, str]:
    """The candidate's turns that answer the interviewer's question about what the code guarantees (the
    interviewer's turn right before asks it), as `_own` reads "prompted", with the question."""
    asks = {i.pos[0]: i.text for i in view.interviewer
            if i.text.rstrip().endswith("?") and S.find("inv_prompt", i.text)}
    turns = sorted({p.pos[0] for p in view.candidate} | {i.pos[0] for i in view.interviewer})
    return {t: asks[prev] for prev, t in itertools.pairwise(turns) if prev in asks}


def _precedes_code(statement: Piece, view: View) -> bool:
    """A guarantee stated right before the candidate writes (or rewrites) the implementation it governs:
    the next implementation line follows in the same turn or the candidate's next one, with no
    interviewer turn between. "Before coding" a second version counts as much as before the first."""
    nxt = next((c for c in view.code if c.pos > statement.pos and c.kind == "code" and c.context == "impl"), None)
    if nxt is None or statement.kind != "prose" or nxt.pos[0] >= view.turn_count:
        return False
    return not any(statement.pos < i.pos < nxt.pos for i in view.interviewer)


def _test_bodies(view: View) -> list[tuple[Piece, list[Piece]]]:
    """Each test function's `def` line with the lines of its body (up to the next test in the block)."""
    out = []
    for t in (p for p in view.code if p.context == "test" and S.TEST_DEF.match(p.text)):
        block = [p for p in view.code if p.context == "test" and p.pos[0] == t.pos[0] and p.pos > t.pos]
        out.append((t, list(itertools.takewhile(lambda p: not S.TEST_DEF.match(p.text), block))))
    return out


def _property_tests(view: View) -> list[Piece]:
    """Tests that check a property over many inputs (a loop over random or generated cases, `@given`,
    an `all(...)` over the output): these test a guarantee, not one example."""
    return [t for t, body in _test_bodies(view)
            if any(p.pos == (t.pos[0], t.pos[1] - 1) and p.text.startswith("@given") for p in view.code)
            or any(S.find("property_test", p.text) for p in body)]


def _designed(statement: Piece, view: View) -> Piece | None:
    """The sentence (one of the next two in the same turn) that draws a design consequence from a
    stated guarantee: "...at most once in any 10 s. That means I need the time each id was emitted"."""
    at = next((k for k, p in enumerate(view.candidate) if p is statement), None)
    if at is None:
        return None
    return next((p for p in view.candidate[at + 1:at + 3]
                 if p.pos[0] == statement.pos[0] and S.find("inv_design", p.text)), None)


def _refers_back(statements: list[Piece], view: View) -> list[Piece]:
    """Later sentences that use a stated guarantee: the explicit wording ("that breaks the contract",
    "the audit caught it"), or, after the first code, a sentence that reasons with the same terms and a
    relation ("so the 'from hi onward is >= target' side claims index 1")."""
    first = statements[0]
    stated = [S.terms(s.text) for s in statements]
    out = []
    for p in view.candidate:
        if p.pos <= first.pos or any(p is s for s in statements):
            continue
        explicit = S.find("inv_use", p.text) is not None
        reasons = (view.first_code_pos is not None and p.pos > view.first_code_pos
                   and S.find("relations", p.text) is not None and any(len(S.terms(p.text) & t) >= 2 for t in stated))
        if explicit or reasons:
            out.append(p)
    return S.distinct(out)


def score_invariant(view: View) -> Verdict:
    """Concrete guarantees (a relation between named things, universally quantified: "must", "never",
    "after each call", "every exit path", "a postcondition"), credited more when stated unprompted
    before the first code and when the design, an assert, a test or later reasoning uses them."""
    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    # a claim is universally quantified ("must", "never", "after each call", "for every i"), or answers the
    # interviewer's question about what always holds ("What does the stack hold at any point?")
    asked = _asked_turns(view)
    claims = [p for p in prose if (S.find("cues", p.text) or S.find("quantified", p.text)
                                   or (p.kind == "prose" and p.pos[0] in asked))
              and not S.find("self_claim", p.text)]
    names = frozenset(n for n in view.identifiers if len(n) >= 3)
    # an answer names its subject through the question ("What does the stack hold?" -> "Exactly the ...")
    concrete = S.distinct([p for p in claims if _is_concrete(p.text, names) or (
        p.pos[0] in asked and p.kind == "prose" and _is_concrete(f"{asked[p.pos[0]]} {p.text}", names))])
    checks = S.checks(view.code)
    if not concrete:  # a vague answer to "what does it guarantee?" is the anchors' 1 ("cannot say ... when asked")
        hollow = S.distinct([p for p in claims if S.find("cues", p.text) or S.find("quantified", p.text)])
        hollow += S.hits(prose, "inv_hollow")
        if hollow:
            return Verdict(2, f"Mentions invariants/correctness ({len(S.distinct(hollow))}x) but never states "
                              "a concrete property that must hold (no relation between named quantities or fields).",
                           _evidence((hollow[0], None)))
        in_impl = [c for c in checks if c.context != "test"]
        if in_impl:
            return Verdict(2, "The implementation asserts or guards a property, but no invariant is stated in words.",
                           _evidence((in_impl[0], None)))
        return Verdict(1, "No statement of what must always hold" + (
            "; the only asserts are test expectations." if checks else ", and no asserts in code."),
            _evidence((checks[0] if checks else None, None)))
    origin = {id(p): _own(p, view) for p in concrete}
    own = [p for p in concrete if origin[id(p)] == "own"]
    early = [p for p in own if S.before_code(p, view) or _precedes_code(p, view)]
    first = early[0] if early else (own or concrete)[0]
    terms = set().union(*(S.terms(p.text) for p in concrete))
    linked = sorted((c for c in checks if S.terms(c.text) & terms),
                    key=lambda c: (not c.text.startswith("assert"), -len(S.terms(c.text) & terms), c.pos))
    impl = [c for c in linked if c.context != "test"]
    # a test asserting the property, or a test named after it (test_at_most_four_in_flight)
    named_tests = [p for p in view.code if p.context == "test" and S.TEST_DEF.match(p.text)
                   and any(len(S.terms(p.text) & S.terms(c.text)) >= 2 for c in concrete)]
    tests = [c for c in linked if c.context == "test"] + named_tests + _property_tests(view)
    reasoning = _refers_back([first, *concrete], view)
    design = next((d for d in (_designed(p, view) for p in own) if d is not None), None)
    used = bool(impl or tests or reasoning or design)
    if all(origin[id(p)] == "supplied" for p in concrete):
        score, how = 2, "only repeats an invariant the interviewer supplied"
    elif not own:
        score, how = 3, "only when the interviewer asked for one"
    else:  # the rubric's 4 needs "before coding and used"; 5 needs use in more than one way, one in code
        ways = bool(impl) + bool(tests) + bool(reasoning) + bool(design)
        score = 3 if not (early and ways) else 5 if ways >= 2 and (impl or tests) else 4
        how = "first one before any code" if early else "none before the first code"
    parts = [f"Stated {len(concrete)} concrete guarantee(s) (\"{_short(first.text)}\"); {how}"]
    uses = [f"{len(impl)} assert/guard in code" if impl else "", f"{len(tests)} test(s) check it" if tests else "",
            "the design follows from it" if design else "", "referred back to it while reasoning" if reasoning else ""]
    parts.append("Used: " + ", ".join(u for u in uses if u) if used else
                 "Not used afterwards: no assert, guard, test or later argument refers to it"
                 + (" (asserts exist but check other things)" if checks else ""))
    evidence = _evidence((first, ["cues"]), (impl[0] if impl else None, None), (tests[0] if tests else None, None),
                         (design, ["inv_design"]), (reasoning[0] if reasoning else None, ["inv_use"]))
    return Verdict(score, ". ".join(parts) + ".", evidence)


# ---------------------------------------------------------------------------------------------
# edge_cases
# ---------------------------------------------------------------------------------------------

@dataclass
class _Case:
    """One boundary category as the round treats it: who raised it first, and what the code does about it."""

    label: str
    named: Piece | None  # the candidate's first mention (prose, comment or a test's name)
    hint: Piece | None  # the interviewer's question that raised it before the candidate did
    guard: Piece | None  # an implementation line that handles it
    test: Piece | None  # a test named after it

    @property
    def prompted(self) -> bool:
        return self.hint is not None

    @property
    def handled(self) -> bool:
        return self.guard is not None or self.test is not None


def _cases(view: View) -> list[_Case]:
    """Every boundary category the candidate or a follow-up question of the interviewer raises. A case
    is handled by an implementation line matching the category's code pattern, or by a branch/guard
    line sharing a content word with the sentence that named it ("overlap >= size would never advance"
    -> `if ... not 0 <= overlap < size: raise`), or by a test named after it. The interviewer raises a
    case by asking about it or putting it to the candidate ("Try a target larger than every element");
    the task's description of the inputs, or an answer to the candidate's question, is spec, not a prompt."""
    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    impl = [p for p in view.code if p.kind == "code" and p.context != "test" and not IMPORT.match(p.text)]
    guards = [p for p in impl if S.GUARD_RX.search(p.text)]
    test_defs = [p for p in view.code if p.context == "test" and S.TEST_DEF.match(p.text)]
    test_data = [p for p in view.code if p.kind == "code" and (p.context == "test" or S.find("test_param", p.text))]
    start = min((p.pos for p in view.candidate + view.code), default=(0, 0))
    questions = [p for p in view.interviewer if p.text.rstrip().endswith("?")
                 or (p.pos > start and S.find("edge_probe", p.text))]
    task = [p for p in view.interviewer if p.pos < start and not p.text.rstrip().endswith("?")]
    out = []
    for label, prose_rx, code_rx in S.EDGE:
        namings = [p for p in prose if prose_rx.search(p.text)]
        named = namings[0] if namings else None
        words = S.terms(named.text) if named is not None else set()
        # a test named after the case, or feeding it: the category's typical data (`f([])`, `LRU(0)`) or an
        # example input the candidate quoted when naming it ("like "30m1h": reject")
        examples = {x for p in namings for x in S.literals(p.text)}
        data_rx = S.EDGE_DATA.get(label)
        test = next((p for p in test_defs if prose_rx.search(p.text.replace("_", " "))
                     or len(S.terms(p.text) & words) >= 2), None) or next(
            (p for p in test_data if namings and ((data_rx is not None and data_rx.search(p.text))
                                                  or any(x in p.text for x in examples))), None)
        first = min((p for p in (named, test) if p is not None), key=lambda p: p.pos, default=None)
        hint = next((i for i in questions if prose_rx.search(i.text)), None)
        if (first is None and hint is None) or any(prose_rx.search(i.text) for i in task):
            continue  # not raised, or the task statement names it (spec: nobody raised it)
        guard = next((p for p in impl if code_rx.search(p.text)), None)
        strict = guard
        guard = guard or next((g for g in guards if S.terms(g.text) & words), None)
        if hint is not None and any(p is not None and p.pos < hint.pos for p in (first, guard)):
            hint = None  # the candidate got there first (said it, or already guarded it)
        if first is None and hint is None:  # guarded before the interviewer asked: handled, if unnamed
            first = guard
        if hint is None and first is not None:  # first named, tested or guarded in reply to a question;
            # a naming that concedes the case fails ("pop on an empty list throws IndexError, my bad") shows
            # that a branch merely sharing a word with it (`elif stack.pop() != ...`) did not handle it
            weak = guard is not strict and concedes(first)
            hint = _answering(view, first if guard is None or first.pos <= guard.pos or weak else guard)
        out.append(_Case(label, first, hint, guard, test))
    return out + _structural_cases(view, impl, out)


def _answering(view: View, piece: Piece) -> Piece | None:
    """The interviewer's question that a piece of the candidate's turn answers: the turn right before it
    is the interviewer's, after the candidate's first code, and asks about behaviour (not about cost or
    what the code guarantees). A case first raised or guarded there was raised by the interviewer, even
    when the candidate names it in other words ("What happens with '))'?" -> "pop on an empty list")."""
    if view.first_code_pos is None or piece.role != "candidate":
        return None
    before = [i for i in view.interviewer if view.first_code_pos < i.pos < piece.pos]
    if not before or any(before[-1].pos[0] < c.pos[0] < piece.pos[0] for c in view.candidate + view.code):
        return None
    turn = [i for i in before if i.pos[0] == before[-1].pos[0]]
    asks = next((i for i in turn if (i.text.rstrip().endswith("?") or S.find("edge_probe", i.text))
                 and not any(S.find(t, i.text) for t in ("cost_prompt", "inv_prompt", "test_request"))), None)
    # code rewritten right after any remark of the interviewer's ("Probably fail loudly.") answers it too
    # code rewritten right after remarks of the interviewer's about the code answers them too ("If `values`
    # has no `doc`, the prompt goes out with a literal `{doc}`."), unless they asked for more ("now let's relax")
    if asks or not any(r.pos[0] == piece.pos[0] and r.pos <= piece.pos for r in view.revisions):
        return asks
    since = max((c.pos for c in view.code if c.kind == "code" and c.pos[0] < piece.pos[0]), default=(-1, 0))
    said = [i for i in before if i.pos > since]
    if any(S.find("extension", i.text) for i in said):
        return None
    # about this code: it names something the candidate wrote, and shares a word with the piece
    return next((i for i in said if S.names(i.text) & set(view.identifiers) and S.terms(i.text) & S.terms(piece.text)),
                None)


def _exits(impl: list[Piece]) -> list[tuple[Piece, str]]:
    """Implementation guards that reject an input (`if s > e: raise`) or answer it with an empty or
    sentinel value (`if not grid: return -1`) instead of running the algorithm, with their exit line:
    each handles a case (a guard rejecting `a or b or c` handles three)."""
    out: list[tuple[Piece, str]] = []
    seen: set[str] = set()
    for k, guard in enumerate(impl):
        if not S.find("exit_guard", guard.text) or guard.text in seen:
            continue
        nxt = impl[k + 1] if k + 1 < len(impl) else None
        inline = guard.text.partition(":")[2].split("#")[0].strip()
        exit_line = inline if inline else (nxt.text if nxt is not None and nxt.pos[0] == guard.pos[0] else "")
        if S.find("exit_line", exit_line):
            seen.add(guard.text)
            out.append((guard, exit_line))
    return out


def _structural_cases(view: View, impl: list[Piece], known: list[_Case]) -> list[_Case]:
    """Cases found from what the code does rather than what they are called: a guard from `_exits` (one
    case per `or`-ed condition it rejects), tested by a test expecting the exception it raises; a test
    that feeds a boundary input (it expects a rejection, or an empty or sentinel result); and a "what
    if" question of the interviewer's about the code that no other case answers. Each one not already
    counted under a named category is a case of its own, raised by the interviewer when its code
    answers their question."""
    used = {id(p) for c in known for p in (c.guard, c.test) if p is not None}
    bodies = _test_bodies(view)
    out = []
    for guard, exit_line in _exits(impl):
        error = re.match(r"raise\s+(\w+)", exit_line)
        test = next((t for t, body in bodies if error and any(
            re.search(rf"\b(raises|assertRaises)\(\s*{error.group(1)}\b", b.text) for b in body)), None)
        clauses = len(re.findall(r"\s(or)\s", guard.text.partition(":")[0])) + 1
        clauses -= sum(c.guard is guard for c in known)
        for k in range(clauses):
            out.append(_Case(f"`{_short(guard.text, 40)}`" + (f" ({k + 1})" if clauses > 1 else ""), guard,
                             _answering(view, guard), guard, test))
        used |= {id(guard)} | ({id(test)} if test is not None else set())
    named = {c.label for c in known}
    for t, body in bodies:
        if id(t) in used or set(S.labels(t.text.replace("_", " "))) & named:
            continue  # `test_k_zero` tests a case already counted under its category
        if any(S.find("edge_test", p.text) for p in body):
            out.append(_Case(t.text.split("(")[0].split()[-1], t, _answering(view, t), None, t))
    # the interviewer's "what if ...?" about the code that none of the cases above answers, when the
    # candidate's reply concedes it or rewrites code for it (an answer that it is handled is no miss)
    answered = {id(c.hint) for c in known + out if c.hint is not None}
    for q in view.interviewer:
        if set(S.labels(q.text)) & named:
            continue  # about a case counted under its category (raised first by whoever raised that)
        if (view.first_code_pos is not None and q.pos > view.first_code_pos and id(q) not in answered
                and S.find("edge_question", q.text) and not S.find("cost_prompt", q.text)):
            turn = min((c.pos[0] for c in view.candidate + view.code if c.pos > q.pos), default=None)
            if any(c.pos[0] == turn and concedes(c) for c in view.candidate) or any(
                    r.pos[0] == turn for r in view.revisions):
                out.append(_Case("the interviewer's question", None, q, None, None))
    return out


def score_edge_cases(view: View) -> Verdict:
    """Boundary cases the candidate raises unprompted AND handles (a guard, a branch or a test), not how
    often they say "edge cases". A case is found by its category's wording or by the code's structure
    (a guard rejecting an input, a test expecting a rejection or an empty answer); who raised it is
    read from the conversation (first named or guarded in reply to the interviewer's question: the
    interviewer). Talk without handling caps at 2; cases only the interviewer raised count as the
    rubric's 2 however well they are then handled; a case the interviewer had to raise caps the round
    at 3 (the anchors' "misses an important one until prompted")."""
    cases = _cases(view)
    own = [c for c in cases if not c.prompted and c.named is not None]
    prompted = [c for c in cases if c.prompted]
    handled = [c for c in own if c.handled]
    tested = [c for c in own if c.test is not None]
    taken_up = [c for c in prompted if c.named is not None or c.handled]
    prose = view.candidate + [p for p in view.code if p.kind == "comment"]
    hollow = S.hits(prose, "edge_hollow")
    n, h, t = len(own), len(handled), len(tested)
    if not own:
        if taken_up or hollow:
            lead = f"Says \"edge cases\" ({len(hollow)}x) but names" if hollow else "Names"
            acted = sum(c.handled for c in taken_up)
            after = (f" Only takes up what the interviewer raised ({', '.join(c.label for c in taken_up)}), "
                     f"handling {acted} of them." if taken_up else "")
            return Verdict(2, f"{lead} no concrete boundary case unprompted." + after,
                           _evidence((hollow[0] if hollow else None, ["edge_hollow"]),
                                     *((c.guard or c.test, None) for c in taken_up[:2])))
        ignored = f" Did not act on the interviewer's: {', '.join(c.label for c in prompted)}." if prompted else ""
        return Verdict(1, "Names no boundary case (empty input, zero capacity, missing key, expiry, ...)." + ignored,
                       _evidence(*((c.hint, None) for c in prompted[:1])))
    # one or two cases is the anchors' 2 ("one or two obvious cases"), unless tested and unprompted;
    # several handled is 3, 4 once some are tested; a systematic list (five or more) with tests is 5
    if h == 0:
        score = 2
    elif h == 1:
        score = 3 if t else 2
    elif h == 2:
        score = 3 + (t >= 2)
    else:
        score = 3 + (t >= 2) + (t >= 3 and h >= 4)
    if prompted:  # the interviewer found a case: "misses one until prompted"
        score = min(score, 3)
    untested = [c.label for c in own if c.test is None]
    unhandled = [c.label for c in own if not c.handled]
    gaps = ([f"no test for {', '.join(untested[:3])}"] if untested else []) + (
        [f"not handled in code or tests: {', '.join(unhandled[:3])}"] if unhandled else []) + (
        [f"raised first by the interviewer: {', '.join(c.label for c in prompted)}"] if prompted else [])
    rationale = (f"Named {n} boundary case(s) unprompted ({', '.join(c.label for c in own)}); {h} handled in code "
                 f"or tests; {t} covered by a test." + (f" Missing: {'; '.join(gaps)}." if gaps else ""))
    # Quote the sentence that names the most categories, then a guard and a test.
    prose_named = sorted({id(c.named): c.named for c in own if c.named and c.named.kind != "code"}.values(),
                         key=lambda p: (-len(S.labels(p.text)), p.pos))
    evidence = _evidence((prose_named[0] if prose_named else None, ["edge_prose"]),
                         (next((c.guard for c in handled if c.guard), None), None),
                         (next((c.test for c in tested), None), None),
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
