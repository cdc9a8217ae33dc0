"""The baseline's cost-awareness scorer: quantified cost reasoning, and quantified trade-offs.

Why its own module: it weighs numbers (big-O, tokens, calls, latency, money) against topic words
and against who asked for them, a policy of its own. `baseline.py` wires it into the judge.
"""

from __future__ import annotations

from evaluator.judge import signals as S
from evaluator.judge.segment import View
from evaluator.judge.verdict import Verdict
from evaluator.judge.verdict import clamp as _clamp
from evaluator.judge.verdict import evidence as _evidence


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
