"""The baseline's restraint scorer: building the smallest thing first, and not more than was asked.

Why its own module: restraint is read against the code actually written (talk of keeping it simple
that the first code contradicts earns nothing), a policy separate from the other dimensions.
`baseline.py` wires it into the judge.
"""

from __future__ import annotations

from evaluator.judge import signals as S
from evaluator.judge.segment import View
from evaluator.judge.verdict import Verdict
from evaluator.judge.verdict import clamp as _clamp
from evaluator.judge.verdict import evidence as _evidence


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
