"""How does a real local model judge the labelled samples, and how fast does the server run?

Judges every labelled transcript with the LLM judge against a local OpenAI-compatible server
(llama.cpp's llama-server from scripts/local-model.sh, Ollama, vLLM...), one at a time (a CPU server
gains nothing from concurrency), without the store. Prints per dimension how the scores agree with
each rater (exact, within one level, MAE, quadratic-weighted kappa), how many came back unscored,
then calls, repairs, response formats, prompt and generation speed, and wall time.

    scripts/local-model.sh start && eval "$(scripts/local-model.sh env)"
    python benchmarks/real_model.py                                   # transcripts/ + datasets/sample_labels.csv
    python benchmarks/real_model.py --set datasets/heldout --limit 3
    python benchmarks/real_model.py --model openai/qwen2.5-7b --api-base http://127.0.0.1:8080/v1 --timeout 1800
    python benchmarks/real_model.py --probe 3      # server speed only: 3 fixed requests, no judging

`--probe N` sends N identical requests (the first 4,000 characters of a sample transcript, about
1,000 tokens, 60 tokens generated, the server's prompt cache off) and prints llama.cpp's own timings
with the machine's load average: the quick way to compare server settings such as
LOCAL_MODEL_THREADS (scripts/local-model.sh) on the machine at hand.

Speeds: llama.cpp's server counts the prompt tokens it actually read (prompt-cache hits are not
re-read) and the tokens it generated, with the seconds spent on each (`/metrics`, llama-server
--metrics, which scripts/local-model.sh turns on); the difference before and after the run gives the
real prompt and generation speeds. Other servers: tokens / wall latency from the exchanges only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from heldout_bench import _qwk, read_labels

from evaluator.errors import EvaluatorError
from evaluator.pipeline import EvaluateRequest, JudgeOptions, evaluate_file


def judge_all(folder: Path, names: list[str], options: JudgeOptions) -> tuple[dict[str, Any], list[str]]:
    """Judgment per transcript name (skipping missing files), and the errors met."""
    out: dict[str, Any] = {}
    problems = []
    for i, name in enumerate(names, 1):
        path = folder / name
        if not path.exists():
            problems.append(f"missing transcript: {path}")
            continue
        started = time.perf_counter()
        try:
            result = evaluate_file(EvaluateRequest(transcript=path, judge=options, store=False))
        except EvaluatorError as e:  # one bad item never stops the batch
            problems.append(f"{name}: {e}")
            print(f"  [{i}/{len(names)}] {name}: error: {e}", file=sys.stderr)
            continue
        j = result.judgment
        out[name] = j
        cells = " ".join(f"{d.id}={d.score if d.status == 'scored' else d.status}" for d in j.dimensions)
        print(f"  [{i}/{len(names)}] {name}: {j.status} in {time.perf_counter() - started:.0f} s, "
              f"{len(j.exchanges)} request(s): {cells}", file=sys.stderr)
    return out, problems


def server_metrics(api_base: str) -> dict[str, float] | None:
    """llama.cpp's Prometheus counters (llama-server --metrics): tokens it actually read and
    generated and the seconds it spent on each. A prompt-cache hit is not re-read, so it is not counted.
    None from servers without them."""
    import httpx

    try:
        r = httpx.get(f"{api_base.rstrip('/').removesuffix('/v1')}/metrics", timeout=10)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    out = {}
    for line in r.text.splitlines():
        if line.startswith("llamacpp:") and " " in line:
            name, value = line.split(" ", 1)
            try:
                out[name.removeprefix("llamacpp:")] = float(value)
            except ValueError:
                pass
    return out or None


def probe(api_base: str, model: str, runs: int, timeout: float) -> int:
    """Server speed on a fixed ~1,000-token prompt, as llama.cpp reports it (`timings` in the reply)."""
    import httpx

    text = (ROOT / "transcripts" / "cosine_topk.md").read_text(encoding="utf-8")[:4000]
    body = {"model": model.removeprefix("openai/"), "max_tokens": 60, "temperature": 0, "cache_prompt": False,
            "messages": [{"role": "user", "content": f"Summarise this interview in three sentences.\n\n{text}"}]}
    url = f"{api_base.rstrip('/')}/chat/completions"
    for i in range(1, runs + 1):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        try:
            r = httpx.post(url, json=body, timeout=timeout)
            r.raise_for_status()
        except httpx.HTTPError as e:
            print(f"probe {i}: failed after {time.perf_counter() - started:.0f} s: {e!r}", file=sys.stderr)
            return 1
        t = r.json().get("timings") or {}
        if not t:
            print(f"probe {i}: {time.perf_counter() - started:.1f} s (no llama.cpp timings from this server)")
            continue
        print(f"probe {i}: load {load:.1f}  prompt {t['prompt_n']} tokens at {t['prompt_per_second']:.1f} tok/s  "
              f"generation {t['predicted_n']} tokens at {t['predicted_per_second']:.1f} tok/s  "
              f"wall {time.perf_counter() - started:.1f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, help="a folder with transcripts/ and labels_*.csv (e.g. datasets/heldout)")
    parser.add_argument("--transcripts", type=Path, default=ROOT / "transcripts")
    parser.add_argument("--labels", type=Path, nargs="+", default=[ROOT / "datasets" / "sample_labels.csv"])
    parser.add_argument("--limit", type=int, help="judge only the first N transcripts (by name)")
    parser.add_argument("--model", default=os.environ.get("EVALUATOR_LOCAL_MODEL", "openai/local-model"))
    parser.add_argument("--api-base", default=os.environ.get("EVALUATOR_LOCAL_MODEL_URL"))
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per request (CPU servers are slow)")
    parser.add_argument("--context-tokens", type=int, default=8192, help="the server's context size")
    parser.add_argument("--max-tokens", type=int, default=1200)
    parser.add_argument("--probe", type=int, metavar="N", help="only measure server speed with N fixed requests")
    args = parser.parse_args()
    if not args.api_base:
        print("no local model configured: pass --api-base or set EVALUATOR_LOCAL_MODEL_URL "
              "(scripts/local-model.sh start; eval \"$(scripts/local-model.sh env)\")", file=sys.stderr)
        return 2
    if args.probe:
        return probe(args.api_base, args.model, args.probe, args.timeout)
    folder = args.set / "transcripts" if args.set else args.transcripts
    label_files = sorted(args.set.glob("labels*.csv")) if args.set else args.labels
    if not label_files:
        print(f"no label files found for {folder}", file=sys.stderr)
        return 2
    labels = read_labels(label_files)
    raters = sorted(labels)
    names = sorted({t for r in raters for t in labels[r]})[: args.limit]
    options = JudgeOptions(model=args.model, api_base=args.api_base, timeout=args.timeout,
                           context_tokens=args.context_tokens, max_tokens=args.max_tokens, max_retries=1)

    before = server_metrics(args.api_base)
    started = time.perf_counter()
    judged, problems = judge_all(folder, names, options)
    wall = time.perf_counter() - started
    after = server_metrics(args.api_base)

    print(f"model: {args.model} at {args.api_base}  set: {folder}  transcripts judged: {len(judged)}/{len(names)}"
          f"  raters: {', '.join(raters)}")
    dims = list(dict.fromkeys(d.id for j in judged.values() for d in j.dimensions))
    header = f"{'dimension':<15} {'rater':<9} {'n':>3} {'exact':>6} {'+-1':>5} {'MAE':>5} {'QWK':>6}  unscored"
    print(header)
    print("-" * len(header))
    for dim in dims:
        results = {t: next((d for d in j.dimensions if d.id == dim), None) for t, j in judged.items()}
        unscored = sum(1 for d in results.values() if d is not None and d.status == "unscored")
        for rater in raters:
            pairs = [(d.score, int(labels[rater][t][dim])) for t, d in results.items()
                     if d is not None and d.status == "scored" and d.score is not None
                     and labels[rater].get(t, {}).get(dim, "").isdigit()]
            if not pairs:
                na = "n/a"
                print(f"{dim:<15} {rater:<9} {0:>3} {na:>6} {na:>5} {na:>5} {na:>6}  {unscored}/{len(results)}")
                continue
            exact = sum(a == b for a, b in pairs) / len(pairs)
            near = sum(abs(a - b) <= 1 for a, b in pairs) / len(pairs)
            mae = statistics.fmean(abs(a - b) for a, b in pairs)
            qwk = _qwk(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), [1, 2, 3, 4, 5])
            qwk_text = f"{qwk:6.2f}" if qwk is not None else "   n/a"
            print(f"{dim:<15} {rater:<9} {len(pairs):>3} {exact:6.0%} {near:5.0%} {mae:5.2f} {qwk_text}  "
                  f"{unscored}/{len(results)}")

    exchanges = [e for j in judged.values() for e in j.exchanges]
    repairs = sum(1 for e in exchanges if e.purpose == "repair")
    formats = sorted({e.response_format for e in exchanges})
    prompt = sum(e.prompt_tokens or 0 for e in exchanges)
    completion = sum(e.completion_tokens or 0 for e in exchanges)
    busy = sum(e.latency_ms or 0 for e in exchanges) / 1000
    statuses = [j.status for j in judged.values()]
    print()
    print(f"judgments: {len(judged)} ({', '.join(f'{s} {statuses.count(s)}' for s in sorted(set(statuses)))})  "
          f"requests: {len(exchanges)} (repairs {repairs})  formats: {', '.join(formats) or 'none'}")
    per = [len(j.exchanges) for j in judged.values()]
    if per:
        print(f"requests per transcript: {', '.join(map(str, per))} (mean {statistics.fmean(per):.1f})")
    reasons = [d.reason or "" for j in judged.values() for d in j.dimensions if d.status == "unscored"]
    for reason, n in sorted({r: reasons.count(r) for r in reasons}.items(), key=lambda kv: -kv[1]):
        print(f"unscored x{n}: {reason[:300]}")
    if exchanges:
        print(f"tokens: prompt {prompt} ({prompt / len(exchanges):.0f}/request), completion {completion}  "
              f"server busy {busy:.0f} s: {(prompt + completion) / max(busy, 1e-9):.1f} tokens/s end to end")
    if before and after:
        delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        read, read_s = delta.get("prompt_tokens_total", 0), delta.get("prompt_seconds_total", 0)
        made, made_s = delta.get("tokens_predicted_total", 0), delta.get("tokens_predicted_seconds_total", 0)
        print(f"server (llama.cpp metrics): read {read:.0f} prompt tokens at {read / max(read_s, 1e-9):.1f} tokens/s "
              f"({prompt - read:.0f} of {prompt} came from its prompt cache); generated {made:.0f} at "
              f"{made / max(made_s, 1e-9):.1f} tokens/s")
    else:
        print("server speeds: no llama.cpp metrics at this server (start llama-server with --metrics)")
    print(f"wall time: {wall:.0f} s ({wall / max(len(names), 1):.0f} s per transcript)")
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    return 0 if judged else 1


if __name__ == "__main__":
    raise SystemExit(main())
