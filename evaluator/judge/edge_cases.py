"""The baseline's edge-case scorer: boundary cases the candidate raises unprompted and handles.

Why its own module: deciding who raised a case (the candidate, or the interviewer's question the
candidate then answers) and whether code or a test handles it takes the categories of `tables`,
the structure of guards and tests, and the turn order of the conversation; the rules belong
together and apart from the other dimensions. `baseline.py` wires it into the judge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluator.judge import signals as S
from evaluator.judge.recovery import concedes
from evaluator.judge.segment import Piece, View
from evaluator.judge.verdict import Verdict
from evaluator.judge.verdict import clamp as _clamp
from evaluator.judge.verdict import evidence as _evidence
from evaluator.judge.verdict import short as _short

IMPORT = re.compile(r"(import|from)\s")  # import lines are never a guard for an edge case


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
    bodies = S.bodies_of_tests(view)
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
