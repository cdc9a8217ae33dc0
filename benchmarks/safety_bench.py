"""The prompt-injection detector: recall and false-alarm rate on a labelled corpus, and its speed.

    python benchmarks/safety_bench.py            # figures for the dev and held-out parts, then timings
    python benchmarks/safety_bench.py --misses   # also list what the dev part gets wrong (held-out
                                                 # misses are never listed: looking would be tuning)
    python benchmarks/safety_bench.py --timings  # only the per-transcript timings

Timings, per sample transcript of transcripts/: `detect_injection` (what the pipeline runs once per
transcript), and `redact` of the prompt the LLM judge sends for it, as the store writes it (the
request's messages as JSON, ~20-35 KB: every string written to the store is redacted), with a few
secrets configured as a user's environment has them; a text written again (an ensemble's samples
send the same request) is a cache hit and costs next to nothing, so the cache is cleared per call.

The corpus is datasets/injection/: `*_attacks.jsonl` (one attack per line: text, category, and `in`:
"transcript" for a candidate turn or "code" for an attached code file) and `*_benign.txt` (one
ordinary AI-engineering sentence per line, many about graders, rubrics, scores, prompts and system
messages). The `heldout_` files were written before the detector was tuned and were never tuned on:
their figures are the honest estimate; the `dev_` figures are what the detector was tuned to.
Tests never assert on these numbers (only on named cases); this script prints them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from evaluator.ingest import load_transcript
from evaluator.models import CodeFile, Transcript, Turn
from evaluator.safety import detect_injection, redactor

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


def _best_ms(fn: Callable[[], object], repeat: int = 10, rounds: int = 15) -> float:
    """CPU milliseconds per call, the best of `rounds` short rounds: on a shared machine the CPU a
    call costs is what to compare (wall time adds whatever else ran), and short rounds let some of
    them run undisturbed."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - t0) / repeat)
    return best * 1000


def _forget_redactions() -> None:
    """Empty the cache of long texts' redactions (absent before it existed: the script also times
    older versions of the package, for before/after figures)."""
    import evaluator.safety.redaction as redaction

    cached = getattr(redaction, "_redact_long", None)
    if cached is not None:
        cached.cache_clear()


def _stored_prompt(t: Transcript) -> str:
    """The request as `Store` writes it: the rendered messages as JSON."""
    from evaluator.judge.prompt import render
    from evaluator.rubrics import select_rubric

    rubric = select_rubric(None, t.exercise, ROOT / "rubrics")
    rendered = render(t, rubric, rubric.dimensions, 200_000, reserve_tokens=4096)
    return json.dumps(rendered.messages)


def timings() -> None:
    for name, value in (("OPENAI_API_KEY", "sk-proj-benchmarkkey0123456789abcdefABCDEF"),
                        ("ANTHROPIC_API_KEY", "sk-ant-api03-benchmark0123456789"),
                        ("HF_TOKEN", "hf_bench0123456789abcdefgh")):
        os.environ.setdefault(name, value)
    print(f"{'CPU ms per call':32s} {'detect_injection':>16s} {'redact prompt':>22s}")
    total = [0.0, 0.0]
    for path in sorted((ROOT / "transcripts").glob("*.md")):
        t = load_transcript(path)
        flags = detect_injection(t, DIMS)
        detect = _best_ms(lambda t=t: detect_injection(t, DIMS))
        prompt = _stored_prompt(t)
        clean = redactor()
        redact_ms = _best_ms(lambda p=prompt, c=clean: (_forget_redactions(), c(p)))  # a new text each time
        total[0] += detect
        total[1] += redact_ms
        print(f"{path.name:32s} {detect:8.2f} ms {len(flags):2d} flag(s)"
              f" {redact_ms:8.3f} ms ({len(prompt) / 1000:4.1f} KB)")
    print(f"{'total':32s} {total[0]:8.2f} ms {'':9s} {total[1]:8.3f} ms")


def main() -> None:
    show = "--misses" in sys.argv
    if "--timings" in sys.argv:
        timings()
        return
    print("prompt-injection detector on datasets/injection/ (held-out: written before tuning, never tuned on)")
    for part in ("dev", "heldout"):
        measure(part, show and part == "dev")
    print("\nscan time per sample transcript")
    timings()


if __name__ == "__main__":
    main()
