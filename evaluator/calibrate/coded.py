"""Judge scores and human labels on integer codes: the pairings of pairing.py as sorts and index
arithmetic, so agreement over 10^6 judge rows and several raters each stays within a few hundred MB.

Why not DataFrame merges: a merge of 10^6 judge rows with 3 x 10^6 labels builds hash tables and
object columns several times the size of the data, and freed pandas memory is rarely returned to the
system, so the process peak grows with every merge. Here every row is a `key = dimension * n_items +
item` (int64); sorting by key puts each dimension's rows together, so a dimension's pairs are one
slice of the arrays, built when that dimension is measured and released after; the pooled pairs are
built once from the whole arrays, one comparison at a time.

Definitions (the same as pairing.py's, which documents them):
- the human consensus of an item is "scored" when at least as many raters scored it as said "not
  observed", "not_observed" when more said so, "missing" otherwise;
- a judge score is paired when the judge scored the item and the consensus is "scored";
- `mean` pairs it with the mean of the raters who scored; `each` with every rater's score;
- leave-one-out pairs each rater of an item with two or more raters with the mean of the others (and
  the judge with that same mean); rater pairs are every two raters of an item (earlier rater id first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluator.calibrate.pairing import Pairs

STATUS_FIELDS = ("both_scored", "both_not_observed", "judge_not_observed_human_scored",
                 "human_not_observed_judge_scored", "no_judge_score", "no_human_label")
SCORED, NOT_OBSERVED, MISSING = 0, 1, 2


def _slice(key: np.ndarray, dim: int, n_items: int) -> slice:
    lo, hi = np.searchsorted(key, [dim * n_items, (dim + 1) * n_items])
    return slice(int(lo), int(hi))


@dataclass
class JudgeRows:
    """The judge scores to pair, sorted by key."""

    key: np.ndarray
    score: np.ndarray

    def dimension(self, dim: int, n_items: int) -> JudgeRows:
        cut = _slice(self.key, dim, n_items)
        return JudgeRows(self.key[cut], self.score[cut])


@dataclass
class CodedLabels:
    """Scored human labels sorted by (key, rater), with per labelled key its first row, the number of
    raters who scored it and their total."""

    key: np.ndarray
    rater: np.ndarray
    score: np.ndarray
    ukey: np.ndarray
    start: np.ndarray
    count: np.ndarray
    total: np.ndarray

    @classmethod
    def build(cls, key: np.ndarray, rater: np.ndarray, score: np.ndarray) -> CodedLabels:
        order = np.lexsort((rater, key))
        key, rater, score = key[order], rater[order].astype(np.int32), score[order].astype(float)
        ukey, start, count = np.unique(key, return_index=True, return_counts=True)
        total = np.add.reduceat(score, start) if len(score) else np.zeros(0)
        return cls(key, rater, score, ukey, start, count, total)

    def dimension(self, dim: int, n_items: int) -> CodedLabels:
        """One dimension's labels: views of the arrays, first rows re-based to the slice."""
        rows, keys = _slice(self.key, dim, n_items), _slice(self.ukey, dim, n_items)
        return CodedLabels(self.key[rows], self.rater[rows], self.score[rows], self.ukey[keys],
                           self.start[keys] - rows.start, self.count[keys], self.total[keys])

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Index of each key among the labelled keys, -1 where no rater scored it."""
        return _find(self.ukey, keys)

    def join(self, keys: np.ndarray, min_raters: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(position in `keys`, label row) for every scored label of each key whose item has at least
        `min_raters` raters; ordered as `keys` then rater, so sorted keys give sorted output."""
        u = self.find(keys)
        safe = np.maximum(u, 0)
        c = np.where((u >= 0) & (self.count[safe] >= min_raters), self.count[safe], 0)
        pos = np.repeat(np.arange(len(keys)), c)
        within = np.arange(len(pos)) - np.repeat(np.cumsum(c) - c, c)
        return pos, np.repeat(self.start[safe], c) + within


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1)


def status_codes(status: pd.Series, score: np.ndarray) -> np.ndarray:
    """SCORED (with a number), NOT_OBSERVED, or MISSING for each row (int8; compared on the column as
    it is, a categorical's codes at 10^6 rows, never a copy as strings)."""
    out = np.full(len(status), MISSING, dtype=np.int8)
    out[status.eq("not_observed").to_numpy(bool)] = NOT_OBSERVED
    out[status.eq("scored").to_numpy(bool) & np.isfinite(score)] = SCORED
    return out


@dataclass
class Consensus:
    """The human consensus status of every key any rater labelled (sorted keys)."""

    ukey: np.ndarray
    status: np.ndarray

    @classmethod
    def build(cls, key: np.ndarray, codes: np.ndarray) -> Consensus:
        ukey, inv = np.unique(key, return_inverse=True)
        n_s = np.bincount(inv, weights=codes == SCORED, minlength=len(ukey))
        n_no = np.bincount(inv, weights=codes == NOT_OBSERVED, minlength=len(ukey))
        status = np.where((n_s > 0) & (n_s >= n_no), SCORED, np.where(n_no > 0, NOT_OBSERVED, MISSING))
        return cls(ukey, status.astype(np.int8))

    def of(self, keys: np.ndarray) -> np.ndarray:
        u = _find(self.ukey, keys)
        return np.where(u >= 0, self.status[np.maximum(u, 0)], MISSING).astype(np.int8)


def status_counts(jkey: np.ndarray, jcode: np.ndarray, consensus: Consensus, n_items: int,
                  n_dims: int) -> np.ndarray:
    """(n_dims x 6) counts of STATUS_FIELDS: every judge row against its item's consensus, plus every
    labelled item the judge has no row for."""
    hs = consensus.of(jkey)
    field = np.full(len(jkey), -1, dtype=np.int8)
    for f, (j, h) in enumerate([(SCORED, SCORED), (NOT_OBSERVED, NOT_OBSERVED), (NOT_OBSERVED, SCORED),
                                (SCORED, NOT_OBSERVED)]):
        field[(jcode == j) & (hs == h)] = f
    field[jcode == MISSING] = 4
    field[hs == MISSING] = 5
    unjudged = _find(np.unique(jkey), consensus.ukey) < 0
    keep = field >= 0
    dims = np.concatenate([jkey[keep] // n_items, consensus.ukey[unjudged] // n_items])
    fields = np.concatenate([field[keep], np.where(consensus.status[unjudged] == MISSING, 5, 4).astype(np.int8)])
    return np.bincount(dims * 6 + fields, minlength=n_dims * 6).reshape(n_dims, 6)


def mean_pairs(judge: JudgeRows, labels: CodedLabels, n_items: int) -> Pairs:
    """Judge vs the mean of the raters who scored the item."""
    u = labels.find(judge.key)
    ok = u >= 0
    u = u[ok]
    return Pairs(judge.score[ok], labels.total[u] / labels.count[u], (judge.key[ok] % n_items).astype(np.int32))


def each_pairs(judge: JudgeRows, labels: CodedLabels, n_items: int) -> Pairs:
    """Judge vs every rater's label of the item."""
    pos, row = labels.join(judge.key)
    return Pairs(judge.score[pos], labels.score[row], (judge.key[pos] % n_items).astype(np.int32))


def leave_one_out_pairs(judge: JudgeRows, labels: CodedLabels, n_items: int) -> tuple[Pairs, Pairs]:
    """(held-out rater vs the mean of the others, judge vs that same mean), items with 2+ raters."""
    pos, row = labels.join(judge.key, min_raters=2)
    k = judge.key[pos]
    u = labels.find(k)
    rest = (labels.total[u] - labels.score[row]) / (labels.count[u] - 1)
    items = (k % n_items).astype(np.int32)
    return Pairs(labels.score[row], rest, items), Pairs(judge.score[pos], rest, items)


def rater_pairs(labels: CodedLabels, n_items: int) -> Pairs:
    """Every two raters of the same item (first: earlier rater id). The rows of an item are its
    labels at offsets 1..m-1 from each other, so memory is linear in the number of pairs."""
    pos = np.arange(len(labels.key)) - np.repeat(labels.start, labels.count)
    size = np.repeat(labels.count, labels.count)
    firsts, seconds = [], []
    for offset in range(1, int(labels.count.max()) if len(labels.count) else 1):
        i = np.flatnonzero(pos + offset < size)
        firsts.append(i)
        seconds.append(i + offset)
    if not firsts:
        return Pairs.concat([])
    first = np.concatenate(firsts)
    second = np.concatenate(seconds)
    return Pairs(labels.score[first], labels.score[second], (labels.key[first] % n_items).astype(np.int32))


def system_pairs(judge: JudgeRows, labels: CodedLabels, n_items: int, system_of_item: np.ndarray,
                 n_systems: int) -> Pairs:
    """One pair per (dimension, system): the mean judge and mean human score (raters' mean per item)
    over the system's items (items without a system are left out); `items` is then the system, the
    resampling unit."""
    u = labels.find(judge.key)
    ok = u >= 0
    key, u = judge.key[ok], u[ok]
    s = system_of_item[key % n_items]
    has = s >= 0
    key2 = (key[has] // n_items) * n_systems + s[has]
    groups, inv, n = np.unique(key2, return_inverse=True, return_counts=True)
    mean_judge = np.bincount(inv, weights=judge.score[ok][has], minlength=len(groups)) / n
    mean_human = np.bincount(inv, weights=(labels.total[u] / labels.count[u])[has], minlength=len(groups)) / n
    return Pairs(mean_judge, mean_human, (groups % n_systems).astype(np.int32))
