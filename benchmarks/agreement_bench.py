"""Benchmark: judge-human agreement at research scale, and calibration fitted on A, applied to B.

    python benchmarks/agreement_bench.py [--items 100000] [--dims 10] [--raters 2] [--bootstrap 1000]
    python benchmarks/agreement_bench.py --calibration [--items 3000]
    python benchmarks/agreement_bench.py --via-files [--items 100000] [--dims 10] [--raters 3]
    python benchmarks/agreement_bench.py --calibrate [--items 20000] [--dims 6] [--raters 3] [--bootstrap 0]

Agreement: ITEMS transcripts x DIMS dimensions of fractional judge scores (expected scores, every value
distinct: the hardest case for rank statistics and alpha) against RATERS integer labels per item,
with BOOTSTRAP resamples, through `evaluator.calibrate.agreement.agreement` (the function the CLI
calls). Prints CPU time, wall time, the machine's load average before and after (on a shared
machine wall time measures the neighbours too) and peak memory (ru_maxrss of this process: the
input frames included). Run both pairings: `--pairing each --raters 3` is the largest case (3
million pairs per pooled comparison).

--via-files: the whole CLI path of `evaluate agreement --judge J --human H`: writes a wide judge CSV
(one row per item, one column per dimension) and a wide human CSV (one row per item and rater) to a
temporary folder, then times `evaluator.calibrate.service.run_agreement` (the one library function
the CLI calls: reading, validating and measuring) and prints CPU, wall, load and peak memory.

--calibrate: the CLI path of `evaluate calibrate --judge J --human H --out C` (fit) and of
`evaluate calibrated --judge J --human H --calibration C` (apply, per-rater offsets included) on the
wide CSV files of --via-files. Each stage runs in a fresh process, so each peak memory is that stage's
own; prints CPU, wall, load and peak resident memory per stage. Resamples default to 0 here (the
held-out intervals cost the same CPU whatever the data layout; pass --bootstrap to include them).

--calibration: two synthetic datasets labelled by the same raters (each with a personal offset), a
judge that is lenient, bent and mixes two dimensions; fits on A and prints, per dimension, the chosen
method's cross-validated MAE on A next to its MAE when applied to B: the honest check that the CV
estimate carries over. No assertions: targets are read by people.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

from evaluator.calibrate.records import HumanLabel, JudgeScore, ScaleSpec


def synthetic(items: int, dims: int, raters: int, seed: int, offsets: np.ndarray | None = None,
              prefix: str = "t", per_item: int | None = None,
              low: float = 1.0) -> tuple[list[JudgeScore], list[HumanLabel]]:
    """Records: a lenient, bent judge (dimension 0 mixed with dimension 1); raters with personal
    offsets; each item labelled by `per_item` raters drawn at random (all when None)."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(low, 5, (items, dims))
    judge_values = np.clip(1 + 4 * ((truth - 1) / 4) ** 0.6 + 0.4 + rng.normal(0, 0.5, truth.shape), 1, 5)
    if dims > 1:
        judge_values[:, 0] = np.clip(0.6 * judge_values[:, 0] + 0.4 * judge_values[:, 1], 1, 5)
    offsets = np.zeros(raters) if offsets is None else offsets
    names = [f"d{k}" for k in range(dims)]
    ids = [f"{prefix}{i}" for i in range(items)]
    judge = [JudgeScore.model_construct(transcript=ids[i], dimension=names[k], status="scored",
                                        score=float(judge_values[i, k]), judgment_id=None, probs=None)
             for i in range(items) for k in range(dims)]
    rater_names = [f"r{r}" for r in range(raters)]
    noise = rng.normal(0, 0.6, (items, dims, raters))
    labels = np.clip(np.round(truth[:, :, None] + offsets[None, None, :] + noise), 1, 5)
    chosen = [set(rng.choice(raters, per_item, replace=False)) if per_item else set(range(raters))
              for _ in range(items)]
    human = [HumanLabel.model_construct(transcript=ids[i], rater=rater_names[r], dimension=names[k],
                                        status="scored", score=float(labels[i, k, r]), line=None)
             for i in range(items) for k in range(dims) for r in range(raters) if r in chosen[i]]
    return judge, human


def synthetic_frames(items: int, dims: int, raters: int, seed: int):
    """Columns (categorical ids, as a large file is best held), fractional expected judge scores and
    integer rater labels around a true score."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    truth = rng.uniform(1, 5, (items, dims))
    judge_values = np.clip(1 + 4 * ((truth - 1) / 4) ** 0.6 + 0.4 + rng.normal(0, 0.5, truth.shape), 1, 5)
    item_names = [f"t{i}" for i in range(items)]
    dim_names = [f"d{k}" for k in range(dims)]
    item_codes = np.repeat(np.arange(items), dims)
    dim_codes = np.tile(np.arange(dims), items)
    judge = pd.DataFrame({"transcript": pd.Categorical.from_codes(item_codes, item_names),
                          "dimension": pd.Categorical.from_codes(dim_codes, dim_names),
                          "status": pd.Categorical.from_codes(np.zeros(items * dims, dtype=int), ["scored"]),
                          "score": judge_values.ravel()})
    labels = np.clip(np.round(truth[:, :, None] + rng.normal(0, 0.6, (items, dims, raters))), 1, 5)
    human = pd.DataFrame({
        "transcript": pd.Categorical.from_codes(np.repeat(item_codes, raters), item_names),
        "rater": pd.Categorical.from_codes(np.tile(np.arange(raters), items * dims), [f"r{r}" for r in range(raters)]),
        "dimension": pd.Categorical.from_codes(np.repeat(dim_codes, raters), dim_names),
        "status": pd.Categorical.from_codes(np.zeros(items * dims * raters, dtype=int), ["scored"]),
        "score": labels.ravel()})
    return judge, human


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_agreement(args) -> None:
    from evaluator.calibrate.agreement import agreement_frames

    t0 = time.perf_counter()
    judge, human = synthetic_frames(args.items, args.dims, args.raters, seed=1)
    t1 = time.perf_counter()
    print(f"generated {len(judge):,} judge scores and {len(human):,} labels in {t1 - t0:.1f} s "
          f"(peak {peak_mb():.0f} MB so far)")
    load_before = os.getloadavg()
    c1 = time.process_time()
    report = agreement_frames(judge, human, ScaleSpec(min=1, max=5), n_boot=args.bootstrap, seed=0,
                              pairing=args.pairing)
    t2 = time.perf_counter()
    cpu = time.process_time() - c1
    load_after = os.getloadavg()
    o = report.reports[0].overall.judge_vs_human  # plain files: one report
    print(f"agreement: {args.items:,} items x {args.dims} dimensions x {args.raters} raters, "
          f"{args.bootstrap} resamples, pairing {args.pairing}")
    print(f"  CPU {cpu:.1f} s (this process, all threads), wall {t2 - t1:.1f} s; 1-minute load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} cores "
          "(wall exceeds CPU by the time other processes held the cores)")
    print(f"  peak resident memory of the whole process: {peak_mb():.0f} MB (interpreter, libraries and the "
          "input frames included)")
    print(f"overall: n={o.n} QWK={o.qwk:.3f} {o.qwk_ci} alpha({o.krippendorff_alpha_level})="
          f"{o.krippendorff_alpha:.3f} tau={o.kendall:.3f} {o.kendall_ci}")
    loo = report.overall.leave_one_out
    if loo is not None:
        print(f"ceiling (leave one rater out): rater vs rest r={loo.human.pearson:.3f}, "
              f"judge vs the same rest r={loo.judge.pearson:.3f}")


def write_files(folder, items: int, dims: int, raters: int, seed: int):
    """The synthetic data as the two CSV files a user would bring (wide form, two decimals)."""
    from pathlib import Path

    judge, human = synthetic_frames(items, dims, raters, seed)
    j = judge.pivot(index="transcript", columns="dimension", values="score").round(2)
    h = human.pivot_table(index=["transcript", "rater"], columns="dimension", values="score", observed=True)
    judge_file, human_file = Path(folder) / "judge.csv", Path(folder) / "human.csv"
    j.to_csv(judge_file)
    h.astype(int).to_csv(human_file)
    return judge_file, human_file


def bench_via_files(args) -> None:
    import multiprocessing
    import tempfile
    from pathlib import Path

    from evaluator.calibrate.gathering import ScoreSource
    from evaluator.calibrate.service import AgreementRequest, run_agreement

    with tempfile.TemporaryDirectory() as folder:
        # written by a child process, so this process's peak memory is the CLI path's alone
        child = multiprocessing.get_context("spawn").Process(
            target=write_files, args=(folder, args.items, args.dims, args.raters, 1))
        child.start()
        child.join()
        judge_file, human_file = Path(folder) / "judge.csv", Path(folder) / "human.csv"
        sizes = judge_file.stat().st_size / 1e6, human_file.stat().st_size / 1e6
        before = peak_mb()
        print(f"wrote {judge_file.name} ({sizes[0]:.1f} MB) and {human_file.name} ({sizes[1]:.1f} MB) "
              f"in a child process; peak memory here before reading: {before:.0f} MB")
        load_before = os.getloadavg()
        c1, t1 = time.process_time(), time.perf_counter()
        request = AgreementRequest(source=ScoreSource(judge_file=judge_file, human_file=human_file, scale="1-5"),
                                   n_bootstrap=args.bootstrap, seed=0, pairing=args.pairing)
        report = run_agreement(request)
        t2, cpu = time.perf_counter(), time.process_time() - c1
        load_after = os.getloadavg()
    o = report.reports[0].overall.judge_vs_human  # plain files: one report
    print(f"evaluate agreement --judge --human: {args.items:,} items x {args.dims} dimensions x {args.raters} raters, "
          f"{args.bootstrap} resamples, pairing {args.pairing}")
    print(f"  CPU {cpu:.1f} s, wall {t2 - t1:.1f} s; 1-minute load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after, on {os.cpu_count()} cores")
    print(f"  peak resident memory of the whole process: {peak_mb():.0f} MB (reading, validating, pairing and "
          "resampling; interpreter and libraries included)")
    print(f"overall: n={o.n} QWK={o.qwk:.3f} {o.qwk_ci} tau={o.kendall:.3f}")


def _stage(name: str, folder: str, bootstrap: int, queue) -> None:
    """One calibrate stage in this (fresh) process; puts (cpu, wall, peak MB, summary) on the queue."""
    from pathlib import Path

    from evaluator.calibrate.calibration import CalibrationSettings
    from evaluator.calibrate.gathering import ScoreSource
    from evaluator.calibrate.service import (
        ApplyRequest,
        CalibrateRequest,
        apply_to_file,
        run_calibration,
    )

    judge_file, human_file, cal_file = (Path(folder) / n for n in ("judge.csv", "human.csv", "calibration.json"))
    c1, t1 = time.process_time(), time.perf_counter()
    if name == "fit":
        outcome = run_calibration(CalibrateRequest(
            source=ScoreSource(judge_file=judge_file, human_file=human_file, scale="1-5"),
            settings=CalibrationSettings(n_bootstrap=bootstrap), out=cal_file))
        chosen = {d: c.chosen for d, c in outcome.result.dimensions.items()}
        summary = f"{outcome.result.id}; chosen: {', '.join(f'{d}={m}' for d, m in chosen.items())}"
    else:
        result, rows, _ = apply_to_file(ApplyRequest(judge_file=judge_file, human_file=human_file,
                                                  calibration=str(cal_file)))
        cal = np.array([np.nan if r["calibrated"] is None else r["calibrated"] for r in rows], dtype=float)
        summary = f"{len(rows):,} rows calibrated by {result.id}; mean calibrated score {np.nanmean(cal):.6f}"
    queue.put((time.process_time() - c1, time.perf_counter() - t1, peak_mb(), summary))


def bench_calibrate(args) -> None:
    import multiprocessing
    import tempfile

    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        child = spawn.Process(target=write_files, args=(folder, args.items, args.dims, args.raters, 1))
        child.start()
        child.join()
        print(f"calibrate: {args.items:,} items x {args.dims} dimensions x {args.raters} raters (wide CSV files), "
              f"{args.bootstrap} resamples, on {os.cpu_count()} cores")
        for name, what in (("fit", "evaluate calibrate --judge --human --out"),
                           ("apply", "evaluate calibrated --judge --human --calibration")):
            queue = spawn.Queue()
            load_before = os.getloadavg()
            proc = spawn.Process(target=_stage, args=(name, folder, args.bootstrap, queue))
            proc.start()
            cpu, wall, peak, summary = queue.get()
            proc.join()
            load_after = os.getloadavg()
            print(f"  {name:5} ({what}): CPU {cpu:.1f} s, wall {wall:.1f} s, peak resident memory {peak:.0f} MB "
                  f"(whole process); 1-minute load {load_before[0]:.1f} before, {load_after[0]:.1f} after")
            print(f"        {summary}")


def bench_calibration(args) -> None:
    from evaluator.calibrate.agreement import agreement
    from evaluator.calibrate.calibration import (
        CalibrationSettings,
        apply_calibration,
        fit_calibration,
    )

    offsets = np.array([-0.6, 0.0, 0.5, 0.9, -0.3][:args.raters])
    scale = ScaleSpec(min=1, max=5)
    # the same raters label both sets, two of them per item; B's items are better on average (another sample)
    judge_a, human_a = synthetic(args.items, args.dims, args.raters, seed=2, offsets=offsets, prefix="a", per_item=2)
    judge_b, human_b = synthetic(args.items, args.dims, args.raters, seed=3, offsets=offsets, prefix="b", per_item=2,
                                 low=1.5)
    t0 = time.perf_counter()
    result = fit_calibration(judge_a, human_a, scale, CalibrationSettings(n_bootstrap=0, seed=0))
    t1 = time.perf_counter()
    print(f"fit on A ({args.items} items x {args.dims} dims x {args.raters} raters): {t1 - t0:.1f} s, "
          f"peak {peak_mb():.0f} MB")
    calibrated = apply_calibration(result, judge_b, human_b)
    report = agreement(judge_b, human_b, scale, n_boot=0, calibrated=calibrated)
    print("MAE against the raters' mean; CV = 5-fold cross-validated on A; B = the calibration fitted on all of A "
          "applied to B")
    print(f"{'dim':5} {'chosen':26} {'raw A':>6} {'CV A':>6} {'raw B':>6} {'cal B':>6} {'raw r B':>8} {'cal r B':>8}")
    for dim, c in result.dimensions.items():
        chosen = c.map(c.chosen)
        cv = chosen.cv_with_offsets if chosen.rater_offsets else chosen.cv
        d = report.dimensions[dim]
        name = c.chosen + (" + rater offsets" if chosen.rater_offsets else "")
        print(f"{dim:5} {name:26} {cv.before.mae:6.3f} {cv.after.mae:6.3f} {d.judge_vs_human.mae:6.3f} "
              f"{d.calibrated.mae:6.3f} {d.judge_vs_human.pearson:8.3f} {d.calibrated.pearson:8.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--dims", type=int, default=None)
    ap.add_argument("--raters", type=int, default=None)
    ap.add_argument("--bootstrap", type=int, default=None)
    ap.add_argument("--pairing", choices=("mean", "each"), default="mean")
    ap.add_argument("--calibration", action="store_true")
    ap.add_argument("--calibrate", action="store_true",
                    help="time `calibrate` (fit) and `calibrated` (apply) on files, peak memory per stage")
    ap.add_argument("--via-files", action="store_true", help="time the CLI path: write CSV files, read and measure")
    args = ap.parse_args(argv)
    if args.calibrate:
        args.items, args.dims, args.raters = args.items or 20_000, args.dims or 6, args.raters or 3
        args.bootstrap = args.bootstrap or 0
        bench_calibrate(args)
        return 0
    args.bootstrap = 1000 if args.bootstrap is None else args.bootstrap
    if args.via_files:
        args.items, args.dims, args.raters = args.items or 100_000, args.dims or 10, args.raters or 3
        bench_via_files(args)
    elif args.calibration:
        args.items, args.dims, args.raters = args.items or 3000, args.dims or 4, args.raters or 4
        bench_calibration(args)
    else:
        args.items, args.dims, args.raters = args.items or 100_000, args.dims or 10, args.raters or 2
        bench_agreement(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
