"""How well does the offline baseline judge agree with labels it was never tuned on?

Judges every transcript of a labelled set with the baseline (no store, no network) and prints, per
dimension, quadratic-weighted kappa against each rater with a bootstrap interval over transcripts,
the same for the raters against each other (the ceiling), MAE and mean bias against the raters' mean,
and how often "not observed" matches.

    python benchmarks/heldout_bench.py                                  # datasets/heldout
    python benchmarks/heldout_bench.py --set datasets/baseline_dev       # the baseline's own dev set
    python benchmarks/heldout_bench.py --set datasets/baseline_dev2      # the second dev set (other formats)
    python benchmarks/heldout_bench.py --transcripts transcripts --labels datasets/sample_labels.csv

The held-out set (datasets/heldout) is never used to tune the baseline's signals: tuning to the
labels we measure on would flatter us. Scores on "not observed" items are left out of kappa (a status,
not a number) and counted separately.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.pipeline import EvaluateRequest, evaluate_file  # noqa: E402

Labels = dict[str, dict[str, dict[str, str]]]  # rater -> transcript -> dimension -> cell


def read_labels(paths: list[Path]) -> Labels:
    """Long-form CSVs (transcript,rater,dimension,score); an empty score is a missing label."""
    out: Labels = defaultdict(lambda: defaultdict(dict))
    for path in paths:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                cell = (row.get("score") or "").strip()
                if cell:
                    out[row["rater"].strip()][Path(row["transcript"].strip()).name][row["dimension"].strip()] = cell
    return out


def judge_all(folder: Path, names: set[str]) -> dict[str, dict[str, str]]:
    """Baseline scores per transcript and dimension, as label cells (a number or not_observed)."""
    scores: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        path = folder / name
        if not path.exists():
            print(f"  missing transcript: {path}", file=sys.stderr)
            continue
        result = evaluate_file(EvaluateRequest(transcript=path, store=False))
        scores[name] = {d.id: (str(d.score) if d.status == "scored" else d.status) for d in result.judgment.dimensions}
    return scores


def _qwk(a: np.ndarray, b: np.ndarray, levels: list[int]) -> float | None:
    if len(a) < 3 or len(set(a.tolist()) | set(b.tolist())) < 2:
        return None
    value = cohen_kappa_score(a, b, weights="quadratic", labels=levels)
    return None if np.isnan(value) else float(value)


def qwk_with_ci(a: list[int], b: list[int], levels: list[int], n_boot: int, rng: np.random.Generator
                ) -> tuple[float | None, tuple[float, float] | None]:
    """QWK and a 95% percentile interval, resampling items (one item = one transcript here)."""
    x, y = np.array(a), np.array(b)
    point = _qwk(x, y, levels)
    if point is None:
        return None, None
    boots = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        value = _qwk(x[idx], y[idx], levels)
        if value is not None:
            boots.append(value)
    if len(boots) < n_boot // 2:
        return point, None
    return point, (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))


def _fmt(value: float | None, ci: tuple[float, float] | None = None) -> str:
    if value is None:
        return "   n/a          "
    text = f"{value:5.2f}"
    return text + (f" [{ci[0]:5.2f},{ci[1]:5.2f}]" if ci else " [  n/a      ]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=ROOT / "datasets" / "heldout",
                        help="a folder with labels*.csv and the transcripts (in transcripts/ or beside the labels)")
    parser.add_argument("--transcripts", type=Path, help="transcript folder (instead of --set)")
    parser.add_argument("--labels", type=Path, nargs="+", help="label CSVs (instead of --set)")
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # A set keeps its transcripts in transcripts/, or (like datasets/baseline_dev) beside its labels.
    folder = args.transcripts or (args.set / "transcripts" if (args.set / "transcripts").is_dir() else args.set)
    label_files = args.labels or sorted(args.set.glob("labels*.csv"))
    if not label_files:
        print(f"no label files found for {folder}", file=sys.stderr)
        return 2
    labels = read_labels(label_files)
    raters = sorted(labels)
    names = {t for r in raters for t in labels[r]}
    judge = judge_all(folder, names)
    dims = sorted({d for r in raters for t in labels[r].values() for d in t}, key=lambda d: (
        ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"] + [d]).index(d))
    levels = [1, 2, 3, 4, 5]
    rng = np.random.default_rng(args.seed)
    print(f"set: {folder}  transcripts judged: {len(judge)}  raters: {', '.join(raters)}  bootstrap: {args.boot}")
    header = f"{'dimension':<15} {'rater':<9} {'n':>3}  {'QWK [95% CI]':<22} {'MAE':>5} {'bias':>6}  not_observed match"
    print(header)
    print("-" * len(header))
    for dim in dims:
        for rater in raters:
            pairs = [(int(judge[t][dim]), int(cells[dim])) for t, cells in labels[rater].items()
                     if t in judge and dim in cells and dim in judge[t]
                     and judge[t][dim].isdigit() and cells[dim].isdigit()]
            no = [(judge[t].get(dim) == "not_observed", cells[dim] == "not_observed")
                  for t, cells in labels[rater].items() if t in judge and dim in cells]
            agree_no = sum(a == b for a, b in no)
            qwk, ci = qwk_with_ci([p[0] for p in pairs], [p[1] for p in pairs], levels, args.boot, rng)
            diffs = np.array([p[0] - p[1] for p in pairs], dtype=float)
            mae = f"{np.abs(diffs).mean():5.2f}" if len(diffs) else "  n/a"
            bias = f"{diffs.mean():+6.2f}" if len(diffs) else "   n/a"
            print(f"{dim:<15} {rater:<9} {len(pairs):>3}  {_fmt(qwk, ci):<22} {mae:>5} {bias:>6}  {agree_no}/{len(no)}")
        if len(raters) >= 2:
            a, b = raters[0], raters[1]
            pairs = [(int(labels[a][t][dim]), int(labels[b][t][dim])) for t in labels[a]
                     if t in labels[b] and dim in labels[a][t] and dim in labels[b][t]
                     and labels[a][t][dim].isdigit() and labels[b][t][dim].isdigit()]
            qwk, ci = qwk_with_ci([p[0] for p in pairs], [p[1] for p in pairs], levels, args.boot, rng)
            print(f"{dim:<15} {a[-1] + ' vs ' + b[-1]:<9} {len(pairs):>3}  {_fmt(qwk, ci):<22}   (human-human ceiling)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
