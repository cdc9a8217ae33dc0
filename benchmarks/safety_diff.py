"""Every output of the safety checks on every sample in the repository, as one JSON document: run it
before and after a change to `evaluator.safety` and compare the files (a refactor or a speed-up must
leave them byte-identical).

    python benchmarks/safety_diff.py > before.json   # ... change ...
    python benchmarks/safety_diff.py > after.json && cmp before.json after.json

Covered: `detect_injection` on transcripts/, datasets/heldout*/, datasets/baseline_dev*/ and every
attack and benign sentence of datasets/injection/ (as a candidate turn and as a code file), and
`redact` / `redact_value` of the same texts with secrets planted in them, and `neutralise` of them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from safety_bench import DIMS, as_transcript, load_part  # noqa: E402

from evaluator.ingest import load_transcript  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# planted where a key shows up in real text: alone, inside a word, repeated, overlapping another
SECRETS = {"EVAL_DIFF_API_KEY": "sk-diffcheck-0123456789abcdef", "EVAL_DIFF_TOKEN": "tok_diff_98765",
           "EVAL_DIFF_PASSWORD": "tok_diff_98765xyz"}


def _flags(t) -> list[list[str]]:
    from evaluator.safety import detect_injection

    return [[f.kind, f.source or "", f.detail] for f in detect_injection(t, DIMS)]


def _planted(text: str) -> str:
    """`text` with the secrets and key-shaped strings planted at a few positions."""
    s = list(SECRETS.values())
    third = len(text) // 3
    return (f"{s[0]} {text[:third]}Authorization: Bearer abcdefgh12345678 x{s[1]}y {text[third:2 * third]}"
            f" {s[2]}{s[2]} api_key=12345678abcd {text[2 * third:]} {s[1]}")


def main() -> None:
    os.environ.update(SECRETS)
    from evaluator.safety import neutralise, redact, redact_value, redactor

    out: dict[str, object] = {}
    files = sorted(ROOT.glob("transcripts/*.md")) + sorted(ROOT.glob("datasets/heldout*/**/*.md")) + sorted(
        ROOT.glob("datasets/baseline_dev*/**/*.md"))
    for path in files:
        rel = str(path.relative_to(ROOT))
        try:
            t = load_transcript(path)
        except Exception as exc:  # noqa: BLE001 - a file the loader refuses is recorded as such
            out[rel] = {"error": type(exc).__name__}
            continue
        text = path.read_text(encoding="utf-8")
        out[rel] = {"flags": _flags(t), "redact": redact(_planted(text)), "neutralise": neutralise(text),
                    "redact_value": redact_value({"a": [_planted(text[:500]), 3, None], "b": text[-300:]})}
    for part in ("dev", "heldout"):
        attacks, benign = load_part(part)
        for i, a in enumerate(attacks):
            out[f"{part} attack {i}"] = [_flags(as_transcript(a["text"], a.get("in", "transcript"))),
                                         neutralise(a["text"])]
        for i, b in enumerate(benign):
            out[f"{part} benign {i}"] = [_flags(as_transcript(b)), _flags(as_transcript(b, "code"))]
            out[f"{part} benign {i} redact"] = redactor()(_planted(b))
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
