"""Every agreement statistic from weighted sufficient statistics, and a cluster bootstrap that scales.

Why this shape: a bootstrap resample of transcripts is a vector of counts (how often each transcript
was drawn). Every statistic the agreement report gives is a function of three count-weighted sums:

- per-row sums (n, exact, within one, |d|, d, d², x, y, x², y², xy): mean error, bias, RMSE, exact,
  within-one, Pearson and interval-level Krippendorff alpha;
- the table of (judge level, human level) counts after rounding to the scale: QWK, ordinal alpha;
- the table of (judge value, human value) counts: Spearman (mid-ranks from the margins) and
  Kendall tau-b (concordant minus discordant pairs by 2-D cumulative sums, O(cells) per resample,
  ties counted as scipy does).

So a resample costs one matrix product with the counts, never a sort or a pairwise comparison:
10 dimensions x 100,000 transcripts x 1,000 resamples runs in seconds (benchmarks/agreement_bench.py).
Resamples are processed in chunks, so memory is bounded whatever the number of resamples.

One documented shortcut: when a side has more than RANK_BINS distinct values (a continuous expected
score), the value table groups that side into RANK_BINS quantile bins, for the resamples' Spearman and
Kendall only. Ties are then slightly more frequent than in the data; point estimates always use the
exact values (scipy), and every other statistic uses exact values in the resamples too.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse

from evaluator.calibrate.records import ScaleSpec

RANK_BINS = 256
_EPS = 1e-9
_CHUNK_CELLS = 6_000_000  # resamples x columns held at once (~48 MB of float64 per array)
_SUMS = ("n", "exact", "within_one", "absdiff", "diff", "sqdiff", "x", "y", "xx", "yy", "xy")


def to_levels(x: np.ndarray, scale: ScaleSpec) -> np.ndarray:
    """Round half up to the nearest level and clip to the scale (for kappa and confusion matrices)."""
    return np.clip(np.floor(np.asarray(x, dtype=float) + 0.5), scale.min, scale.max).astype(np.int32)


def is_integral(values: np.ndarray, scale: ScaleSpec) -> bool:
    """True when every value is a level of the scale: then alpha is ordinal, else interval."""
    v = np.asarray(values, dtype=float)
    return bool(len(v) == 0 or (v.min() >= scale.min and v.max() <= scale.max
                                and np.abs(v - np.round(v)).max() < 1e-9))


def _rank_bins(v: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Index of each value among the distinct values (or among RANK_BINS quantile bins), the number
    of bins, and whether values were grouped."""
    uniq, idx = np.unique(v, return_inverse=True)
    if len(uniq) <= RANK_BINS:
        return idx.astype(np.int32), len(uniq), False
    del idx
    edges = np.unique(np.quantile(v, np.linspace(0, 1, RANK_BINS + 1)[1:-1]))
    return np.searchsorted(edges, v, side="right").astype(np.int32), len(edges) + 1, True


def _cluster_sums(a: np.ndarray, b: np.ndarray, cluster_idx: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster, the sums named in _SUMS; one column at a time, so memory stays a few vectors
    whatever the number of rows."""
    d = a - b
    absd = np.abs(d)
    columns = (lambda: None, lambda: absd < 0.5, lambda: absd <= 1 + _EPS, lambda: absd, lambda: d,
               lambda: d * d, lambda: a, lambda: b, lambda: a * a, lambda: b * b, lambda: a * b)
    return np.column_stack([np.bincount(cluster_idx, weights=make(), minlength=n_clusters) for make in columns])


class Prepared:
    """One comparison (judge vs human, rater vs rater, ...) reduced to per-cluster sufficient statistics."""

    def __init__(self, first, second, cluster_idx: np.ndarray, n_clusters: int, scale: ScaleSpec):
        a = np.asarray(first, dtype=float)
        b = np.asarray(second, dtype=float)
        self.n = len(a)
        self.scale = scale
        self.k = scale.max - scale.min + 1
        self.alpha_level = "ordinal" if is_integral(a, scale) and is_integral(b, scale) else "interval"
        self.F = _cluster_sums(a, b, cluster_idx, n_clusters)
        ix, vx, bx = _rank_bins(a)
        iy, vy, by = _rank_bins(b)
        self.shape = (vx, vy)
        self.binned = bx or by  # rank statistics of the data itself then come from scipy on exact values
        # one sparse matrix per cluster row: the value-table cells, then the level-table cells (one
        # product per resample chunk); int32 cells and float32 counts (whole numbers far below 2^24,
        # held exactly) keep the transient memory near 12 bytes a pair
        cells = np.empty(2 * self.n, dtype=np.int32)
        cells[:self.n] = ix * vy + iy
        del ix, iy
        cells[self.n:] = vx * vy + (to_levels(a, scale) - scale.min) * self.k + (to_levels(b, scale) - scale.min)
        rows = np.concatenate([cluster_idx, cluster_idx]).astype(np.int32)
        width = vx * vy + self.k ** 2
        self.tables = sparse.coo_matrix((np.ones(2 * self.n, dtype=np.float32), (rows, cells)),
                                        shape=(n_clusters, width)).tocsr()
        self.tables.sum_duplicates()

    def stats(self, weights: np.ndarray, counts_t: np.ndarray | None = None,
              sums: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every statistic for each row of a (resamples x clusters) weight matrix. A caller with several
        comparisons passes, made once per chunk, `counts_t` (the same weights as a C-contiguous float32
        clusters x resamples matrix: the layout the sparse product wants; a transposed view is copied
        inside scipy on every call) and `sums` (weights @ F, from one product with every comparison's F
        side by side: the weights are read once, not once per comparison)."""
        s = weights @ self.F if sums is None else sums
        if counts_t is None:
            counts_t = np.ascontiguousarray(weights.T, dtype=np.float32)
        t = (self.tables.T @ counts_t).T.astype(float)
        cut = self.shape[0] * self.shape[1]
        return table_stats(s, t[:, :cut].reshape(-1, *self.shape), t[:, cut:].reshape(-1, self.k, self.k),
                           self.alpha_level)

    def point(self) -> dict[str, float]:
        """The same statistics on the data as they are (every cluster once)."""
        s = self.F.sum(axis=0)[None, :]
        t = np.asarray(self.tables.sum(axis=0, dtype=float), dtype=float)
        cut = self.shape[0] * self.shape[1]
        out = table_stats(s, t[:, :cut].reshape(-1, *self.shape), t[:, cut:].reshape(-1, self.k, self.k),
                          self.alpha_level)
        return {k: float(v[0]) for k, v in out.items()}


def _weighted_corr(sxy, sx, sy, sxx, syy, n):
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        vx = sxx - sx * sx / n
        vy = syy - sy * sy / n
        ok = (vx > _EPS * np.maximum(1, sxx)) & (vy > _EPS * np.maximum(1, syy))
        r = np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1)), np.nan)
    return np.clip(r, -1, 1)


def _kendall_tau_b(t: np.ndarray) -> np.ndarray:
    """tau-b of each (resample, x bin, y bin) count table: (C - D) / sqrt((n0 - tx)(n0 - ty))."""
    above = np.cumsum(t, axis=1) - t  # rows with smaller x, same y
    below_left = np.cumsum(above, axis=2) - above  # smaller x, smaller y
    below_right = above.sum(axis=2, keepdims=True) - np.cumsum(above, axis=2)  # smaller x, larger y
    con = (t * below_left).sum(axis=(1, 2))
    dis = (t * below_right).sum(axis=(1, 2))
    n = t.sum(axis=(1, 2))
    cx, cy = t.sum(axis=2), t.sum(axis=1)
    n0 = n * (n - 1) / 2
    tx = (cx * (cx - 1) / 2).sum(axis=1)
    ty = (cy * (cy - 1) / 2).sum(axis=1)
    den = (n0 - tx) * (n0 - ty)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > _EPS, (con - dis) / np.sqrt(np.where(den > _EPS, den, 1)), np.nan)


def _spearman(t: np.ndarray) -> np.ndarray:
    """Pearson of mid-ranks, the ranks read off the margins of each count table (as scipy's spearmanr)."""
    cx, cy = t.sum(axis=2), t.sum(axis=1)
    rx = np.cumsum(cx, axis=1) - cx + (cx + 1) / 2
    ry = np.cumsum(cy, axis=1) - cy + (cy + 1) / 2
    n = cx.sum(axis=1)
    sxy = np.einsum("bu,buv,bv->b", rx, t, ry)
    return _weighted_corr(sxy, (cx * rx).sum(1), (cy * ry).sum(1), (cx * rx * rx).sum(1), (cy * ry * ry).sum(1), n)


def _qwk(conf: np.ndarray) -> np.ndarray:
    """Quadratic-weighted kappa of each (resample, judge level, human level) table, as sklearn's."""
    k = conf.shape[1]
    n = conf.sum(axis=(1, 2))
    rows, cols = conf.sum(axis=2), conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rows[:, :, None] * cols[:, None, :] / np.where(n > 0, n, 1)[:, None, None]
    grid = np.arange(k)
    w = (grid[:, None] - grid[None, :]) ** 2
    num = (w * conf).sum(axis=(1, 2))
    den = (w * expected).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > _EPS, 1 - num / np.where(den > _EPS, den, 1), np.nan)


def _alpha_ordinal(conf: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal alpha, two coders, no missing values, per table (as krippendorff.alpha)."""
    k = conf.shape[1]
    o = conf + conf.transpose(0, 2, 1)
    nv = o.sum(axis=2)
    cum = np.cumsum(nv, axis=1)
    grid = np.arange(k)
    lo = np.minimum(grid[:, None], grid[None, :])
    hi = np.maximum(grid[:, None], grid[None, :])
    between = cum[:, hi] - cum[:, lo] + nv[:, lo]
    delta = (between - (nv[:, :, None] + nv[:, None, :]) / 2) ** 2
    total = nv.sum(axis=1)
    d_o = (o * delta).sum(axis=(1, 2))
    d_e = (nv[:, :, None] * nv[:, None, :] * delta).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d_e > _EPS, 1 - (total - 1) * d_o / np.where(d_e > _EPS, d_e, 1), np.nan)


def _alpha_interval(s: dict[str, np.ndarray]) -> np.ndarray:
    """Krippendorff's interval alpha for two coders: 1 - (N-1) sum d^2 / (N sum (v - mean)^2), N = 2n values."""
    n_values = 2 * s["n"]
    total = s["x"] + s["y"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ss = s["xx"] + s["yy"] - total * total / np.where(n_values > 0, n_values, 1)
        ok = ss > _EPS * np.maximum(1, s["xx"] + s["yy"])
        return np.where(ok, 1 - (n_values - 1) * s["sqdiff"] / np.where(ok, n_values * ss, 1), np.nan)


def table_stats(sums: np.ndarray, values: np.ndarray, levels: np.ndarray, alpha_level: str) -> dict[str, np.ndarray]:
    """Every statistic from per-resample sufficient sums, vectorised over the resamples."""
    s = {name: sums[:, j] for j, name in enumerate(_SUMS)}
    n = s["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n > 0, n, np.nan)
        out = {
            "exact": s["exact"] / m, "within_one": s["within_one"] / m, "mae": s["absdiff"] / m,
            "rmse": np.sqrt(s["sqdiff"] / m), "bias": s["diff"] / m,
        }
    out["pearson"] = _weighted_corr(s["xy"], s["x"], s["y"], s["xx"], s["yy"], n)
    out["spearman"] = _spearman(values)
    out["kendall"] = _kendall_tau_b(values)
    out["qwk"] = _qwk(levels)
    out["krippendorff_alpha"] = _alpha_ordinal(levels) if alpha_level == "ordinal" else _alpha_interval(s)
    return out


class Resampler:
    """Count vectors of a cluster bootstrap, drawn once per (clusters, resamples, seed) and reused by
    every comparison over the same clusters, so dimensions share resamples (and the cost of drawing)."""

    def __init__(self, n_clusters: int, n_boot: int, seed: int):
        self.n_clusters = n_clusters
        self.n_boot = n_boot
        self.seed = seed
        self._blocks: list[np.ndarray] | None = None

    def chunk_size(self, width: int) -> int:
        return max(1, min(self.n_boot, _CHUNK_CELLS // max(1, width, self.n_clusters)))

    def chunks(self, width: int = 0) -> Iterator[np.ndarray]:
        """(resamples x clusters) float count matrices, in chunks that bound memory."""
        for block in self.count_chunks(width):
            yield block.astype(float)

    def count_chunks(self, width: int = 0) -> Iterator[np.ndarray]:
        """The same chunks as stored (small unsigned integers), for callers that convert once."""
        if self._blocks is None:
            self._blocks = self._draw()
        step = self.chunk_size(width)
        for block in self._blocks:
            for s in range(0, len(block), step):
                yield block[s:s + step]

    def _draw(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        u = self.n_clusters
        blocks, step = [], self.chunk_size(0)
        dtype = np.uint8 if u < 255 or u > 10_000 else np.uint16  # counts above 255 need ~255 draws of one item
        for s in range(0, self.n_boot, step):
            b = min(step, self.n_boot - s)
            picks = rng.integers(0, u, size=(b, u))
            counts = np.stack([np.bincount(row, minlength=u) for row in picks])
            blocks.append(counts.astype(dtype) if counts.max() <= np.iinfo(dtype).max else counts)
        return blocks


def bootstrap_distribution(prep: Prepared, resampler: Resampler) -> dict[str, np.ndarray]:
    """One comparison's statistics on every resample (bootstrap_distributions for one)."""
    return bootstrap_distributions([prep], resampler)[0]


def bootstrap_distributions(preps: list[Prepared], resampler: Resampler) -> list[dict[str, np.ndarray]]:
    """Each comparison's statistics on every resample, in one pass over the resamples: a chunk of counts
    is made once and used by every comparison (all share the resampled units)."""
    width = max([p.F.shape[1] + p.shape[0] * p.shape[1] * 4 + p.k ** 2 for p in preps] + [1])
    parts: list[dict[str, list[np.ndarray]]] = [{} for _ in preps]
    side_by_side = np.hstack([p.F for p in preps]) if preps else np.zeros((resampler.n_clusters, 0))
    for counts in resampler.count_chunks(width):
        w = counts.astype(float)
        all_sums = w @ side_by_side
        counts_t = np.ascontiguousarray(counts.T, dtype=np.float32)
        for i, (prep, acc) in enumerate(zip(preps, parts, strict=True)):
            sums = all_sums[:, i * len(_SUMS):(i + 1) * len(_SUMS)]
            for name, values in prep.stats(w, counts_t, sums).items():
                acc.setdefault(name, []).append(values)
    return [{name: np.concatenate(v) for name, v in acc.items()} for acc in parts]


def cluster_index(clusters: list[str], universe: dict[str, int] | None = None) -> tuple[np.ndarray, int]:
    """Integer cluster ids (in a shared universe when given, so resamples are shared)."""
    if universe is not None:
        return np.array([universe[c] for c in clusters], dtype=np.int64), len(universe)
    uniq, inv = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    return inv.astype(np.int64), len(uniq)
