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


def scored_labels_frame(human: pd.DataFrame) -> pd.DataFrame:
    """Scored labels with, per (transcript, dimension), the number of raters who scored and their sum."""
    h = human[(human["status"] == "scored") & human["score"].notna()][["transcript", "rater", "dimension", "score"]]
    g = h.groupby(["transcript", "dimension"], sort=False, observed=True)["score"]
    return h.assign(n_raters=g.transform("size"), total=g.transform("sum"))


def judge_pairs(judge: pd.DataFrame, labels: pd.DataFrame, pairing: Pairing) -> pd.DataFrame:
    """Judge scores (columns transcript, dimension, judge, item) paired with human scores (column
    `human`): with the raters' mean under `mean`, with every rater's label (column `rater`) under `each`."""
    if pairing == "mean":
        means = labels.drop_duplicates(["transcript", "dimension"])
        means = means.assign(human=means["total"] / means["n_raters"])[["transcript", "dimension", "human"]]
        return judge.merge(means, on=["transcript", "dimension"])
    return judge.merge(labels[["transcript", "dimension", "rater", "score"]].rename(columns={"score": "human"}),
                       on=["transcript", "dimension"])


def leave_one_out(judge: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per (item, held-out rater) with at least two raters: `rater_score` (the held-out rater), `rest`
    (the mean of the other raters) and `judge`; the like-for-like human ceiling and the judge beside it."""
    h = labels[labels["n_raters"] >= 2]
    h = h.assign(rest=(h["total"] - h["score"]) / (h["n_raters"] - 1)).rename(columns={"score": "rater_score"})
    return judge.merge(h[["transcript", "dimension", "rater", "rater_score", "rest"]], on=["transcript", "dimension"])


def rater_pairs(labels: pd.DataFrame) -> pd.DataFrame:
    """Every pair of raters who scored the same item (first, second: earlier and later rater id).

    Rows sorted by item and rater; the pairs of an item are its rows at offsets 1..m-1 from each
    other, so memory stays linear in the number of pairs (a self-merge would build m^2 rows per item)."""
    h = labels.sort_values(["transcript", "dimension", "rater"], kind="stable").reset_index(drop=True)
    key = h.groupby(["transcript", "dimension"], sort=False, observed=True)
    pos = key.cumcount().to_numpy()
    size = h["n_raters"].to_numpy()
    parts = []
    for offset in range(1, int(size.max()) if len(h) else 1):
        i = np.flatnonzero(pos + offset < size)
        parts.append(pd.DataFrame({"transcript": h["transcript"].to_numpy()[i],
                                   "dimension": h["dimension"].to_numpy()[i],
                                   "first": h["score"].to_numpy()[i], "second": h["score"].to_numpy()[i + offset]}))
    if not parts:
        return pd.DataFrame({"transcript": h["transcript"].iloc[:0], "dimension": h["dimension"].iloc[:0],
                             "first": [], "second": []})
    out = pd.concat(parts, ignore_index=True)
    for col in ("transcript", "dimension"):
        out[col] = pd.Categorical(out[col], dtype=h[col].dtype)
    return out


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
    return max(0.0, centre - half), min(1.0, centre + half)


def exact_agreement(judge: list[JudgeScore], human: list[HumanLabel],
                    pairing: Pairing = "mean") -> list[ExactAgreement]:
    """Per dimension: exact / within-one agreement of the judge with human labels under `pairing`.

    The one definition the CLI (`evaluate agreement`) and the report's judge-quality page share. The
    Wilson intervals treat pairs as independent, which under `each` (several pairs per item) is
    optimistic; `evaluate agreement` gives item-resampled bootstrap intervals.
    """
    j = judge_frame(judge)
    j = j[(j["status"] == "scored") & j["score"].notna()].rename(columns={"score": "judge"})
    pairs = judge_pairs(j[["transcript", "dimension", "judge"]], scored_labels_frame(human_frame(human)), pairing)
    out = []
    for dim, p in pairs.groupby("dimension", sort=True, observed=True):
        n = len(p)
        diff = (p["judge"] - p["human"]).abs().to_numpy()
        k_exact, k_within = float(np.sum(diff < 0.5)), float(np.sum(diff <= 1 + 1e-9))
        exact_lo, exact_hi = wilson(k_exact, n)
        within_lo, within_hi = wilson(k_within, n)
        out.append(ExactAgreement(
            dimension=str(dim), pairing=pairing, n=n, n_items=int(p["transcript"].nunique()),
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
    labels = scored_labels_frame(human_frame(human))
    h = labels[labels["n_raters"] >= 2]
    rest = (h["total"] - h["score"]) / (h["n_raters"] - 1)
    diff = (h["score"] - rest).abs()
    out = []
    for dim, d in diff.groupby(h["dimension"], sort=True, observed=True):
        n = len(d)
        k = float(np.sum(d.to_numpy() < 0.5))
        lo, hi = wilson(k, n)
        out.append(CeilingAgreement(dimension=str(dim), n=n, exact=k / n if n else None, exact_lo=lo, exact_hi=hi))
    return out
