"""Agreement of the offline baseline judge with human labels on a folder of transcripts.

    .venv/bin/python benchmarks/baseline_agreement.py TRANSCRIPTS_DIR LABELS_CSV [--rubric ID|PATH]
        [--show]

Prints, per dimension, quadratic-weighted kappa, exact agreement and mean bias of the baseline against
the human consensus (mean of raters, as `evaluate agreement` forms it), plus how often one side said
"not observed" where the other gave a score. `--show` lists every disagreement by more than one level.
No store and no model: the baseline is run in process, so this is quick to rerun after editing the
signal tables.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from evaluator.calibrate.agreement import human_consensus, point_metrics
from evaluator.calibrate.labels import load_plain
from evaluator.calibrate.records import ScaleSpec
from evaluator.ingest import load_transcript
from evaluator.judge.baseline import BaselineJudge
from evaluator.rubrics import select_rubric


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transcripts", type=Path)
    ap.add_argument("labels", type=Path)
    ap.add_argument("--rubric", default=str(Path(__file__).resolve().parent.parent / "rubrics/default.yaml"),
                    help="a rubric id or YAML path")
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--gap", type=float, default=1.0, help="with --show: list items off by more than this")
    args = ap.parse_args()
    rubric = select_rubric(args.rubric, None)
    scale = ScaleSpec(min=rubric.scale.min, max=rubric.scale.max)
    consensus = human_consensus(load_plain(args.labels, kind="human", scale=scale))  # type: ignore[arg-type]
    names = sorted({t for t, _ in consensus})
    judge = BaselineJudge()
    scored: dict[tuple[str, str], tuple[str, float | None, str]] = {}
    for name in names:
        out = asyncio.run(judge.judge(load_transcript(args.transcripts / name), rubric))
        for d in out.dimensions:
            scored[(name, d.id)] = (d.status, d.score, d.rationale)
    print(f"{'dimension':16} {'n':>3} {'qwk':>6} {'exact':>6} {'bias':>6}  not-observed mismatches")
    for dim in rubric.dimension_ids:
        js, hs, misses = [], [], []
        for name in names:
            h_status, h_score = consensus.get((name, dim), ("missing", None))
            j_status, j_score, why = scored.get((name, dim), ("missing", None, ""))
            if h_status == "scored" and j_status == "scored":
                js.append(float(j_score))  # type: ignore[arg-type]
                hs.append(float(h_score))  # type: ignore[arg-type]
                if args.show and abs(js[-1] - hs[-1]) > args.gap:
                    print(f"    {name} {dim}: judge {j_score} human {h_score}: {why}")
            elif "missing" not in (h_status, j_status) and h_status != j_status:
                misses.append(f"{name} (judge {j_status if j_score is None else j_score}, human {h_status})")
        m = point_metrics(js, hs, scale)  # type: ignore[arg-type]
        cells = ["  -   " if m[k] is None else f"{m[k]:6.2f}" for k in ("qwk", "exact", "bias")]
        print(f"{dim:16} {len(js):3d} {' '.join(cells)}  "
              + (", ".join(misses) if misses else "none"))


if __name__ == "__main__":
    main()
