"""Benchmark: `evaluate cohort --batch` through the fake batch server (tests/fakebatch.py, real HTTP
through litellm, real DuckDB), and a kill -9 sweep.

    python benchmarks/batch_bench.py [--n 1000 10000] [--sweep 20] [--sweep-n 30] [--waves 4]

Per N: N transcripts (the sample rounds repeated, each with a varying closing line so content hashes
differ), judged by the real CLI in a subprocess (`evaluate cohort --batch`) against the fake batch
server running in this process. Prints the time to render and upload (the submitting run: read, hash,
render, write the input files, record, upload, create), the time to collect and store (download,
store the replies, judge them through the normal parse path, write the judgments), the peak RSS of
each of those two processes (VmHWM polled from /proc: the fake server's copies are not counted), and
the store's size and bytes per request row in the ledger.

Sweep: SWEEP runs of a smaller cohort, each killed with SIGKILL: the first four at the ledger's
crash hooks (EVALUATOR_TEST_CRASH_AT = after_record, after_upload, after_create, during_download), the
rest after a delay spread over the run's lifetime. Each is then finished by running the same command until nothing
waits, and the sweep prints, per kill, lost (transcripts never scored) and duplicated (requests the
server received in more than one created batch). Goal: 0 / 0. No assertions: people read the numbers.

Waves (`--waves K`, default 4; 0 skips): the same sweep with `--max-enqueued-tokens` set to a K-th of
the cohort's estimated prompt tokens (and the fake server enforcing that limit), so each cohort goes
to the provider in about K waves; two more hook kills land in a wave (the run after the first collects
a batch and is killed after uploading / after creating the next queued one).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The runs' read memos (one per cohort folder: evaluator/batch/readmemo.py) go to a folder of this
# benchmark, removed at exit: in the user's cache they were never read again (0.6 GB after a day of runs).
if not os.environ.get("EVALUATOR_CACHE_DIR"):  # one the caller gave is theirs: kept
    os.environ["EVALUATOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="evaluator-bench-cache-")
    atexit.register(shutil.rmtree, os.environ["EVALUATOR_CACHE_DIR"], True)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fakellm import Call, FakeLLM  # noqa: E402
from replies import valid  # noqa: E402

from evaluator.batch.provider_batch import BatchOptions, score_cohort_batch  # noqa: E402
from evaluator.batch.types import CohortRequest  # noqa: E402
from evaluator.pipeline import JudgeOptions  # noqa: E402

SAMPLES = sorted((REPO / "transcripts").glob("*.md"))
MODEL = "openai/test-model"


def make_cohort(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    texts = [p.read_text(encoding="utf-8") for p in SAMPLES]
    for i in range(n):
        (folder / f"round_{i:05d}.md").write_text(
            texts[i % len(texts)] + f"\n\nInterviewer: Thanks, that's time ({i:05d}).\n", encoding="utf-8")


def request(folder: Path, db: Path, fake: FakeLLM) -> CohortRequest:
    """The cohort as the library takes it (the finishing runs of the sweep go in-process)."""
    judge = JudgeOptions(model=MODEL, api_base=fake.base_url, timeout=60.0, retry_initial_wait=0.01)
    return CohortRequest(path=folder, cohort="bench", judge=judge, db=db, concurrency=8)


def until_done(fake: FakeLLM, folder: Path, db: Path, limit: int | None = None, rounds: int = 16) -> tuple[int, int]:
    """Run the same command until nothing waits (a wave a run); (scored, total)."""
    summary = None
    for _ in range(rounds):
        summary = score_cohort_batch(request(folder, db, fake), BatchOptions(max_enqueued_tokens=limit))
        if not summary.skipped:
            break
    assert summary is not None
    return summary.scored, summary.total


def _hwm_mb(pid: int) -> float | None:
    """The process's peak RSS so far (VmHWM: per address space, so reset by exec; the rusage of a
    child would start from this process's size at the fork, fake server and all)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def timed_cli(fake: FakeLLM, folder: Path, db: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one `evaluate cohort --batch` subprocess."""
    t0 = time.perf_counter()
    proc = cli(fake, folder, db, None, None)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _hwm_mb(proc.pid) or 0.0)
        time.sleep(0.1)
    return time.perf_counter() - t0, peak, proc.returncode


def bench(n: int, base: Path) -> None:
    folder, db = base / f"rounds_{n}", base / f"bench_{n}.duckdb"
    make_cohort(folder, n)
    with FakeLLM(Call(valid)) as fake:
        fake.batch_state.steps_to_finish = 1  # the first poll finds it completed
        up, up_mb, up_code = timed_cli(fake, folder, db)
        creates = fake.batch_creates
        down, down_mb, down_code = timed_cli(fake, folder, db)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    scored = con.execute("SELECT count(*) FILTER (status = 'scored') FROM judgments").fetchone()[0]
    body = con.execute("SELECT avg(length(body)), count(*) FROM batch_requests").fetchone()
    con.close()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"N={n}: render+upload {up:.1f} s (exit {up_code}, {creates} batch(es), peak RSS {up_mb:.0f} MB); "
          f"collect+store {down:.1f} s (exit {down_code}, {scored} scored, peak RSS {down_mb:.0f} MB); "
          f"store {db.stat().st_size / 1e6:.0f} MB, ledger body {body[0]:.0f} B/request over {body[1]} rows; "
          f"machine load {load} (1, 5, 15 min; {os.cpu_count()} cores)", flush=True)


def cli(fake: FakeLLM, folder: Path, db: Path, crash: str | None, limit: int | None) -> subprocess.Popen:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("EVALUATOR_TEST_CRASH_AT", None)
    if crash:
        env["EVALUATOR_TEST_CRASH_AT"] = crash
    args = ["cohort", str(folder), "--cohort", "bench", "--db", str(db), "--format", "json", "--batch",
            "--model", MODEL, "--api-base", fake.base_url, "--retry-wait", "0.01"]
    if limit:
        args += ["--max-enqueued-tokens", str(limit)]
    return subprocess.Popen([sys.executable, "-c", "from evaluator.cli import run; run()", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def duplicated(fake: FakeLLM) -> int:
    """Requests that went into more than one created batch."""
    st = fake.batch_state
    seen: Counter[str] = Counter()
    import json

    for b in st.batches.values():
        for line in st.files[b["input_file_id"]][1].splitlines():
            if line.strip():
                seen[json.loads(line)["custom_id"]] += 1
    return sum(c - 1 for c in seen.values() if c > 1)


def lifetime(n: int, base: Path) -> tuple[float, int]:
    """Seconds one unkilled submitting run of this cohort takes (the timed kills are spread over it),
    and the cohort's estimated prompt tokens as the ledger records them (what waves are cut by)."""
    import duckdb

    folder, db = base / "lifetime", base / "lifetime.duckdb"
    make_cohort(folder, n)
    with FakeLLM(Call(valid)) as fake:
        t0 = time.perf_counter()
        cli(fake, folder, db, None, None).wait(timeout=300)
        took = time.perf_counter() - t0
    con = duckdb.connect(str(db), read_only=True)
    tokens = con.execute("SELECT coalesce(sum(enqueued_tokens), 0) FROM batch_ledger").fetchone()[0]
    con.close()
    return took, int(tokens)


def sweep(kills: int, n: int, base: Path, waves: int = 0) -> None:
    """Run until `kills` SIGKILLs were delivered (at most 2 x kills runs): the hooks first, then
    timed kills spread over a run's lifetime. A run that ends before its kill shortens the lifetime
    the next delays are spread over (the machine's load changes under the sweep). `waves`: the
    cohort goes to the provider in about that many waves (--max-enqueued-tokens)."""
    hooks = ["after_record", "after_upload", "after_create", "during_download"]
    totals = [0, 0, 0]  # lost, duplicated, kills delivered
    life, tokens = lifetime(n, base)
    limit = -(-tokens // waves) if waves else None
    if limit:
        hooks += ["wave:after_upload", "wave:after_create"]
    timed = max(kills - len(hooks), 1)
    print(f"sweep{' in waves' if limit else ''}: an unkilled submitting run of {n} transcripts takes {life:.1f} s "
          f"(CLI start-up included)" + (f"; --max-enqueued-tokens {limit} ({tokens} estimated prompt tokens, "
                                         f"about {waves} waves)" if limit else ""))
    k = 0
    while totals[2] < kills and k < 2 * kills:
        folder, db = base / f"sweep_{k}", base / f"sweep_{k}.duckdb"
        make_cohort(folder, n)
        with FakeLLM(Call(valid)) as fake:
            fake.batch_state.steps_to_finish = 1
            fake.batch_state.enqueued_token_limit = limit
            hook = hooks[k] if k < len(hooks) else None
            # submit first, so the killed run is the collecting one (and, for wave:, the one submitting a wave)
            if hook == "during_download" or (hook or "").startswith("wave:"):
                score_cohort_batch(request(folder, db, fake), BatchOptions(max_enqueued_tokens=limit))
            t0 = time.perf_counter()
            proc = cli(fake, folder, db, hook.removeprefix("wave:") if hook else None, limit)
            if hook:
                proc.wait(timeout=300)
                where = hook
            else:  # a kill at a time spread over the run: reading, rendering, uploading, creating, ledger
                delay = life * (0.1 + 0.8 * ((totals[2] - len(hooks)) % timed) / timed)
                try:
                    proc.wait(timeout=delay)
                    life = min(life, time.perf_counter() - t0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                where = f"t={delay:.1f}s"
            scored, total = until_done(fake, folder, db, limit)
            lost, dup = total - scored, duplicated(fake)
        totals[0] += lost
        totals[1] += dup
        totals[2] += proc.returncode == -9
        k += 1
        print(f"run {k:2d}: kill at {where:16s} exit {proc.returncode:4d}"
              f"{'' if proc.returncode == -9 else ' (finished before the kill)'}: lost {lost}, duplicated {dup}, "
              f"batches created {fake.batch_creates}, refused for the queue limit {fake.batch_state.limit_failures}",
              flush=True)
    print(f"sweep{' in waves' if limit else ''}: {k} runs, {totals[2]} killed with SIGKILL, lost {totals[0]}, "
          f"duplicated {totals[1]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="*", default=[1000, 10000])
    ap.add_argument("--sweep", type=int, default=20)
    ap.add_argument("--sweep-n", type=int, default=30)
    ap.add_argument("--waves", type=int, default=4, help="also sweep in about this many waves (0: skip)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.n:
            bench(n, Path(tmp))
        if a.sweep:
            sweep(a.sweep, a.sweep_n, Path(tmp))
            if a.waves:
                sweep(a.sweep, a.sweep_n, Path(tmp) / "waves", a.waves)


if __name__ == "__main__":
    main()
