"""Recovery after a mistake, for the offline baseline judge.

A round is cut into mistake episodes: a failure (failing test output, a traceback, a wrong result the
candidate states, an interviewer's correction or a probe the candidate concedes) followed by what the
candidate does about it. Each episode is scored on how it was recovered:

- the cause is named (not guessed: "maybe it's flaky" is no diagnosis) and the fix is targeted: 4,
  and 5 when the candidate noticed it themselves and added a test or reset to a smaller case;
- the same, but only after a hint that gave the answer away, or after some flailing: 3;
- fixed without ever saying what was wrong (a blind retry that happens to pass, or following the
  interviewer step by step): 2; rerunning until green with no change, or never fixing it: 1.

"Not observed" is kept for rounds where nothing went wrong at all. The tables live in `tables.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from evaluator.judge import signals as S
from evaluator.judge.segment import Piece, View
from evaluator.judge.verdict import Verdict, clamp, evidence, short
from evaluator.rubrics import Dimension


def admits(piece: Piece, before: Piece | None) -> bool:
    """A candidate admission of a mistake, not a hypothetical ("if the call fails, we retry"; "If I
    pick 10... That breaks it.") nor a failure caused on purpose ("as a sanity check ... it fails")."""
    m = S.find("mistake_c", piece.text)
    if m is None or S.find("hypo", piece.text[: m.start()]) or S.find("intentional", piece.text):
        return False
    return not (before is not None and before.pos[0] == piece.pos[0] and S.find("supposition", before.text))


def _reply(view: View, after: Piece) -> list[Piece]:
    """The candidate's next turn after an interviewer sentence."""
    turn = min((c.pos[0] for c in view.candidate if c.pos[0] > after.pos[0]), default=None)
    return [c for c in view.candidate if c.pos[0] == turn]


def mistakes(view: View) -> list[Piece]:
    """Admissions, failing output (the candidate's or pasted by the interviewer), interviewer
    corrections, and interviewer probes that the candidate's next turn concedes ("what happens if..."
    -> "oh, good catch"; "Try a target above every element." -> "returns 1. It should be 2")."""
    found = [p for p, before in zip(view.candidate, [None, *view.candidate], strict=False)
             if admits(p, before)]
    found += [p for p in view.candidate + view.interviewer if S.find("output", p.text)]
    found += [p for p in view.code + view.shown if p.pos[0] < view.turn_count and S.find("output", p.text)]
    found += [p for p in view.interviewer if S.find("mistake_i", p.text)]
    # nudges, hints and probes need something to correct: the task statement ("think carefully") is advice
    start = min((p.pos for p in view.candidate + view.code), default=None)
    asked = [p for p in view.interviewer if start is not None and p.pos > start]
    found += [p for p in asked if S.find("nudge", p.text) or S.find("direct", p.text)]
    for probe in (p for p in asked if S.find("probe", p.text)):
        reply = _reply(view, probe)
        if any((S.find("ack", c.text) and not S.find("intentional", c.text)) or admits(c, None) for c in reply):
            found.append(probe)
    # the same failure printed again in a later turn is a new signal (a retry that failed again)
    unique = {(p.pos[0], p.text): p for p in sorted(found, key=lambda p: p.pos, reverse=True)}
    return sorted(unique.values(), key=lambda p: p.pos)


def episodes(view: View, signals: list[Piece]) -> list[tuple[list[Piece], int]]:
    """Group mistake signals into episodes: a mistake plus the candidate's next two turns (its own
    turn and the reply, or the two replies to an interviewer's correction). A retry that fails again
    is a new signal inside the window, so trial and error stays one episode."""
    cand_turns = sorted({p.pos[0] for p in view.candidate}
                        | {p.pos[0] for p in view.code if p.pos[0] < view.turn_count})
    groups: list[tuple[list[Piece], int]] = []
    for m in signals:
        following = [t for t in cand_turns if t >= m.pos[0]][:2] or [m.pos[0]]
        if groups and m.pos[0] <= groups[-1][1]:
            groups[-1] = (groups[-1][0] + [m], max(groups[-1][1], following[-1]))
        else:
            groups.append(([m], following[-1]))
    return groups


@dataclass
class Episode:
    """What happened after one mistake: the signals found in the window, and the score they earn."""

    first: Piece
    score: int = 1
    cause: list[Piece] = field(default_factory=list)  # the candidate says what was wrong (not a guess)
    guesses: list[Piece] = field(default_factory=list)  # hedged "causes": "maybe the fake is broken"
    fix: list[Piece] = field(default_factory=list)
    verified: list[Piece] = field(default_factory=list)  # the candidate re-checks: a rerun, a passing test
    confirmed: bool = False  # the interviewer says it passes now
    reset: list[Piece] = field(default_factory=list)
    flail: list[Piece] = field(default_factory=list)  # "let me just try", "still failing", rerun until green
    hints: list[Piece] = field(default_factory=list)  # interviewer corrections before the cause was named
    direct: bool = False  # one of those hints gave the answer away
    new_test: bool = False
    rerun_only: bool = False  # passed on a rerun with no code change and no diagnosis
    self_noticed: bool = False
    panic: list[tuple[str, Piece]] = field(default_factory=list)

    @property
    def fixed(self) -> bool:
        """Something was changed and it now works; a green rerun of unchanged code is not a fix."""
        return bool(self.fix or self.verified or self.confirmed) and not self.rerun_only


def assess(view: View, signals: list[Piece], end: int) -> Episode:
    """Read one episode and score it (see the module docstring for the levels)."""
    first = signals[0]
    ep = Episode(first)
    window = [p for p in view.candidate if first.pos <= p.pos and p.pos[0] <= end]
    later_code = [p for p in view.code if first.pos < p.pos and p.pos[0] <= end]
    new_code = [p for p in later_code if p.kind == "code"]
    body = [p for p in new_code if len(p.text) >= 12 and not p.text.startswith(("def ", "async def ", "class ", "@"))]
    asked = [p for p in view.interviewer + view.shown if first.pos <= p.pos and p.pos[0] <= end]
    claims = S.hits(window, "cause")
    ep.cause = [p for p in claims if not S.find("hedge", p.text)]
    ep.guesses = [p for p in claims if S.find("hedge", p.text)]
    ep.fix = S.hits(window, "fix") + (body or new_code)[:1]
    ep.verified = S.hits(window + later_code, "verified")
    ep.confirmed = any(S.find("verified", p.text) for p in asked)
    ep.reset = S.hits(window, "reset")
    # a retry that fails again: failing output in a later turn, after the candidate changed the code
    runs = sorted({p.pos[0] for p in signals if S.find("output", p.text)})
    retried = [p for p in signals if S.find("output", p.text) and runs and p.pos[0] > runs[0]
               and any(c.pos[0] < p.pos[0] and c.pos > first.pos for c in new_code)]
    ep.flail = S.distinct(S.hits(window, "flail") + retried)
    named_at = ep.cause[0].pos if ep.cause else (end + 1, 0)
    ep.hints = [i for i in view.interviewer if first.pos <= i.pos < named_at and i.pos[0] <= end
                and any(S.find(t, i.text) for t in ("mistake_i", "nudge", "direct", "probe"))]
    ep.direct = any(S.find("direct", h.text) for h in ep.hints)
    ep.new_test = any(p.context == "test" and S.TEST_DEF.match(p.text) for p in later_code)
    changed_before_pass = [p for p in new_code if not ep.verified or p.pos < ep.verified[0].pos]
    ep.rerun_only = bool(ep.verified or ep.confirmed) and not changed_before_pass and not ep.cause
    for label, rx in S.PANIC_RX:
        hits = [p for p in window if rx.search(p.text)]
        if len(hits) >= (2 if label == "apologising" else 1):
            ep.panic.append((label, hits[0]))
    prev = [i for i in view.interviewer if i.pos < first.pos and i.pos[0] == max(
        (j.pos[0] for j in view.interviewer if j.pos < first.pos), default=-1)]
    ep.self_noticed = first.role == "candidate" and not ep.hints and not S.find("hinted", first.text) and not any(
        S.find("probe", i.text) or S.find("mistake_i", i.text) for i in prev)
    ep.score = _level(ep)
    return ep


def _level(ep: Episode) -> int:
    if not ep.fixed:
        score = 2 if ep.cause else 1
    elif not ep.cause:
        score = 2  # trial and error, or the interviewer's steps, without a diagnosis
    elif len(ep.flail) >= 2 or ep.direct or not (ep.verified or ep.reset):
        score = 3  # one rerun before diagnosing is not yet flailing
    else:
        score = 5 if (ep.self_noticed or ep.reset) and (ep.new_test or ep.reset) else 4
    return max(2 if ep.fixed else 1, score - min(2, len(ep.panic)))


def score_recovery(view: View, dim: Dimension) -> Verdict:
    """The mean of the episodes' levels, rounded down at a half (the rubric's "pick the lower")."""
    found = mistakes(view)
    if not found:
        text = "No mistake, failing test or interviewer challenge was observed, so recovery could not be judged."
        if dim.allow_not_observed:
            return Verdict(None, text, status="not_observed")
        return Verdict(3, text + " Neutral score.")
    results = [assess(view, ms, end) for ms, end in episodes(view, found)]
    score = math.ceil(sum(e.score for e in results) / len(results) - 0.5)
    ep = results[0]
    how = ("noticed it themselves" if ep.self_noticed else
           "after a hint that gave it away" if ep.direct else "after a hint or question")
    done = [what for what, ok in (("named the cause", ep.cause), ("fixed it", ep.fixed),
                                  ("re-checked it", ep.verified), ("reset to a smaller case", ep.reset),
                                  ("added a test for it", ep.new_test)) if ok]
    missing = [what for what, ok in (("name the cause", ep.cause), ("fix it", ep.fixed),
                                     ("re-check it", ep.verified)) if not ok]
    notes = ([f"trial and error ({len(ep.flail)} sign(s): \"{short(ep.flail[0].text, 40)}\")"] if ep.flail else []) + (
        ["only guessed at the cause"] if ep.guesses and not ep.cause else []) + (
        ["passed on a rerun with no change"] if ep.rerun_only else []) + (
        [f"panic signals: {', '.join(lab for lab, _ in ep.panic)}"] if ep.panic else [])
    text = (f"{len(results)} mistake episode(s); the first ({how}, \"{short(ep.first.text)}\"): "
            + (", ".join(done) if done else "no fix, explanation or reset followed")
            + (f"; did not {' or '.join(missing)}" if done and missing else "")
            + "".join(f"; {n}" for n in notes) + ".")
    if len(results) > 1:
        text += f" Episode scores: {', '.join(str(e.score) for e in results)}."
    support = next(iter(ep.verified or ep.reset or ep.fix), None)
    third = ep.panic[0][1] if ep.panic else ep.flail[0] if ep.flail else support
    quotes = evidence((ep.first, ["mistake_c", "mistake_i", "probe"]),
                      (ep.cause[0] if ep.cause else ep.guesses[0] if ep.guesses else None, ["cause"]),
                      (third, ["flail"]), (support, None))
    return Verdict(clamp(score), text, quotes)
