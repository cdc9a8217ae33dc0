"""Benchmark: build the HTML report over 10,000 judgments and print the numbers.

    python benchmarks/report_bench.py [--judgments 10000] [--db PATH] [--keep]

The store is generated once through `Store.save_batch` (the store's write path, 500 judgments a
transaction) and cached in benchmarks/.cache/ (git-ignored, *.duckdb); later runs reuse it. Prints:
generation time (first run), build time (wall, and CPU of the build's processes: the machine may be
busy with other work), the time of each stage, pages and files written, report size, the largest page, and what
opening one judgment loads (the shared judgment.html plus that judgment's data file).
No assertions: targets are read by people.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from evaluator.report.build import build_report
from evaluator.report.queries import Filters
from evaluator.report.synthetic import SyntheticSpec, generate
from evaluator.store.db import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=10_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the built report and print its path")
    args = parser.parse_args()
    sessions = 40
    candidates = max(1, args.judgments // sessions)
    db = args.db or Path(__file__).parent / ".cache" / f"report_bench_{candidates * sessions}.duckdb"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        partial = db.with_suffix(".partial.duckdb")
        partial.unlink(missing_ok=True)
        print(f"generating {candidates * sessions} judgments through Store.save_batch into {db} ...", flush=True)
        t0 = time.perf_counter()
        with Store(partial) as store:
            cohorts = ("spring-2026", "summer-2026", "autumn-2026", "winter-2026")
            written = generate(store, SyntheticSpec(candidates=candidates, sessions_per_candidate=sessions,
                                                    cohorts=cohorts, days_between=5))
        partial.rename(db)
        print(f"generated: {written} in {time.perf_counter() - t0:.1f} s")
    out = Path(tempfile.mkdtemp(prefix="report-bench-"))
    t0 = time.perf_counter()
    result = build_report(db, out / "report", Filters())
    build_s, cpu_s = time.perf_counter() - t0, result.cpu["total"]
    root = out / "report"
    files = list(root.rglob("*.html"))
    sizes = [p.stat().st_size for p in files]
    data_sizes = [p.stat().st_size for p in (root / "judgment").glob("*.js")]
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    largest = max(files, key=lambda p: p.stat().st_size)
    print(f"judgments in report:     {result.judgments}")
    print(f"build time:              {build_s:.2f} s wall, {cpu_s:.2f} s CPU (load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores)")
    for stage, seconds in result.timings.items():
        print(f"  {stage:<24} {seconds:5.2f} s wall {result.cpu.get(stage, 0):5.2f} s CPU")
    print(f"html pages:              {len(files)}")
    print(f"judgment data files:     {len(data_sizes)}")
    print(f"report size:             {total / 1e6:.1f} MB (of which plotly.min.js "
          f"{(root / 'assets' / 'plotly.min.js').stat().st_size / 1e6:.1f} MB, shared by every page with charts)")
    print(f"largest page:            {largest.relative_to(root)} {max(sizes) / 1e3:.0f} kB")
    if data_sizes:
        print(f"one judgment opened:     judgment.html {(root / 'judgment.html').stat().st_size / 1e3:.1f} kB + "
              f"its data file (median {statistics.median(data_sizes) / 1e3:.1f} kB, "
              f"largest {max(data_sizes) / 1e3:.1f} kB)")
    if args.keep:
        print(f"report kept at {out / 'report' / 'index.html'}")
    else:
        shutil.rmtree(out)


if __name__ == "__main__":
    sys.exit(main())
