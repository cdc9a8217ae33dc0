"""Which human score a judge score is compared with: one definition for the CLI and the report page.

Two pairings, both common in the literature and both legitimate, answer different questions:

- `mean`: the judge against the mean of the raters who scored the item (one pair per item). Averaging
  raters removes much of their noise, so agreement with the mean is higher than with a single rater.
- `each`: the judge against every rater's label (one pair per item and rater; the item is still the
  resampling unit). This is how a judge compares with a typical single rater.

The human ceiling must use the same footing as the judge: `leave_one_out` pairs each rater with the mean
of the OTHER raters of the item, and the judge with that same mean, so "the judge beats the raters" is
judged like for like (a single rater vs the pairwise ceiling flatters a judge compared with a mean).

`exact` is |judge - human| < 0.5 and `within_one` is |judge - human| <= 1 under both pairings, so a
fractional mean of raters (3.5) is exact only for judge scores in (3, 4).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

import numpy as np
from pydantic import BaseModel

from evaluator.calibrate.records import HumanLabel, JudgeScore

Pairing = Literal["mean", "each"]
PAIRINGS: tuple[Pairing, ...] = ("mean", "each")
EXACT_DEFINITION = "exact: |judge - human| < 0.5; within one: |judge - human| <= 1"
PAIRING_DEFINITIONS = {
    "mean": "judge vs the mean of the raters who scored the item (one pair per item)",
    "each": "judge vs every rater's label (one pair per item and rater; items are resampled whole)",
}


class Pairs(BaseModel):
    """Paired scores for one dimension; `clusters` is the item each pair belongs to (the resampling unit)."""

    judge: list[float] = []
    human: list[float] = []
    clusters: list[str] = []
    raters: list[str] = []

    def add(self, j: float, h: float, cluster: str, rater: str = "") -> None:
        self.judge.append(j)
        self.human.append(h)
        self.clusters.append(cluster)
        self.raters.append(rater)


def scored_labels(human: Iterable[HumanLabel]) -> dict[tuple[str, str], dict[str, float]]:
    """(transcript, dimension) -> rater -> score, scored labels only."""
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for label in human:
        if label.status == "scored" and label.score is not None:
            out[(label.transcript, label.dimension)][label.rater] = float(label.score)
    return out


def judge_pairs(judge: dict[str, float], by_item: dict[str, dict[str, float]], pairing: Pairing,
                consensus_ok: set[str] | None = None) -> Pairs:
    """Pairs for one dimension. `judge`: transcript -> judge score; `by_item`: transcript -> rater ->
    score; `consensus_ok`: the transcripts whose raters' consensus is "scored" (None: all)."""
    pairs = Pairs()
    for transcript in sorted(judge):
        raters = by_item.get(transcript)
        if not raters or (consensus_ok is not None and transcript not in consensus_ok):
            continue
        if pairing == "mean":
            pairs.add(judge[transcript], sum(raters.values()) / len(raters), transcript)
        else:
            for rater in sorted(raters):
                pairs.add(judge[transcript], raters[rater], transcript, rater)
    return pairs


def leave_one_out(judge: dict[str, float], by_item: dict[str, dict[str, float]]) -> tuple[Pairs, Pairs]:
    """(each rater vs the mean of the others, judge vs that same mean), on items the judge scored and at
    least two raters scored: the like-for-like human ceiling."""
    human, machine = Pairs(), Pairs()
    for transcript in sorted(judge):
        raters = by_item.get(transcript, {})
        if len(raters) < 2:
            continue
        total = sum(raters.values())
        for rater in sorted(raters):
            rest = (total - raters[rater]) / (len(raters) - 1)
            human.add(raters[rater], rest, transcript, rater)
            machine.add(judge[transcript], rest, transcript, rater)
    return human, machine


class ExactAgreement(BaseModel):
    """Exact and within-one agreement for one dimension with 95% Wilson intervals (what the report page shows)."""

    dimension: str
    pairing: Pairing
    n: int
    n_items: int
    exact: float | None
    exact_lo: float | None
    exact_hi: float | None
    within_one: float | None
    within_one_lo: float | None
    within_one_hi: float | None
    mae: float | None
    definition: str = EXACT_DEFINITION


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    if n <= 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def exact_agreement(judge: list[JudgeScore], human: list[HumanLabel], pairing: Pairing = "mean") -> list[ExactAgreement]:
    """Per dimension: exact / within-one agreement of the judge with human labels under `pairing`.

    The one definition the CLI (`evaluate agreement`) and the report's judge-quality page share. The
    Wilson intervals treat pairs as independent, which under `each` (several pairs per item) is
    optimistic; `evaluate agreement` gives item-resampled bootstrap intervals.
    """
    labels = scored_labels(human)
    by_dim: dict[str, dict[str, float]] = defaultdict(dict)
    for j in judge:
        if j.status == "scored" and j.score is not None:
            by_dim[j.dimension][j.transcript] = float(j.score)
    out = []
    for dim in sorted(by_dim):
        items = {t: r for (t, d), r in labels.items() if d == dim}
        p = judge_pairs(by_dim[dim], items, pairing)
        n = len(p.judge)
        diff = np.abs(np.asarray(p.judge) - np.asarray(p.human))
        k_exact, k_within = float(np.sum(diff < 0.5)), float(np.sum(diff <= 1 + 1e-9))
        out.append(ExactAgreement(
            dimension=dim, pairing=pairing, n=n, n_items=len(set(p.clusters)),
            exact=k_exact / n if n else None, within_one=k_within / n if n else None,
            mae=float(diff.mean()) if n else None,
            **dict(zip(("exact_lo", "exact_hi"), wilson(k_exact, n))),
            **dict(zip(("within_one_lo", "within_one_hi"), wilson(k_within, n)))))
    return out
