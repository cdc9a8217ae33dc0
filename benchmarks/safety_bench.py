"""Time of the prompt-injection scan per sample transcript (numbers only; tests never assert on time).

    python benchmarks/safety_bench.py
"""

from __future__ import annotations

import time
from pathlib import Path

from evaluator.ingest import load_transcript
from evaluator.safety import detect_injection

ROOT = Path(__file__).resolve().parent.parent
DIMS = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]


def main() -> None:
    for path in sorted((ROOT / "transcripts").glob("*.md")):
        t = load_transcript(path)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(100):
                flags = detect_injection(t, DIMS)
            best = min(best, (time.perf_counter() - t0) / 100)
        print(f"{path.name:32s} {best * 1000:6.2f} ms  {len(flags)} flag(s)")


if __name__ == "__main__":
    main()
