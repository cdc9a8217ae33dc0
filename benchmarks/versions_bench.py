"""Benchmark: what computing the judges' versions costs, in fresh processes, and what it adds to a run.

    python benchmarks/versions_bench.py [--runs 5]

Prints the median over fresh interpreters of: importing the prompt and baseline modules, the first
`prompt_version()` (renders the probe three ways), the first `baseline_version()` (runs the baseline
on the probe set; includes compiling the signal tables, which judging pays anyway), and the full
`evaluate transcripts/lru_ttl_cache.md --no-store --format json` with the baseline judge (no model),
and `evaluate --help` (which computes no version). No assertions: targets are read by people.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = """
import json, time
t0 = time.perf_counter()
from evaluator.judge.prompt import prompt_version
from evaluator.judge.baseline import baseline_version
t1 = time.perf_counter(); prompt_version(); t2 = time.perf_counter(); baseline_version(); t3 = time.perf_counter()
prompt_version(); baseline_version(); t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "prompt_version": t2 - t1, "baseline_version": t3 - t2, "memoised": t4 - t3}))
"""


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True)
        for k, v in json.loads(out.stdout).items():
            samples.setdefault(k, []).append(v)
    evaluate = [sys.executable, "-c", "from evaluator.cli import run; run()"]
    samples["evaluate (baseline, --no-store)"] = [
        wall([*evaluate, "transcripts/lru_ttl_cache.md", "--no-store", "--format", "json"]) for _ in range(runs)]
    samples["evaluate --help"] = [wall([*evaluate, "--help"]) for _ in range(runs)]
    for k, v in samples.items():
        print(f"{k:34s} median {statistics.median(v) * 1000:8.1f} ms   "
              f"(min {min(v) * 1000:.1f}, max {max(v) * 1000:.1f})")


if __name__ == "__main__":
    main()
