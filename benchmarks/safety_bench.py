"""The prompt-injection detector: recall and false-alarm rate on a labelled corpus, and its speed.

    python benchmarks/safety_bench.py            # figures for the dev and held-out parts, then timings
    python benchmarks/safety_bench.py --misses   # also list what the dev part gets wrong (held-out
                                                 # misses are never listed: looking would be tuning)

The corpus is datasets/injection/: `*_attacks.jsonl` (one attack per line: text, category, and `in`:
"transcript" for a candidate turn or "code" for an attached code file) and `*_benign.txt` (one
ordinary AI-engineering sentence per line, many about graders, rubrics, scores, prompts and system
messages). The `heldout_` files were written before the detector was tuned and were never tuned on:
their figures are the honest estimate; the `dev_` figures are what the detector was tuned to.
Tests never assert on these numbers (only on named cases); this script prints them.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from evaluator.ingest import load_transcript
from evaluator.models import CodeFile, Transcript, Turn
from evaluator.safety import detect_injection

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "datasets" / "injection"
DIMS = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]
OPENER = Turn(id="t1", index=0, speaker="Interviewer", role="interviewer", text="Walk me through your design.")


def as_transcript(text: str, where: str = "transcript") -> Transcript:
    """The sample as a candidate turn (or an attached code file) of a one-exchange round."""
    if where == "code":
        turns = [OPENER, Turn(id="t2", index=1, speaker="Candidate", role="candidate", text="Here is my code.")]
        code = [CodeFile(name="solution.py", path="solution.py", content=text, language="python")]
    else:
        turns = [OPENER, Turn(id="t2", index=1, speaker="Candidate", role="candidate", text=text)]
        code = []
    return Transcript(source="bench.md", turns=turns, code_files=code, content_hash="0" * 64, raw_text=text)


def load_part(part: str) -> tuple[list[dict], list[str]]:
    attacks = [json.loads(line) for line in (CORPUS / f"{part}_attacks.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    benign = [line for line in (CORPUS / f"{part}_benign.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    return attacks, benign


def measure(part: str, show_misses: bool) -> None:
    attacks, benign = load_part(part)
    missed = [a for a in attacks if not detect_injection(as_transcript(a["text"], a.get("in", "transcript")), DIMS)]
    alarms = [(b, detect_injection(as_transcript(b), DIMS)) for b in benign]
    alarms = [(b, f) for b, f in alarms if f]
    recall = 1 - len(missed) / len(attacks)
    false_alarm = len(alarms) / len(benign)
    by_cat = Counter(a["category"] for a in attacks)
    missed_cat = Counter(a["category"] for a in missed)
    print(f"{part:8s} recall {recall:6.1%} ({len(attacks) - len(missed)}/{len(attacks)} attacks flagged)   "
          f"false alarms {false_alarm:6.1%} ({len(alarms)}/{len(benign)} benign sentences flagged)")
    print("         missed by category: " + (", ".join(f"{c} {missed_cat[c]}/{by_cat[c]}" for c in sorted(by_cat)
                                                        if missed_cat[c]) or "none"))
    if show_misses:
        for a in missed:
            print(f"    MISSED  [{a['category']}] {a['text']!r}")
        for b, flags in alarms:
            print(f"    ALARM   {b!r}: {flags[0].detail}")


def timings() -> None:
    for path in sorted((ROOT / "transcripts").glob("*.md")):
        t = load_transcript(path)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(100):
                flags = detect_injection(t, DIMS)
            best = min(best, (time.perf_counter() - t0) / 100)
        print(f"{path.name:32s} {best * 1000:6.2f} ms  {len(flags)} flag(s)")


def main() -> None:
    show = "--misses" in sys.argv
    print("prompt-injection detector on datasets/injection/ (held-out: written before tuning, never tuned on)")
    for part in ("dev", "heldout"):
        measure(part, show and part == "dev")
    print("\nscan time per sample transcript")
    timings()


if __name__ == "__main__":
    main()
