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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from evaluator.calibrate.records import HumanLabel, JudgeScore

Pairing = Literal["mean", "each"]
EXACT_DEFINITION = "exact: |judge - human| < 0.5; within one: |judge - human| <= 1"
PAIRING_DEFINITIONS = {
    "mean": "judge vs the mean of the raters who scored the item (one pair per item)",
    "each": "judge vs every rater's label (one pair per item and rater; items are resampled whole)",
}


@dataclass
class Pairs:
    """Paired scores for one dimension; `items` is the transcript (or system) each pair belongs to, the
    resampling unit, as a code into the report's list of units."""

    judge: np.ndarray
    human: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.judge)

    @classmethod
    def of(cls, frame: pd.DataFrame, judge: str = "judge", human: str = "human") -> Pairs:
        return cls(frame[judge].to_numpy(float), frame[human].to_numpy(float), frame["item"].to_numpy(np.int64))

    @classmethod
    def concat(cls, parts: list[Pairs]) -> Pairs:
        if not parts:
            return cls(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("judge", "human", "items")))


def judge_frame(judge: Iterable[JudgeScore]) -> pd.DataFrame:
    """Records -> columns transcript, dimension, status, score."""
    rows = [(j.transcript, j.dimension, j.status, j.score) for j in judge]
    return pd.DataFrame(rows, columns=["transcript", "dimension", "status", "score"])


def human_frame(human: Iterable[HumanLabel]) -> pd.DataFrame:
    """Records -> columns transcript, rater, dimension, status, score."""
    rows = [(h.transcript, h.rater, h.dimension, h.status, h.score) for h in human]
    return pd.DataFrame(rows, columns=["transcript", "rater", "dimension", "status", "score"])


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
    """Wilson interval for k of n: sensible at small n and near 0 or 1, unlike the normal approximation."""
    if n <= 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # k = 0 and k = n give exactly 0 and 1 in exact arithmetic; floating point lands a hair inside
    lower = 0.0 if k <= 0 else max(0.0, centre - half)
    upper = 1.0 if k >= n else min(1.0, centre + half)
    return lower, upper


def exact_agreement(judge: list[JudgeScore], human: list[HumanLabel],
                    pairing: Pairing = "mean") -> list[ExactAgreement]:
    """Per dimension: exact / within-one agreement of the judge with human labels under `pairing`.

    The one definition the CLI (`evaluate agreement`) and the report's judge-quality page share. The
    Wilson intervals treat pairs as independent, which under `each` (several pairs per item) is
    optimistic; `evaluate agreement` gives item-resampled bootstrap intervals.
    """
    from evaluator.calibrate.coded import code_frames, each_pairs, mean_pairs

    coded = code_frames(judge_frame(judge), human_frame(human))
    out = []
    for dim in sorted(coded.dims):
        d = coded.code(dim)
        p = (mean_pairs if pairing == "mean" else each_pairs)(coded.judge.dimension(d, coded.n_items),
                                                              coded.labels.dimension(d, coded.n_items), coded.n_items)
        n = len(p)
        if not n:
            continue
        diff = np.abs(p.judge - p.human)
        k_exact, k_within = float(np.sum(diff < 0.5)), float(np.sum(diff <= 1 + 1e-9))
        exact_lo, exact_hi = wilson(k_exact, n)
        within_lo, within_hi = wilson(k_within, n)
        out.append(ExactAgreement(
            dimension=dim, pairing=pairing, n=n, n_items=len(np.unique(p.items)),
            exact=k_exact / n, exact_lo=exact_lo, exact_hi=exact_hi,
            within_one=k_within / n, within_one_lo=within_lo, within_one_hi=within_hi, mae=float(diff.mean())))
    return out


class CeilingAgreement(BaseModel):
    """The human ceiling on the judge's footing: each rater against the mean of the item's other raters."""

    dimension: str
    n: int
    exact: float | None
    exact_lo: float | None
    exact_hi: float | None
    definition: str = ("each rater vs the mean of the other raters of the item (leave one rater out); "
                       + EXACT_DEFINITION)


def ceiling_agreement(human: list[HumanLabel]) -> list[CeilingAgreement]:
    """Per dimension: how often a rater agrees exactly with the mean of the others (items with two or
    more raters). Compared with `exact_agreement(..., "mean")`, the judge and the humans stand on the
    same footing: both are measured against a mean of raters, never a single rater against a pair."""
    from evaluator.calibrate.coded import JudgeRows, code_frames, leave_one_out_pairs

    frame = human_frame(human)
    items = frame[["transcript", "dimension"]].drop_duplicates()
    # every labelled item stands in for a judge score, so the one leave-one-out join gives the raters' side
    coded = code_frames(items.assign(status="scored", score=0.0), frame)
    out = []
    for dim in sorted(coded.dims):
        d = coded.code(dim)
        labels = coded.labels.dimension(d, coded.n_items)
        rater, _ = leave_one_out_pairs(JudgeRows(labels.ukey, np.zeros(len(labels.ukey))), labels, coded.n_items)
        n = len(rater)
        if not n:
            continue
        k = float(np.sum(np.abs(rater.judge - rater.human) < 0.5))
        lo, hi = wilson(k, n)
        out.append(CeilingAgreement(dimension=dim, n=n, exact=k / n, exact_lo=lo, exact_hi=hi))
    return out
