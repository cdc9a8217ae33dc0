"""The baseline's invariant scorer: what the candidate says must always hold, and whether they use it.

Why its own module: the invariant dimension is the baseline's most involved reading of a round
(who stated a guarantee first, whether it came before the code, and every way it is used later:
an assert, a test, the design, later reasoning), and it shares nothing with the other scorers but
the signal helpers of `signals.py`. `baseline.py` wires it into the judge.
"""

from __future__ import annotations

import itertools

from evaluator.judge import signals as S
from evaluator.judge.segment import Piece, View
from evaluator.judge.verdict import Verdict
from evaluator.judge.verdict import evidence as _evidence
from evaluator.judge.verdict import short as _short


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


def _property_tests(view: View) -> list[Piece]:
    """Tests that check a property over many inputs (a loop over random or generated cases, `@given`,
    an `all(...)` over the output): these test a guarantee, not one example."""
    return [t for t, body in S.bodies_of_tests(view)
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
