"""Recovery after a mistake, for the offline baseline judge.

A round is cut into mistake episodes: a failure (failing test output, a traceback, a wrong result the
candidate states, a wrong claim they correct, an interviewer's correction, a question the candidate
concedes, or a remark about the code that the candidate's next code rewrites) followed by what the
candidate does about it. What counts is the conversation's structure, not its vocabulary: a cause is
named when a sentence says what a piece of the candidate's own code does wrong, however it is worded,
and a change being tried ("I change X to Y") explains nothing. Each episode is scored on how it was
recovered:

- the cause is named (not guessed: "maybe it's flaky" is no diagnosis) and the fix is targeted: 4,
  and 5 when the candidate noticed it themselves and added a test or reset to a smaller case;
- the same, but only after a hint that gave the answer away, or after some flailing: 3;
- fixed without ever saying what was wrong (a blind retry that happens to pass, or following the
  interviewer step by step): 2; rerunning until green with no change, or never fixing it: 1.

"Not observed" is kept for rounds where nothing went wrong at all. The tables live in `tables/recovery.py`.
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


def concedes(piece: Piece) -> bool:
    """A reply that grants a flaw ("oh, good catch", "then it's a KeyError and the loop crashes"), not
    one that imagines a failure ("that would be a bug upstream") or describes one caused on purpose."""
    m = S.find("ack", piece.text)
    return (m is not None and not S.find("hypo", piece.text[: m.start()])
            and not S.NEGATED.search(piece.text[max(0, m.start() - 12): m.start()])  # "should return, not crash"
            and not S.find("intentional", piece.text))


def explains(piece: Piece, view: View) -> bool:
    """A diagnosis in the candidate's own terms: a sentence that says what a piece of code they wrote
    does wrong ("the pop on an empty list throws", "`history[:KEEP]` is the first four", "float of empty
    string crash"), however it is phrased. A name of an exception class is the symptom, not the cause;
    a guess or a change being tried ("I change X to Y") explains nothing."""
    if S.find("hedge", piece.text) or S.find("attempt", piece.text) or not S.find("mechanism", piece.text):
        return False
    return any(view.identifiers.get(name, piece.pos) < piece.pos and not name.endswith(("Error", "Exception"))
               for name in S.names(piece.text))


def _after_question(view: View, piece: Piece) -> bool:
    """Whether a candidate sentence answers an interviewer question (the interviewer's latest turn before
    it asks one): an admission there was prompted, whatever words it uses."""
    last = max((i.pos[0] for i in view.interviewer if i.pos < piece.pos), default=None)
    return last is not None and any(i.pos[0] == last and i.text.rstrip().endswith("?") for i in view.interviewer)


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
    coded = view.first_code_pos
    for probe in (p for p in asked if S.find("probe", p.text)
                  or (coded is not None and p.pos > coded and p.text.rstrip().endswith("?"))):
        reply = _reply(view, probe)
        if any(concedes(c) or admits(c, None) for c in reply):
            found.append(probe)
    # the interviewer says something about the code, and the candidate's next code rewrites it: the remark
    # exposed a flaw, whatever its wording (a request for more, "now add a TTL", is an extension)
    code = [p for p in view.code if p.kind == "code"]
    for rev in view.revisions:
        since = max((c.pos for c in code if c.pos < rev.pos and c.pos[0] < rev.pos[0]), default=(-1, 0))
        said = [i for i in asked if since < i.pos < rev.pos]
        about = [i for i in said if not i.text.rstrip().endswith("?") and not S.find("scenario", i.text)
                 and S.names(i.text) & set(view.identifiers)]  # "Say search times out." is a probe
        if about and not any(S.find("extension", i.text) for i in said):
            found += [about[0], rev]  # the remark, and the rewrite it led to (one episode: see `episodes`)
    # the same failure printed again in a later turn is a new signal (a retry that failed again)
    unique = {(p.pos[0], p.text): p for p in sorted(found, key=lambda p: p.pos, reverse=True)}
    return sorted(unique.values(), key=lambda p: p.pos)


def episodes(view: View, signals: list[Piece]) -> list[tuple[list[Piece], int]]:
    """Group mistake signals into episodes: a mistake plus the candidate's next two turns (its own
    turn and the reply, or the two replies to an interviewer's correction). A retry that fails again
    is a new signal inside the window, so trial and error stays one episode; so is an interviewer's
    hint about a failure the candidate has not yet changed any code for (the hint helps with it)."""
    cand_turns = sorted({p.pos[0] for p in view.candidate}
                        | {p.pos[0] for p in view.code if p.pos[0] < view.turn_count})
    code = [p for p in view.code if p.kind == "code"]
    groups: list[tuple[list[Piece], int]] = []
    asked = sorted({p.pos[0] for p in view.interviewer})
    for m in signals:
        # the candidate's next two turns, and any more they take before the interviewer speaks again
        following = [t for t in cand_turns if t >= m.pos[0]]
        talks = next((t for t in asked if t > m.pos[0]), None)
        following = [t for k, t in enumerate(following) if k < 2 or talks is None or t < talks] or [m.pos[0]]
        changed = bool(groups) and any(groups[-1][0][0].pos < c.pos < m.pos for c in code)
        if groups and any(m is r for r in view.revisions):  # the rewrite a remark led to
            groups[-1] = (groups[-1][0], max(groups[-1][1], following[-1]))
        elif groups and m.role == "interviewer" and changed:
            groups.append(([m], following[-1]))  # the interviewer raises something after a change: a new episode
        elif groups and (m.pos[0] <= groups[-1][1] or (m.role == "interviewer" and any(
                S.find(t, m.text) for t in ("nudge", "direct", "mistake_i")))):
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
    stated = {id(p) for p in claims}
    # conceding a flaw the interviewer put to them by saying what fails ("then it's a KeyError and the loop
    # crashes") roughly says what went wrong
    ep.cause = S.distinct([p for p in window if not S.find("hedge", p.text) if id(p) in stated or explains(p, view)
                           or (first.role == "interviewer" and concedes(p) and S.find("failure", p.text))])
    ep.guesses = [p for p in claims if S.find("hedge", p.text)]
    prose_fix = S.hits(window, "fix")
    ep.fix = prose_fix + (body or new_code)[:1]
    ep.verified = S.hits(window + later_code, "verified")
    # a wrong claim (a complexity, a size) corrected: the corrected statement names and fixes it
    claim = next((p for p in window if (admits(p, None) or concedes(p)) and S.find("claim", p.text)), None)
    if claim is not None:
        correction = [p for p in window if p.pos[0] == claim.pos[0] and (S.kinds(p.text) or ", not " in p.text)]
        if correction:
            ep.cause = ep.cause or correction[:1]
            ep.fix = ep.fix or correction[:1]
            ep.verified = ep.verified or correction[:1]
            ep.direct = _after_question(view, claim)  # the question named the claim
    ep.confirmed = any(S.find("verified", p.text) for p in asked)
    ep.reset = S.hits(window, "reset")
    # a retry that fails again: failing output in a later turn, after the candidate changed the code
    runs = sorted({p.pos[0] for p in signals if S.find("output", p.text)})
    retried = [p for p in signals if S.find("output", p.text) and runs and p.pos[0] > runs[0]
               and any(c.pos[0] < p.pos[0] and c.pos > first.pos for c in new_code)]
    # rerunning or re-tracing once the cause is named, or with a named change, is checking, not flailing
    named = ep.cause[0].pos if ep.cause else None
    ep.flail = S.distinct([p for p in S.hits(window, "flail") if not (S.find("fix", p.text) or (
        named is not None and p.pos > named and S.find("verified", p.text)))] + retried)
    named_at = ep.cause[0].pos if ep.cause else (end + 1, 0)
    ep.hints = [i for i in view.interviewer if first.pos <= i.pos < named_at and i.pos[0] <= end
                and any(S.find(t, i.text) for t in ("mistake_i", "nudge", "direct", "probe"))]
    ep.direct = ep.direct or any(S.find("direct", h.text) for h in ep.hints)
    ep.new_test = any(p.context == "test" and S.TEST_DEF.match(p.text) for p in later_code)
    changed_before_pass = [p for p in new_code + prose_fix if not ep.verified or p.pos < ep.verified[0].pos]
    ep.rerun_only = bool(ep.verified or ep.confirmed) and not changed_before_pass and not ep.cause
    for label, rx in S.PANIC_RX:
        hits = [p for p in window if rx.search(p.text)]
        if len(hits) >= (2 if label == "apologising" else 1):
            ep.panic.append((label, hits[0]))
    prev = [i for i in view.interviewer if i.pos < first.pos and i.pos[0] == max(
        (j.pos[0] for j in view.interviewer if j.pos < first.pos), default=-1)]
    answered = first.kind == "prose" and _after_question(view, first)  # an admission answering a question
    ep.self_noticed = first.role == "candidate" and not ep.hints and not S.find("hinted", first.text) and not any(
        S.find("probe", i.text) or S.find("mistake_i", i.text) for i in prev) and not answered
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
