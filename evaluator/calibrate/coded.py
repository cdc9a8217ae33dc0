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
        count = _take(self.count, u, 0)
        c = np.where(count >= min_raters, count, 0)
        pos = np.repeat(np.arange(len(keys)), c)
        within = np.arange(len(pos)) - np.repeat(np.cumsum(c) - c, c)
        return pos, np.repeat(_take(self.start, u, 0), c) + within


def _take(values: np.ndarray, index: np.ndarray, default: int) -> np.ndarray:
    """values[index], `default` where index is -1 (and everywhere when `values` is empty)."""
    if len(values) == 0:
        return np.full(len(index), default, dtype=values.dtype)
    return np.where(index >= 0, values[np.maximum(index, 0)], default)


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
        return _take(self.status, _find(self.ukey, keys), MISSING).astype(np.int8)


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


def shared_categories(judge: pd.DataFrame, human: pd.DataFrame,
                      calibrated: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Transcript, dimension and rater columns as categoricals over one shared set of values, so a
    code means the same item in every frame (and a transcript's code is its resampling unit)."""
    frames = [judge, human] + ([calibrated] if calibrated is not None else [])
    out = [f.copy(deep=False) for f in frames]

    def as_str_category(col: pd.Series) -> pd.Series:
        if isinstance(col.dtype, pd.CategoricalDtype):
            return col.cat.rename_categories(lambda c: str(c))
        return col.astype(str).astype("category")

    for col in ("transcript", "dimension"):
        parts = [as_str_category(f[col]) for f in out]
        values = sorted(set().union(*(set(p.cat.categories) for p in parts)))
        for f, part in zip(out, parts, strict=True):
            f[col] = part.cat.set_categories(values)
    raters = as_str_category(out[1]["rater"])
    out[1]["rater"] = raters.cat.set_categories(sorted(raters.cat.categories), ordered=True)
    return out[0], out[1], (out[2] if calibrated is not None else None)


@dataclass
class Coded:
    """Judge scores and human labels ready to pair: the dimensions both sides have (`dims`, in the
    order asked), their scored labels, the judge rows to pair (scored, with a scored consensus) and
    per dimension the status counts (STATUS_FIELDS)."""

    dim_names: list[str]
    items: list[str]
    dims: list[str]
    labels: CodedLabels
    judge: JudgeRows
    calibrated: JudgeRows | None
    statuses: dict[str, np.ndarray]
    raters: list[str]

    @property
    def n_items(self) -> int:
        return len(self.items)

    def code(self, dim: str) -> int:
        return self.dim_names.index(dim)


def code_frames(judge: pd.DataFrame, human: pd.DataFrame, calibrated: pd.DataFrame | None = None,
                dimension_order: list[str] | None = None) -> Coded:
    """`judge` (and `calibrated`): columns transcript, dimension, status, score; `human`: the same plus
    rater. Dimensions: those of `dimension_order`, then the judge's, that any rater labelled."""
    judge, human, calibrated = shared_categories(judge, human, calibrated)
    dim_names = [str(d) for d in judge["dimension"].cat.categories]
    items = [str(t) for t in judge["transcript"].cat.categories]
    n_items, n_dims = len(items), len(dim_names)

    def keys_of(frame: pd.DataFrame) -> np.ndarray:
        return frame["dimension"].cat.codes.to_numpy(np.int64) * n_items + frame["transcript"].cat.codes.to_numpy()

    hkey = keys_of(human)
    hscore = human["score"].to_numpy(float)
    hcode = status_codes(human["status"], hscore)
    consensus = Consensus.build(hkey, hcode)
    labelled = {dim_names[d] for d in np.unique(consensus.ukey // n_items).tolist()} if n_items else set()
    dims = list(dict.fromkeys((dimension_order or []) + judge["dimension"].drop_duplicates().astype(str).tolist()))
    dims = [d for d in dims if d in labelled]
    wanted = np.zeros(n_dims, dtype=bool)
    wanted[[dim_names.index(d) for d in dims]] = True
    jkey = keys_of(judge)
    jscore = judge["score"].to_numpy(float)
    jcode = status_codes(judge["status"], jscore)
    counts = status_counts(jkey, jcode, consensus, n_items, n_dims)
    scored_h = (hcode == SCORED) & wanted[hkey // n_items]
    labels = CodedLabels.build(hkey[scored_h], human["rater"].cat.codes.to_numpy()[scored_h], hscore[scored_h])
    del hkey, hscore, hcode, scored_h

    def paired(key: np.ndarray, score: np.ndarray, codes: np.ndarray) -> JudgeRows:
        """The judge rows to pair (scored, consensus scored, a wanted dimension), sorted by key."""
        ok = (codes == SCORED) & (consensus.of(key) == SCORED) & wanted[key // n_items]
        order = np.argsort(key[ok], kind="stable")
        return JudgeRows(key[ok][order], score[ok][order])

    cal_rows = None
    if calibrated is not None:
        cscore = calibrated["score"].to_numpy(float)
        cal_rows = paired(keys_of(calibrated), cscore, status_codes(calibrated["status"], cscore))
    return Coded(dim_names=dim_names, items=items, dims=dims, labels=labels, judge=paired(jkey, jscore, jcode),
                 calibrated=cal_rows, statuses={dim_names[d]: row for d, row in enumerate(counts) if row.any()},
                 raters=sorted(map(str, human["rater"].unique().tolist())))
