"""Cohort throughput benchmark against a local OpenAI-compatible server with a fixed latency.

    python benchmarks/cohort_bench.py --n 200 --concurrency 16 --latency 0.3

Prints: wall time and its ratio to the ideal N x L / C; model calls, prompt and completion tokens per
transcript; harness CPU time per judgment; peak memory; the cached re-run's time and calls.
The fake server runs in its own process so its CPU does not count as the harness's. Targets (2-core
machine, N=200, C=16, L=300 ms): throughput >= 0.9 of ideal; 1.0 call per transcript; a cached
re-run makes 0 calls in < 5% of the first run's time. Numbers only: nothing here asserts.

    python benchmarks/cohort_bench.py --kill-sweep 2,8,16 --n 120 --latency 0.3

instead kills a live `evaluate cohort` process (SIGKILL) at 25%, 50% and 75% of its calls, runs the
same command again, and prints the calls paid twice beside --concurrency (goal: re-paid <= C: only
what was in flight when it died; every finished reply is journaled as it arrives).

    python benchmarks/cohort_bench.py --memory 1000,10000 [--repeats 3]

instead runs fresh processes on cohorts of 1,000 and 10,000 transcripts (server latency 20 ms), each
size --repeats times, interleaved, and prints every run's peak RSS with the machine's load, then the
medians and their ratio (goal: <= 1.10, memory flat in the cohort's size). One run's peak depends on
when the group commits land, so a single pair of runs can be tens of MiB off either way.

    python benchmarks/cohort_bench.py --floor --process

--process also times `evaluate cohort` as fresh processes on cohorts of 200 and 2,000 transcripts
(`--process N1,N2` for other sizes), first run then the fully cached re-run, which must not import
litellm, pandas or jinja2: the share goal is < 5% at N=200, < 3% at 2,000. --floor also sends
the same requests with the bare clients (litellm in 1, 2 and 4 processes; the openai SDK), nothing of
ours around them: the ceiling any harness built on that client can reach on this machine.
"""

from __future__ import annotations

import argparse
import atexit
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the suite's scripted OpenAI-compatible server
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The runs' read memos (one per cohort folder: evaluator/batch/readmemo.py) go to a folder of this
# benchmark, removed at exit: in the user's cache they were never read again (0.6 GB after a day of runs).
if not os.environ.get("EVALUATOR_CACHE_DIR"):  # one the caller gave is theirs: kept
    os.environ["EVALUATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="evaluator-bench-cache-")
    atexit.register(shutil.rmtree, os.environ["EVALUATOR_CACHE_DIR"], True)


def valid_reply(body: dict) -> str:
    """A valid judgment built from the prompt: every dimension scored, quoting the candidate."""
    from replies import valid  # the test suite's builder (tests/ is on sys.path)

    return valid(body)


def serve(latency: float, port_queue, stop_event) -> None:
    from fakellm import Call, FakeLLM

    with FakeLLM() as server:
        server.script(Call(valid_reply, delay=latency))
        port_queue.put(server.base_url)
        stop_event.wait()
        port_queue.put(len(server.chat_requests))


def make_cohort(folder: Path, n: int) -> None:
    """N distinct transcripts (distinct content hashes) from the sample rounds."""
    samples = sorted(p for p in (ROOT / "transcripts").glob("*.md"))
    for i in range(n):
        text = samples[i % len(samples)].read_text(encoding="utf-8")
        body = text.split("\n---\n", 1)[1] if text.startswith("---\n") else text
        header = f"---\ncandidate: Bench Candidate {i % 40}\ndate: 2026-{1 + i % 12:02d}-{1 + i % 28:02d}\n---\n"
        (folder / f"round_{i:05d}.md").write_text(header + body + f"\n\nInterviewer: Thanks, that's time ({i}).\n",
                                                 encoding="utf-8")


def run_once(folder: Path, db: Path, base_url: str, concurrency: int, cohort: str):
    from evaluator.batch.runner import CohortRequest, score_cohort
    from evaluator.pipeline import JudgeOptions

    options = JudgeOptions(model="openai/bench-model", api_base=base_url, timeout=30, retry_initial_wait=0.05)
    request = CohortRequest(path=folder, cohort=cohort, judge=options, db=db, concurrency=concurrency)
    cpu0, main0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    summary = score_cohort(request)
    run_once.main_thread_cpu = time.thread_time() - main0
    return summary, time.perf_counter() - t0, time.process_time() - cpu0


def floor_requests(folder: Path, base_url: str, n: int) -> list[dict]:
    """The harness's real requests for the cohort: its prompts, response_format and call options."""
    from evaluator.ingest import parse_source, read_source
    from evaluator.judge.llm_adapter import LiteLLMAdapter
    from evaluator.judge.prompt import output_schema, render
    from evaluator.judge.request import ModelConfig
    from evaluator.rubrics import select_rubric_with_warnings

    adapter = LiteLLMAdapter(ModelConfig(model="openai/bench-model", api_base=base_url, timeout=30))
    requests = []
    for path in sorted(folder.glob("*.md"))[:n]:
        source = read_source(path, [])
        rubric = select_rubric_with_warnings(None, source.exercise)[0]
        messages = render(parse_source(source), rubric, rubric.dimensions, adapter.context_tokens(), 4096).messages
        requests.append(adapter.request_kwargs(messages, output_schema(rubric, rubric.dimensions), "json_schema"))
    return requests


def floor_client(client: str, requests: list[dict], concurrency: int, ready, go, results) -> None:
    """One process of the floor measurement: warm up, say ready, wait for `go`, send `requests` C at
    a time with the bare client, report (end time, CPU seconds)."""
    import asyncio

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if client == "litellm":
        from evaluator.judge.litellm_client import load_litellm

        litellm = load_litellm()

        def send(kwargs: dict):
            return litellm.acompletion(**kwargs)
    else:
        import openai

        sdk: list[openai.AsyncOpenAI] = []

        def send(kwargs: dict):
            if not sdk:  # one client per event loop, like the harness's
                sdk.append(openai.AsyncOpenAI(base_url=kwargs["api_base"], api_key="not-needed", max_retries=0))
            body = {k: v for k, v in kwargs.items() if k not in ("api_base", "api_key", "num_retries", "max_retries")}
            return sdk[0].chat.completions.create(**{**body, "model": "bench-model"})

    async def run() -> float:
        gate = asyncio.Semaphore(concurrency)

        async def one(kwargs: dict) -> None:
            async with gate:
                await send(kwargs)

        await send(requests[0])  # connection set-up and lazy first-call work, not timed
        ready.put(os.getpid())
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        cpu0 = time.process_time()
        await asyncio.gather(*(one(k) for k in requests))
        return time.process_time() - cpu0

    cpu = asyncio.run(run())
    results.put((time.time(), cpu))


def client_floor(folder: Path, base_url: str, n: int, concurrency: int) -> list[tuple[str, float, float]]:
    """The same N requests, C in flight in all, sent by the bare clients with nothing of ours around
    them: what the client stack alone allows on this machine, in one process and spread over several
    (processes share C and the requests evenly). Returns (label, wall seconds, CPU ms per request)."""
    requests = floor_requests(folder, base_url, n)
    ctx = mp.get_context("spawn")  # fresh processes: imports are paid before `go`, outside the timing
    out = []
    for client, processes in (("litellm", 1), ("litellm", 2), ("litellm", 4), ("openai", 1)):
        ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
        children = [ctx.Process(target=floor_client, daemon=True, args=(
            client, requests[k::processes], concurrency // processes, ready, go, results)) for k in range(processes)]
        for child in children:
            child.start()
        for _ in children:
            ready.get(timeout=120)
        t0 = time.time()
        go.set()
        ends = [results.get(timeout=300) for _ in children]
        for child in children:
            child.join(timeout=30)
        api = "litellm.acompletion" if client == "litellm" else "openai SDK"
        label = f"{api} x{processes} process{'es' if processes > 1 else ''}"
        out.append((label, max(e for e, _ in ends) - t0, sum(c for _, c in ends) / len(requests) * 1000))
    return out


RERUN_GOALS = {200: 5.0, 2000: 3.0}  # the fully cached re-run's share of the first run, per cohort size (%)


def process_rerun(n: int, concurrency: int, base_url: str, repeats: int = 3) -> dict:
    """`evaluate cohort` as a user runs it, each a fresh process: the first run, then the fully cached
    re-run `repeats` times. Returns wall and CPU (user+sys) seconds of each and the modules the
    re-runs imported that they have no use for. A re-run's whole cost is start-up, reading the files
    and the cache lookups: it must not pay the model client, pandas or the prompt rendering.

    The children get their own cache folder (the first run starts cold: it computes the judge's
    version and litellm's facts and keeps them) and bytecode caching, which this machine's
    PYTHONDONTWRITEBYTECODE turns off: an installed package has its .pyc files (pip compiles them),
    and compiling the package again in every process is not a cost a user pays."""
    import json
    import subprocess

    heavy = ("litellm", "openai", "pandas", "numpy", "scipy", "jinja2")
    probe = ("import json, sys\nfrom evaluator.cli import run\ntry:\n    run()\nfinally:\n"
             f"    print('HEAVY', json.dumps([m for m in {heavy!r} if m in sys.modules]), file=sys.stderr)\n")
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", EVALUATOR_CACHE_DIR=str(Path(tmp) / "cache"),
                   PYTHONPYCACHEPREFIX=str(Path(tmp) / "pyc"))
        folder, db = Path(tmp) / "cohort", Path(tmp) / "proc.duckdb"
        folder.mkdir()
        make_cohort(folder, n)
        cmd = [sys.executable, "-c", probe, "cohort", str(folder), "--cohort", "proc", "--db", str(db),
               "--format", "json", "--model", "openai/bench-model", "--api-base", base_url,
               "--concurrency", str(concurrency), "--timeout", "30"]
        runs, imported = [], []
        for i in range(1 + repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            doc = json.loads(p.stdout)  # a run that failed says so here
            runs.append((wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
            if i:
                assert doc["cached"] == n and doc["calls"] == 0, f"the re-run was not fully cached: {doc}"
                imported = json.loads(p.stderr.rsplit("HEAVY ", 1)[1])
    return {"first": runs[0], "reruns": runs[1:], "imported": imported}


def print_process_rerun(n: int, r: dict) -> None:
    import statistics

    first_wall, first_cpu = r["first"]
    wall = statistics.median(w for w, _ in r["reruns"])
    cpu = statistics.median(c for _, c in r["reruns"])
    goal = RERUN_GOALS.get(n)
    heavy = ", ".join(r["imported"]) or "none of litellm, pandas, jinja2..."
    print(f"  process re-run N={n:<5} first run {first_wall:.2f} s (CPU {first_cpu:.2f} s); fully cached re-run "
          f"{wall:.2f} s (CPU {cpu:.2f} s; median of {len(r['reruns'])}) = {wall / first_wall * 100:.1f}% of the "
          f"first run's time, {cpu / first_cpu * 100:.1f}% of its CPU"
          f"{f' (goal < {goal:g}%)' if goal else ''}; imported: {heavy}")


def longest_prompt() -> tuple[str, int, int, int, int, int]:
    """(sample, transcript characters, code file characters, prompt characters, the same without the
    schema enforced, schema characters) for the sample round with the longest prompt. Prompt characters
    count every message sent (system + user), as sent with `response_format: json_schema`; the schema
    goes beside the messages and is counted apart; "without" is the json_object/none request, which
    shows the reply's shape in the prompt."""
    import json

    from evaluator.ingest import load_transcript
    from evaluator.judge.prompt import output_schema, render
    from evaluator.rubrics import select_rubric_with_warnings

    out = []
    for path in sorted((ROOT / "transcripts").glob("*.md")):
        t = load_transcript(path, [])
        rubric = select_rubric_with_warnings(None, t.exercise)[0]
        sent = [sum(len(m["content"]) for m in render(t, rubric, rubric.dimensions, 128_000, 4096,
                                                       enforced=enforced).messages) for enforced in (True, False)]
        schema = len(json.dumps(output_schema(rubric, rubric.dimensions)))
        code = sum(len(c.content) for c in t.code_files)
        out.append((path.name, len(t.raw_text), code, sent[0], sent[1], schema))
    return max(out, key=lambda r: r[3])


def kill_sweep(n: int, concurrencies: list[int], latency: float) -> None:
    """SIGKILL a live cohort process mid-run, resume it, count the calls made twice."""
    import json
    import signal
    import subprocess

    from fakellm import Call, FakeLLM

    print(f"kill sweep: N={n} L={latency * 1000:.0f} ms; SIGKILL at 25/50/75% of the calls, then the same command")
    print(f"  {'C':>3} {'kill at':>8} {'paid before kill':>17} {'kept':>5} {'paid on resume':>15} {'re-paid':>8}  goal")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with FakeLLM() as server:
        server.script(Call(valid_reply, delay=latency))
        for c in concurrencies:
            for share in (0.25, 0.5, 0.75):
                with tempfile.TemporaryDirectory() as tmp:
                    folder, db = Path(tmp) / "cohort", Path(tmp) / "kill.duckdb"
                    folder.mkdir()
                    make_cohort(folder, n)
                    cmd = [sys.executable, "-c", "from evaluator.cli import run; run()", "cohort", str(folder),
                           "--cohort", "kill", "--db", str(db), "--format", "json", "--model", "openai/bench-model",
                           "--api-base", server.base_url, "--concurrency", str(c), "--timeout", "30"]
                    server.clear()
                    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    while len(server.chat_requests) < int(n * share) and proc.poll() is None:
                        time.sleep(0.005)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    before = len(server.chat_requests)
                    server.clear()
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False).stdout
                    after = len(server.chat_requests)
                    kept = json.loads(out)["cached"]
                    re_paid = before + after - n
                    print(f"  {c:>3} {share * 100:>7.0f}% {before:>17} {kept:>5} {after:>15} {re_paid:>8}  "
                          f"{'ok' if re_paid <= c else 'OVER'} (<= {c})")


def memory_sweep(sizes: list[int], concurrency: int, repeats: int) -> None:
    """Peak RSS of `repeats` fresh processes per cohort size (fake server latency 20 ms), sizes
    interleaved (1k, 10k, 1k, 10k...) so a change in the machine's load lands on both; every run is
    printed with the load at its start, then the medians and their ratio."""
    import statistics
    import subprocess

    peaks: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(repeats):
        for n in sizes:
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            out = subprocess.run([sys.executable, __file__, "--n", str(n), "--concurrency", str(concurrency),
                                  "--latency", "0.02"], capture_output=True, text=True, check=True).stdout
            rss = next(line for line in out.splitlines() if "peak RSS" in line).split("peak RSS", 1)[1].strip()
            peaks[n].append(float(rss.split()[0]))
            print(f"run {r + 1}/{repeats} N={n:>6}: peak RSS {rss}; machine load {load} at its start "
                  f"(1, 5, 15 min; {os.cpu_count()} cores)", flush=True)
    for n in sizes:
        runs = ", ".join(f"{p:.0f}" for p in peaks[n])
        print(f"N={n:>6}: median peak RSS {statistics.median(peaks[n]):.0f} MiB (runs: {runs})")
    if len(sizes) > 1:
        low, high = statistics.median(peaks[sizes[0]]), statistics.median(peaks[sizes[-1]])
        print(f"largest over smallest (medians): {high / low:.2f} (goal <= 1.10: memory flat in the cohort's size)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--floor", action="store_true", help="also time the same requests sent by the bare "
                    "clients (litellm, the openai SDK) with nothing of ours around them: the ceiling for the harness")
    ap.add_argument("--process", nargs="?", const="200,2000", metavar="N1,N2", help="also run `evaluate cohort` "
                    "as fresh processes, first run then the fully cached re-run (3 times), on cohorts of these sizes "
                    "(default 200,2000: the goals' sizes), and print the re-run's share of the first run")
    ap.add_argument("--memory", metavar="N1,N2", help="instead: peak RSS of fresh processes scoring N1 and N2 "
                    "transcripts (latency 20 ms; --repeats of each, every run printed, then the medians), to "
                    "show memory stays flat as the cohort grows")
    ap.add_argument("--repeats", type=int, default=3, help="with --memory: fresh processes per size (every "
                    "run is printed, and the median; one run's peak varies by tens of MiB with when commits land)")
    ap.add_argument("--kill-sweep", metavar="C1,C2", help="instead: SIGKILL live runs at these concurrencies "
                    "mid-run, resume, and print the calls paid twice (goal: <= C)")
    args = ap.parse_args()
    if args.kill_sweep:
        kill_sweep(args.n, [int(c) for c in args.kill_sweep.split(",")], args.latency)
        return
    if args.memory:
        memory_sweep([int(n) for n in args.memory.split(",")], args.concurrency, args.repeats)
        return

    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    from evaluator.judge.litellm_client import load_litellm

    # one-time imports, paid once per process, are kept out of the timed region: litellm and the
    # client stack it loads (4-5 s)
    t_import = time.perf_counter()
    load_litellm()
    t_import = time.perf_counter() - t_import
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=serve, args=(args.latency, ports, stop), daemon=True)
    server.start()
    base_url = ports.get(timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        folder, db = Path(tmp) / "cohort", Path(tmp) / "bench.duckdb"
        folder.mkdir()
        make_cohort(folder, args.n)
        first, wall, cpu = run_once(folder, db, base_url, args.concurrency, "bench")
        main_cpu = run_once.main_thread_cpu
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cached, cached_wall, _ = run_once(folder, db, base_url, args.concurrency, "bench")
        floor = client_floor(folder, base_url, args.n, args.concurrency) if args.floor else []
        sizes = [int(k) for k in args.process.split(",")] if args.process else []
        proc = {k: process_rerun(k, args.concurrency, base_url) for k in sizes}
        stop.set()
        server_requests = ports.get(timeout=30)
    server.join(timeout=10)

    ideal = args.n * args.latency / args.concurrency
    n = max(first.total, 1)
    print(f"cohort benchmark: N={args.n} C={args.concurrency} L={args.latency * 1000:.0f} ms")
    print(f"  scored              {first.scored}/{first.total} (partial {first.partial}, failed {first.failed})")
    print(f"  wall                {wall:.2f} s   ideal N*L/C {ideal:.2f} s   throughput ratio {ideal / wall:.2f}")
    print(f"  calls/transcript    {first.calls / n:.2f}   (server saw {server_requests} requests in both runs)")
    print(f"  tokens/transcript   prompt {first.prompt_tokens / n:.0f}   completion {first.completion_tokens / n:.0f}")
    print(f"  harness CPU         {cpu / n * 1000:.1f} ms per judgment ({cpu:.2f} s total; "
          f"event-loop thread {main_cpu:.2f} s = {main_cpu / wall * 100:.0f}% of the wall time)")
    print(f"  peak RSS            {rss_after:.0f} MiB (after importing litellm: {rss_before:.0f} MiB)")
    for label, floor_wall, floor_cpu in floor:
        print(f"  floor: {label:<33} {floor_wall:.2f} s   ratio {ideal / floor_wall:.2f}   "
              f"CPU {floor_cpu:.1f} ms per request")
    if floor:  # same requests, same server, same round: ours over bare litellm in one process
        ours, bare = first.calls / wall, args.n / floor[0][1]
        print(f"  request rate        ours {ours:.1f}/s   bare litellm.acompletion {bare:.1f}/s   "
              f"ratio {ours / bare:.2f} (goal >= 0.9)")
    for k, r in proc.items():
        print_process_rerun(k, r)
    name, chars, code, prompt, unenforced, schema = longest_prompt()
    print(f"  prompt              {prompt} characters in the messages on the longest sample ({name}: transcript "
          f"{chars}, code files {code}) + {schema} characters of response_format schema; {unenforced} without the "
          "schema enforced (json_object/none: the shape is in the prompt)")
    print(f"  one-time imports    {t_import:.2f} s (litellm and its client stack; not in the timed runs)")
    print(f"  cached re-run       {cached_wall:.3f} s = {cached_wall / wall * 100:.1f}% of the first run, "
          f"{cached.calls} calls, {cached.cached} cached")
    print(f"  machine load        {load0} at the start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end "
          f"(1, 5, 15 min; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
