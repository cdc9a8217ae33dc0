"""The scores a calibration is fitted on and applied to, as arrays: never one object per label.

Why: fitting went through one pydantic record per judge score and per label, grouped again into
per-transcript dicts and per-item rater dicts, about 1 GB at 20,000 items x 6 dimensions x 3
raters before any model was fitted. Here the judge's scores are one float grid (items x
dimensions, NaN unless scored) plus one grid of level probabilities per dimension that has them,
and the labels are integer-coded arrays; a dimension's training data is a few slices of them.

Every definition is the one the records path used, computed in the same order so the numbers are
the same to the last bit: items sorted by id (Python string order, which fixes the folds), the
human consensus of `agreement.human_consensus` (the mean of the raters who scored, summed in label
order), the raters of an item in label order, per-item means of rater offsets as `np.mean` takes
them. Frames are the columns `columns.read_columns` gives (transcript, dimension, status, score,
p1..pK; rater for labels), categorical or not.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluator.calibrate.records import HumanLabel, JudgeScore
from evaluator.errors import BadInput

_PROB = re.compile(r"p(\d+)")
SCORED, NOT_OBSERVED, MISSING = 0, 1, 2


def prob_feature(dim: str, level: int) -> str:
    """The feature name of a dimension's probability of its `level`-th scale level (1 = lowest)."""
    return f"{dim}#p{level}"


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and their names for a categorical or plain text column."""
    cat = pd.Categorical(column)
    return np.asarray(cat.codes, dtype=np.int64), [str(c) for c in cat.categories]


def _status(frame: pd.DataFrame) -> np.ndarray:
    """SCORED (with a number), NOT_OBSERVED or MISSING per row, as the records read them."""
    score = frame["score"].to_numpy(float)
    out = np.full(len(frame), MISSING, dtype=np.int8)
    out[frame["status"].eq("not_observed").to_numpy(bool)] = NOT_OBSERVED
    out[frame["status"].eq("scored").to_numpy(bool) & ~np.isnan(score)] = SCORED
    return out


def _recode(codes: np.ndarray, names: list[str], universe: pd.Index) -> np.ndarray:
    return np.asarray(universe.get_indexer(names), dtype=np.int64)[codes] if len(codes) else codes


@dataclass
class Labels:
    """Scored labels grouped by item (CSR): item k's labels are rows offsets[k]:offsets[k+1], in label
    order; `rater` codes into `names`."""

    offsets: np.ndarray
    rater: np.ndarray
    score: np.ndarray
    names: list[str]

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def item(self) -> np.ndarray:
        """The item (position) of every label row."""
        return np.repeat(np.arange(len(self.offsets) - 1), self.counts)

    def take(self, idx: np.ndarray) -> Labels:
        """The labels of the items `idx`, in that order."""
        counts = self.counts[idx]
        starts = self.offsets[:-1][idx]
        rows = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        return Labels(np.concatenate([[0], np.cumsum(counts)]), self.rater[rows], self.score[rows], self.names)

    def rater_counts(self) -> np.ndarray:
        return np.bincount(self.rater, minlength=len(self.names))

    def item_means(self, per_label: np.ndarray) -> np.ndarray:
        """Each item's mean of a per-label value (0 for an item without labels), computed as np.mean
        computes it: items are grouped by their number of labels and each group summed row-wise."""
        counts = self.counts
        out = np.zeros(len(counts))
        for c in np.unique(counts[counts > 0]):
            items = np.flatnonzero(counts == c)
            rows = self.offsets[:-1][items][:, None] + np.arange(c)[None, :]
            out[items] = per_label[rows].sum(axis=1) / c
        return out

    def item_shift(self, offsets: dict[str, float]) -> np.ndarray:
        """Each item's mean offset of its raters (a rater without an offset: 0; no raters: 0)."""
        per_rater = np.array([offsets.get(name, 0.0) for name in self.names], dtype=float)
        return self.item_means(per_rater[self.rater] if len(self.rater) else np.zeros(0))


@dataclass
class ScoreGrid:
    """Judge scores (items x dimensions, NaN unless scored), where the judge has a row at all, and
    per dimension with level probabilities their number of levels per row (0: none given)."""

    items: pd.Index  # every transcript id of the judge and human frames, sorted
    dims: list[str]
    score: np.ndarray
    present: np.ndarray
    probs: dict[str, np.ndarray]  # dim -> (items x levels) probabilities, NaN where not given
    n_probs: dict[str, np.ndarray]  # dim -> levels given per item
    row_item: np.ndarray  # per judge row: its item and dimension on the grid, and whether it is scored
    row_dim: np.ndarray
    row_scored: np.ndarray

    def column(self, dim: str) -> np.ndarray:
        return self.score[:, self.dims.index(dim)]

    def features(self, names: list[str], prob_levels: dict[str, int], rows: np.ndarray | None = None) -> np.ndarray:
        """(items x features): a dimension's score (NaN unless scored), or `dim#pL` for the dimensions
        fitted with K = prob_levels[dim] level probabilities, where the item gives exactly K of them."""
        columns = {d: self.score[:, j] for j, d in enumerate(self.dims)}
        for d, k in prob_levels.items():
            if d in self.probs and self.probs[d].shape[1] >= k:
                valid = self.n_probs[d] == k
                for level in range(2, k + 1):
                    columns[prob_feature(d, level)] = np.where(valid, self.probs[d][:, level - 1], np.nan)
        n = len(self.items) if rows is None else len(rows)
        out = np.full((n, len(names)), np.nan)
        for j, name in enumerate(names):
            if name in columns:
                out[:, j] = columns[name] if rows is None else columns[name][rows]
        return out

    def prob_levels(self) -> dict[str, int]:
        """Dimension -> number of level probabilities the judge gives (one number per dimension)."""
        seen = {d: sorted(set(n[n > 0].tolist())) for d, n in self.n_probs.items()}
        bad = {d: k for d, k in seen.items() if len(k) > 1}
        if bad:
            raise BadInput(f"level probabilities have different lengths within a dimension: {bad}")
        return {d: k[0] for d, k in seen.items() if k}


@dataclass
class HumanColumns:
    """Human labels on integer codes: item (into the grid's items), rater, dimension, status, score."""

    item: np.ndarray
    rater: np.ndarray
    dim: np.ndarray
    status: np.ndarray
    score: np.ndarray
    raters: list[str]
    dims: list[str]
    said_scored: np.ndarray  # status "scored", with or without a number

    def dimension_rows(self, dim: str) -> np.ndarray:
        return np.flatnonzero(self.dim == self.dims.index(dim)) if dim in self.dims else np.zeros(0, np.int64)

    def consensus(self, dim: str, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labelled, scored, mean) per item for one dimension, as `agreement.human_consensus`: scored
        when at least as many raters scored as said "not observed"; the mean of the scores."""
        rows = self.dimension_rows(dim)
        item, status = self.item[rows], self.status[rows]
        scored = status == SCORED
        n_s = np.bincount(item[scored], minlength=n_items)
        n_no = np.bincount(item[status == NOT_OBSERVED], minlength=n_items)
        total = np.bincount(item[scored], weights=self.score[rows][scored], minlength=n_items)  # label order
        labelled = np.bincount(item, minlength=n_items) > 0
        ok = (n_s > 0) & (n_s >= n_no)
        with np.errstate(invalid="ignore", divide="ignore"):
            return labelled, ok, np.where(ok, total / np.maximum(n_s, 1), np.nan)

    def labels(self, dim: str, items: np.ndarray, *, for_fit: bool = True) -> Labels:
        """The labels of `items` (grid positions, ascending) for one dimension, grouped by item in label
        order. For fitting: scored labels with a number, a rater who labels an item twice counting once
        at their first label with the last value (as a rater -> score dict reads them). For applying:
        every label with status "scored", as the list of an item's raters."""
        rows = self.dimension_rows(dim)
        rows = rows[(self.status[rows] == SCORED) if for_fit else self.said_scored[rows]]
        pos = np.searchsorted(items, self.item[rows])
        # no item (a dimension whose labels are all on transcripts these scores do not have): no label kept
        keep = ((pos < len(items)) & (items[np.minimum(pos, len(items) - 1)] == self.item[rows])) if len(items) \
            else np.zeros(len(rows), dtype=bool)
        rows, pos = rows[keep], pos[keep]
        order = np.argsort(pos, kind="stable")
        rows, pos = rows[order], pos[order]
        score = self.score[rows]
        if for_fit:
            key = pd.Series(pos * max(len(self.raters), 1) + self.rater[rows])
            if key.duplicated().any():
                score = score[key.groupby(key).transform(lambda g: g.index[-1]).to_numpy()]
                first = ~key.duplicated().to_numpy()
                rows, pos, score = rows[first], pos[first], score[first]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(items)))])
        return Labels(offsets, self.rater[rows], score, self.raters)


@dataclass
class CalibrationInput:
    """Judge grid and human label codes over one sorted universe of transcript ids."""

    grid: ScoreGrid
    human: HumanColumns | None

    @classmethod
    def build(cls, judge: pd.DataFrame, human: pd.DataFrame | None) -> CalibrationInput:
        jt, jt_names = _codes(judge["transcript"])
        jd, dims = _codes(judge["dimension"])
        ht, ht_names = _codes(human["transcript"]) if human is not None else (np.zeros(0, np.int64), [])
        universe = pd.Index(sorted(set(jt_names) | set(ht_names)))
        jt = _recode(jt, jt_names, universe)
        n = len(universe)
        # a dimension is in the grid when some row names it (categories a filter left unused are not)
        used = np.unique(jd)
        dims = [dims[k] for k in used]
        jd = np.searchsorted(used, jd)
        score = np.full((n, len(dims)), np.nan)
        present = np.zeros((n, len(dims)), dtype=bool)
        status = _status(judge)
        values = judge["score"].to_numpy(float)
        present[jt, jd] = True
        score[jt, jd] = np.where(status == SCORED, values, np.nan)
        probs, n_probs = {}, {}
        cols = sorted((int(m.group(1)), str(c)) for c in judge.columns if (m := _PROB.fullmatch(str(c))))
        if cols:
            p = judge[[c for _, c in cols]].to_numpy(float)
            given = np.where(np.isnan(p[:, 0]), 0, (~np.isnan(p)).sum(axis=1))
            for j, d in enumerate(dims):
                rows = np.flatnonzero((jd == j) & (given > 0))
                if len(rows):
                    probs[d] = np.full((n, p.shape[1]), np.nan)
                    probs[d][jt[rows]] = p[rows]
                    n_probs[d] = np.zeros(n, dtype=np.int64)
                    n_probs[d][jt[rows]] = given[rows]
        grid = ScoreGrid(universe, dims, score, present, probs, n_probs, jt, jd, status == SCORED)
        if human is None:
            return cls(grid, None)
        hr, raters = _codes(human["rater"])
        hd, hdims = _codes(human["dimension"])
        return cls(grid, HumanColumns(_recode(ht, ht_names, universe), hr, hd, _status(human),
                                      human["score"].to_numpy(float), raters, hdims,
                                      human["status"].eq("scored").to_numpy(bool)))


def labels_fingerprint(human: pd.DataFrame) -> str:
    """sha256 of the labels as the records path wrote them: JSON of the sorted (transcript, rater,
    dimension, status, score) rows. Written in chunks, so the text of 10^6 labels is never whole."""
    parts = []
    for c in ("transcript", "rater", "dimension"):
        codes, names = _codes(human[c])
        rank = np.empty(len(names), dtype=np.int64)
        rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        parts.append((rank[codes] if len(names) else codes, np.array([json.dumps(n) for n in names] or [""],
                                                                    dtype=object)[codes]))
    s_codes, s_names = _codes(human["status"])
    status = np.array([json.dumps(s) for s in s_names] or [""], dtype=object)[s_codes]
    values = human["score"].to_numpy(float)
    uniq, inverse = np.unique(values, return_inverse=True)
    text = np.array(["null" if np.isnan(v) else json.dumps(float(v)) for v in uniq] or ["null"], dtype=object)
    score = text[inverse.reshape(-1)] if len(values) else np.zeros(0, dtype=object)
    order = np.lexsort(tuple(rank for rank, _ in reversed(parts)))
    h = hashlib.sha256(b"[")
    step = 50_000
    for start in range(0, len(order), step):
        rows = order[start:start + step]
        row_text = ("[" + parts[0][1][rows] + ", " + parts[1][1][rows] + ", " + parts[2][1][rows] + ", "
                    + status[rows] + ", " + score[rows] + "]")
        h.update((", " if start else "").encode() + ", ".join(row_text).encode())
    h.update(b"]")
    return h.hexdigest()


def judge_frame_of(judge: Iterable[JudgeScore]) -> pd.DataFrame:
    """Records -> the columns a judge file gives (level probabilities as p1..pK)."""
    judge = list(judge)
    frame = pd.DataFrame({"transcript": [j.transcript for j in judge], "dimension": [j.dimension for j in judge],
                          "status": [j.status for j in judge],
                          "score": [np.nan if j.score is None else float(j.score) for j in judge]})
    k = max((len(j.probs) for j in judge if j.probs), default=0)
    for level in range(1, k + 1):
        frame[f"p{level}"] = [j.probs[level - 1] if j.probs and len(j.probs) >= level else np.nan for j in judge]
    return frame


def human_frame_of(human: Iterable[HumanLabel]) -> pd.DataFrame:
    """Records -> the columns a human file gives."""
    human = list(human)
    return pd.DataFrame({"transcript": [h.transcript for h in human], "rater": [h.rater for h in human],
                         "dimension": [h.dimension for h in human], "status": [h.status for h in human],
                         "score": [np.nan if h.score is None else float(h.score) for h in human]})
