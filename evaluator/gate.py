"""`--fail-under`: a CI gate on scores, as pure functions over a judgment or a cohort summary.

`DIM=3.5` asks that dimension DIM score at least 3.5; a plain `3.5` asks it of the mean over every
scored dimension. Dimensions without a score (not observed, unscored) neither pass nor fail the gate:
an unscored dimension already makes the exit code 1.

A threshold is checked against the rubrics it can apply to before anything is judged
(`check_against_rubrics`): a dimension none of them has is a typo, and a score outside their scale
(`--fail-under 9` on a 1-5 rubric can never pass, `0.8` can never fail) is a mistake, not a gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.errors import BadInput

if TYPE_CHECKING:
    from evaluator.rubrics import Rubric

ALL = None  # the threshold on the mean over all scored dimensions


@dataclass(frozen=True)
class Threshold:
    """One `--fail-under` value: a dimension (None: the mean over all) and the lowest passing score."""

    dimension: str | None
    score: float

    def __str__(self) -> str:
        return f"{self.dimension or 'mean'} >= {self.score:g}"


def parse_thresholds(values: list[str] | None) -> list[Threshold]:
    """`["invariant=3.5", "3"]` -> thresholds; a malformed value is BadInput naming it."""
    out: list[Threshold] = []
    for raw in values or []:
        dim, _, number = raw.rpartition("=")
        try:
            score = float(number)
        except ValueError:
            score = math.nan
        if not math.isfinite(score) or (dim == "" and "=" in raw):
            raise BadInput(f"--fail-under {raw!r}: expected DIM=SCORE (e.g. invariant=3.5) or a plain SCORE "
                           "for the mean over all dimensions")
        out.append(Threshold(dim.strip() or ALL, score))
    return out


def check_against_rubrics(thresholds: list[Threshold], rubrics: Iterable[Rubric], *, every: bool = False,
                          used_by: Mapping[str, int] | None = None) -> None:
    """BadInput for a threshold no rubric in `rubrics` can give meaning to: one naming a dimension none
    of them has, or a score outside the scale of every rubric it applies to (those with the dimension;
    all of them for the mean). A score within one rubric's scale passes: which rubric a transcript
    gets may be known only once it is read (its exercise picks one), and scales can differ between
    rubrics. The scale's own ends are fine (`--fail-under 5`: only top scores pass).

    With `every`, `rubrics` are the ones the run will use (each transcript read, its rubric known):
    the score must then be on the scale of each of them it applies to, since the transcripts of a
    rubric it is outside of can never pass (or never fail). `used_by`: rubric id -> transcripts that
    use it, for the message.
    """
    rubrics = list(rubrics)
    if every and not rubrics:  # nothing readable: the run reports each item, and gates nothing
        return
    for t in thresholds:
        concerned = [r for r in rubrics if t.dimension is ALL or t.dimension in r.dimension_ids]
        if not concerned:
            known = sorted({d for r in rubrics for d in r.dimension_ids})
            where = f"the rubrics this cohort's transcripts use ({_named(rubrics)})" if every else _named(rubrics)
            raise BadInput(f"--fail-under {t.dimension}={t.score:g}: no such dimension in {where} "
                           f"(known: {', '.join(known) or 'none'})")
        off = [r for r in concerned if not r.scale.min <= t.score <= r.scale.max]
        if not off or (len(off) < len(concerned) and not every):
            continue
        flag = f"{t.score:g}" if t.dimension is ALL else f"{t.dimension}={t.score:g}"
        what = (f"a mean of {t.score:g} over all dimensions" if t.dimension is ALL
                else f"a score of {t.score:g} on {t.dimension}")
        never = "be reached" if all(t.score > r.scale.max for r in off) else "fail"
        users = ""
        if used_by:
            n = sum(used_by.get(r.id, 0) for r in off)
            users = f" (used by {n} transcript{'s' if n != 1 else ''} of this cohort)"
        raise BadInput(f"--fail-under {flag}: {_named(off)}{users} {_scored(off)}, so {what} can never "
                       f"{never}; {_within(concerned, every)}")


def _within(rubrics: list[Rubric], every: bool) -> str:
    """What to give instead: a score on one of the scales, or (`every`) on all of them at once."""
    scales = sorted({(r.scale.min, r.scale.max) for r in rubrics})
    if not every:
        return f"give a score within {' or '.join(f'{lo}-{hi}' for lo, hi in scales)}"
    lo, hi = max(s[0] for s in scales), min(s[1] for s in scales)
    if lo <= hi:
        return f"give a score within {lo}-{hi}"
    return "their scales do not overlap: gate each rubric's transcripts in a cohort of their own (--rubric)"


def _named(rubrics: list[Rubric]) -> str:
    ids = sorted({r.id for r in rubrics})
    return f"rubric '{ids[0]}'" if len(ids) == 1 else "rubrics " + ", ".join(f"'{i}'" for i in ids)


def _scored(rubrics: list[Rubric]) -> str:
    """`scores 1-5`, or each rubric's scale when they differ."""
    scales = {(r.scale.min, r.scale.max) for r in rubrics}
    if len(scales) == 1:
        lo, hi = scales.pop()
        return f"score{'s' if len({r.id for r in rubrics}) == 1 else ''} {lo}-{hi}"
    return "score " + ", ".join(f"{r.scale.min}-{r.scale.max} ('{r.id}')" for r in sorted(rubrics, key=lambda r: r.id))


def cohort_thresholds(values: list[str] | None, rubric: str | None, path: Path) -> list[Threshold]:
    """A cohort's `--fail-under` values, parsed and checked before any transcript is judged against
    the rubrics the cohort will use: the `--rubric` given, else the rubric each transcript of `path`
    gets from its exercise (read now: a threshold off one of their scales is refused before any call,
    not found out at the end)."""
    thresholds = parse_thresholds(values)
    if not thresholds:
        return thresholds
    from evaluator.rubrics import select_rubric

    if rubric:
        check_against_rubrics(thresholds, [select_rubric(rubric, None)])
    else:
        from evaluator.batch.prepare import rubrics_in_use

        used = rubrics_in_use(path)
        check_against_rubrics(thresholds, [r for r, _ in used], every=True,
                              used_by={r.id: n for r, n in used})
    return thresholds


def check(thresholds: list[Threshold], scores: Mapping[str, float | None],
          counts: Mapping[str, int] | None = None) -> list[str]:
    """The thresholds `scores` (dimension -> score or mean; None when unscored) falls below, as
    messages. `counts` weighs each dimension's mean in the overall mean (a cohort); default 1 each.
    A threshold naming a dimension that is not in `scores` is BadInput (a typo must not pass CI).
    """
    failures: list[str] = []
    for t in thresholds:
        if t.dimension is ALL:
            scored = {d: s for d, s in scores.items() if s is not None}
            weights = {d: (counts or {}).get(d, 1) for d in scored}
            total = sum(weights.values())
            if not total:
                continue
            value = sum(s * weights[d] for d, s in scored.items()) / total
        elif t.dimension not in scores:
            raise BadInput(f"--fail-under {t.dimension}: no such dimension (known: {', '.join(scores) or 'none'})")
        else:
            score = scores[t.dimension]
            if score is None:
                continue
            value = score
        if value < t.score:
            failures.append(f"{t.dimension or 'mean over all dimensions'} {value:.2f} < {t.score:g}")
    return failures


def judgment_scores(dimensions: list[Any]) -> dict[str, float | None]:
    """Dimension id -> score, None where the dimension has no score."""
    return {d.id: (float(d.score) if d.status == "scored" and d.score is not None else None) for d in dimensions}


def cohort_scores(dimensions: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, float | None], dict[str, int]]:
    """From a cohort summary's per-dimension block: (dimension -> mean, dimension -> scored count)."""
    means = {d: v.get("mean") for d, v in dimensions.items()}
    return means, {d: int(v.get("count") or 0) for d, v in dimensions.items()}


def cohort_verdict(summary: Any, thresholds: list[Threshold]) -> tuple[int, list[str]]:
    """A cohort run's exit code and the gate's failures: 3 aborted (judge unavailable), 130
    interrupted, 1 not every transcript fully scored, 4 below a threshold, else 0. A dry run judges
    nothing, so it only fails on unreadable inputs. Transcripts a provider batch has not answered yet
    (`batch_pending`) are not failures: with nothing else wrong the exit is 0, and the thresholds wait
    for the whole cohort (the run that collects the last reply applies them).
    """
    from evaluator.errors import (
        EXIT_BELOW_THRESHOLD,
        EXIT_INTERRUPTED,
        EXIT_JUDGE_UNAVAILABLE,
        EXIT_NOT_FULLY_SCORED,
        EXIT_OK,
    )

    if summary.status == "aborted":
        return EXIT_JUDGE_UNAVAILABLE, []
    if summary.status == "interrupted":
        return EXIT_INTERRUPTED, []
    if summary.dry_run:
        return (EXIT_OK if summary.failed == 0 else EXIT_NOT_FULLY_SCORED), []
    pending = getattr(summary, "batch_pending", 0)
    if pending and summary.scored + pending == summary.total:
        return EXIT_OK, []
    below = check(thresholds, *cohort_scores(summary.dimensions)) if thresholds else []
    if summary.scored != summary.total:
        return EXIT_NOT_FULLY_SCORED, below
    return (EXIT_BELOW_THRESHOLD if below else EXIT_OK), below
