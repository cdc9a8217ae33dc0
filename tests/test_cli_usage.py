"""What a new user meets at the command line: option checks, typos, pipes, several files and stdin,
--fail-under, the config file, show / judgments list / export, cohort formats, JSON errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from fakellm import Call, FakeLLM
from replies import valid
from typer.testing import CliRunner

from evaluator.cli import app

REPO = Path(__file__).resolve().parent.parent
LRU = REPO / "transcripts" / "lru_ttl_cache.md"
RAG = REPO / "transcripts" / "rag_pipeline.md"
ENV_VARS = ("EVALUATOR_MODEL", "EVALUATOR_API_BASE", "EVALUATOR_API_KEY", "EVALUATOR_DB", "EVALUATOR_RUBRICS_DIR",
            "EVALUATOR_CONFIG")
WIDE = {"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
EXE = Path(sys.executable).with_name("evaluate")


pytestmark = pytest.mark.usefixtures("isolated")


def invoke(*args: object, env: dict[str, str] | None = None, input: bytes | str | None = None):
    result = CliRunner().invoke(app, [str(a) for a in args], env={**WIDE, **(env or {})}, input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output + result.stderr
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


def process_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(WIDE, **extra)
    return env


# ---------------------------------------------------------------------------------- option checks

BAD_VALUES = [("--max-tokens", "0"), ("--retries", "-3"), ("--timeout", "0"), ("--price-in", "-5"),
              ("--price-out", "-1"), ("--retry-wait", "-1"), ("--repair-attempts", "-1"), ("--context-tokens", "0"),
              ("--temperature", "-0.5")]


@pytest.mark.parametrize("command", ["judge", "cohort"])
@pytest.mark.parametrize("option, value", BAD_VALUES)
def test_bad_option_values_are_refused_with_the_baseline_judge_too(tmp_path, command, option, value):
    target = ["judge", LRU] if command == "judge" else ["cohort", LRU.parent, "--cohort", "c"]
    r = invoke(*target, option, value, "--db", tmp_path / "e.duckdb")
    assert r.exit_code == 2, r.output
    assert option in flat(r.stderr)
    assert not (tmp_path / "e.duckdb").exists()


def test_db_in_a_missing_folder_is_refused_not_created(tmp_path):
    r = invoke(LRU, "--db", tmp_path / "no" / "such" / "x.duckdb")
    assert r.exit_code == 2
    assert "does not exist" in flat(r.stderr) and "--db" in flat(r.stderr)
    assert not (tmp_path / "no").exists()
    env = invoke(LRU, env={"EVALUATOR_DB": str(tmp_path / "gone" / "x.duckdb")})  # the environment too
    assert env.exit_code == 2 and not (tmp_path / "gone").exists()


def test_judge_and_cohort_take_the_same_judge_options():
    from typer.main import get_command

    from evaluator.cli.options import JUDGE_PARAMS

    commands = get_command(app).commands  # type: ignore[attr-defined]
    for name in ("judge", "cohort"):
        params = {p.name for p in commands[name].params}
        assert {p.name for p in JUDGE_PARAMS} <= params, name


def test_cli_has_one_error_handler():
    """Every command lets EvaluatorError reach the app's handler (no per-command try/except copies)."""
    for path in (REPO / "evaluator" / "cli").glob("*.py"):
        if path.name != "__init__.py":
            assert "except EvaluatorError" not in path.read_text(), path


# ---------------------------------------------------------------------------------- typos, help

@pytest.mark.parametrize("args, meant", [(["reprot"], "report"), (["rubric", "list"], "rubrics"),
                                         (["cohrot", "x"], "cohort")])
def test_mistyped_command_suggests_the_command(args, meant):
    r = invoke(*args)
    assert r.exit_code == 2
    assert f"evaluate {meant}" in flat(r.output + r.stderr)
    assert "file not found" not in flat(r.output + r.stderr)


def test_a_file_named_like_a_command_is_still_a_transcript(tmp_path):
    (tmp_path / "reprot").write_text(LRU.read_text())
    r = invoke("reprot", "--no-store")
    assert r.exit_code == 0, r.output


def test_help_lists_exit_codes_completion_and_word_metavars():
    top = flat(invoke("--help").output)
    assert "--install-completion" in top
    for code in ("0:", "1:", "2:", "3:", "4:", "141:"):
        assert code in top
    judge = invoke("judge", "--help").output
    assert "<list[" not in judge and "<bool>" not in judge and "<str>" not in judge
    assert "DB" in judge and "[DIM=]SCORE" in judge


def test_shell_completion_script_and_completions():
    if not EXE.exists():
        pytest.skip("console script not installed next to this interpreter")
    # `--show-completion` detects the shell from the process's parents, as it does for a user typing it
    # in bash; run it under bash (`; true` keeps bash from exec-ing the command away) so the test does
    # not depend on whether pytest itself was started from a shell (nohup, CI, setsid).
    script = subprocess.run(["bash", "-c", f"'{EXE}' --show-completion; true"], capture_output=True,
                            text=True, timeout=60, env=process_env())
    assert script.returncode == 0 and "COMPREPLY" in script.stdout, (script.stdout, script.stderr)
    p = subprocess.run([str(EXE)], capture_output=True, text=True, timeout=60, env=process_env(_EVALUATE_COMPLETE="complete_bash",
                                                              COMP_WORDS="evaluate rep", COMP_CWORD="1"))
    assert p.stdout.split() == ["report"], (p.stdout, p.stderr)


# ---------------------------------------------------------------------------------- JSON errors

def test_errors_are_json_under_format_json(tmp_path):
    r = invoke(tmp_path / "absent.md", "--format", "json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc["exit_code"] == 2 and "absent.md" in doc["error"]
    usage = invoke(LRU, "--format", "json", "--max-tokens", "0")  # a usage error, before the command runs
    assert usage.exit_code == 2 and json.loads(usage.stdout)["exit_code"] == 2


# ---------------------------------------------------------------------------------- closed pipe

def test_closed_stdout_is_not_a_judgment_status(tmp_path):
    if not EXE.exists():
        pytest.skip("console script not installed next to this interpreter")
    for fmt in ("table", "json"):
        read, write = os.pipe()
        os.close(read)  # the reader (`| head -1`) is gone before we write
        try:
            p = subprocess.run([str(EXE), str(LRU), "--no-store", "--format", fmt], stdout=write,
                               stderr=subprocess.PIPE, text=True, env=process_env(), cwd=tmp_path, timeout=120)
        finally:
            os.close(write)
        assert p.returncode == 141, (fmt, p.returncode, p.stderr)
        assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr


def _to_closed_stdout(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([str(EXE), *args], stdout=write, stderr=subprocess.PIPE, text=True, env=process_env(),
                              cwd=cwd, timeout=120)
    finally:
        os.close(write)


def test_every_kind_of_output_to_a_closed_pipe_exits_141_quietly(tmp_path):
    """`evaluate --help | head -1` and the like: help and --version (printed while arguments are parsed,
    by typer's own rich console or click's echo), tables, JSON written at exit, a written report."""
    if not EXE.exists():
        pytest.skip("console script not installed next to this interpreter")
    db = tmp_path / "e.duckdb"
    assert invoke("cohort", LRU.parent, "--cohort", "c", "--db", db).exit_code == 0
    for args in (["--help"], ["cohort", "--help"], ["rubrics", "show", "--help"], ["--version"], ["rubrics", "list"],
                 ["runs", "--db", str(db)], ["runs", "--db", str(db), "--format", "json"], ["batches", "--db", str(db)],
                 ["judgments", "list", "--db", str(db)], ["report", "--db", str(db), "--out", str(tmp_path / "r")]):
        p = _to_closed_stdout(args, tmp_path)
        assert p.returncode == 141, (args, p.returncode, p.stderr)
        assert p.stderr == "", (args, p.stderr)


def test_an_error_whose_json_document_meets_a_closed_pipe_keeps_its_exit_code(tmp_path):
    if not EXE.exists():
        pytest.skip("console script not installed next to this interpreter")
    p = _to_closed_stdout(["runs", "--db", str(tmp_path / "absent.duckdb"), "--format", "json"], tmp_path)
    assert p.returncode == 2, p.stderr
    assert "absent.duckdb" in p.stderr and "Traceback" not in p.stderr and "Exception ignored" not in p.stderr


# ---------------------------------------------------------------------------------- unknown provider

def test_unknown_provider_is_exit_3_for_judge_and_cohort(tmp_path, fake_llm: FakeLLM):
    args = ["--model", "nosuchprovider/x", "--api-base", fake_llm.base_url, "--retries", "0", "--format", "json"]
    one = invoke(LRU, "--db", tmp_path / "a.duckdb", *args)
    assert one.exit_code == 3, one.output
    assert "nosuchprovider/x" in flat(one.stderr)
    folder = tmp_path / "c"
    folder.mkdir()
    for name in ("a.md", "b.md"):
        (folder / name).write_text(LRU.read_text())
    many = invoke("cohort", folder, "--cohort", "c", "--db", tmp_path / "b.duckdb", *args)
    assert many.exit_code == 3, many.output
    assert json.loads(many.stdout)["status"] == "aborted"


# ---------------------------------------------------------------------------------- model client notice

@pytest.mark.slow  # loads litellm in a fresh process (5-20 s)
def test_loading_the_model_client_is_said_on_a_terminal(tmp_path, fake_llm: FakeLLM):
    if not EXE.exists():
        pytest.skip("console script not installed next to this interpreter")
    # said when the client loads, which is when a judgment needs it (a missing file loads nothing)
    fake_llm.script(Call(valid))
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "EVALUATOR_CACHE_DIR": str(tmp_path / "cache")}
    missing = [str(EXE), str(tmp_path / "absent.md"), "--no-store", "--model", "openai/test-model",
               "--api-base", fake_llm.base_url]
    tty = subprocess.run(missing, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=process_env(TTY_COMPATIBLE="1", **env))
    assert tty.returncode == 2 and "loading the model client" not in tty.stderr, tty.stderr
    args = [str(EXE), str(LRU), "--no-store", "--model", "openai/test-model", "--api-base", fake_llm.base_url]
    tty = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=process_env(TTY_COMPATIBLE="1", **env))
    assert "loading the model client" in tty.stderr, tty.stderr
    piped = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env=process_env(**env))
    assert "loading the model client" not in piped.stderr


# ---------------------------------------------------------------------------------- several files, stdin

def test_stdin_transcript_is_judged_and_named_stdin(tmp_path):
    r = invoke("-", "--db", tmp_path / "e.duckdb", "--format", "json", input=LRU.read_bytes())
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["transcript"]["source"] == "<stdin>" and doc["status"] == "scored"
    alone = tmp_path / "alone" / LRU.name  # stdin has no folder: no code file beside it is found
    alone.parent.mkdir()
    alone.write_bytes(LRU.read_bytes())
    same = json.loads(invoke(alone, "--no-store", "--format", "json").stdout)
    assert doc["transcript"]["hash"] != "" and [d["score"] for d in doc["dimensions"]] == \
        [d["score"] for d in same["dimensions"]]
    empty = invoke("-", "--no-store", input=b"")
    assert empty.exit_code == 2 and "<stdin>" in flat(empty.stderr)


def test_several_files_exit_with_the_worst_status(tmp_path):
    ok = invoke(LRU, RAG, "--db", tmp_path / "e.duckdb", "--format", "json")
    assert ok.exit_code == 0, ok.output
    docs = json.loads(ok.stdout)
    assert [Path(d["transcript"]["source"]).name for d in docs] == ["lru_ttl_cache.md", "rag_pipeline.md"]
    bad = invoke(LRU, tmp_path / "absent.md", "--no-store", "--format", "json")
    assert bad.exit_code == 2
    first, second = json.loads(bad.stdout)
    assert first["status"] == "scored" and second["exit_code"] == 2 and "absent.md" in second["error"]
    table = invoke(LRU, tmp_path / "absent.md", "--no-store")
    assert table.exit_code == 2 and "lru_ttl_cache.md" in table.output and "absent.md" in flat(table.stderr)


def test_code_with_several_transcripts_is_refused(tmp_path):
    r = invoke(LRU, RAG, "--code", REPO / "transcripts" / "lru_ttl_cache.py", "--no-store")
    assert r.exit_code == 2 and "--code" in flat(r.stderr)


# ---------------------------------------------------------------------------------- --fail-under

def _scores(db: Path) -> dict[str, int]:
    doc = json.loads(invoke(LRU, "--db", db, "--format", "json").stdout)
    return {d["id"]: d["score"] for d in doc["dimensions"] if d["score"] is not None}


def test_fail_under_gates_a_judgment(tmp_path):
    db = tmp_path / "e.duckdb"
    scores = _scores(db)
    dim, low = min(scores.items(), key=lambda kv: kv[1])
    mean = sum(scores.values()) / len(scores)
    assert invoke(LRU, "--db", db, "--fail-under", f"{dim}={low}").exit_code == 0
    above = invoke(LRU, "--db", db, "--fail-under", f"{dim}={low + 0.5}", "--format", "json")
    assert above.exit_code == 4
    assert json.loads(above.stdout)["fail_under"] == [f"{dim} {low:.2f} < {low + 0.5:g}"]
    assert invoke(LRU, "--db", db, "--fail-under", f"{mean:.2f}").exit_code == (0 if round(mean, 2) <= mean else 4)
    table = invoke(LRU, "--db", db, "--fail-under", f"{mean + 0.01:.2f}")
    assert table.exit_code == 4 and "below --fail-under" in table.output
    assert invoke(LRU, "--db", db, "--fail-under", "nosuchdim=3").exit_code == 2
    assert invoke(LRU, "--db", db, "--fail-under", "abc").exit_code == 2


def test_fail_under_gates_a_cohort_mean(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    for src in (LRU, RAG):
        (folder / src.name).write_text(src.read_text())
    db = tmp_path / "e.duckdb"
    doc = json.loads(invoke("cohort", folder, "--cohort", "c", "--db", db, "--format", "json").stdout)
    means = {d: v["mean"] for d, v in doc["dimensions"].items() if v["mean"] is not None}
    dim, mean = min(means.items(), key=lambda kv: kv[1])
    assert invoke("cohort", folder, "--cohort", "c", "--db", db, "--fail-under", f"{dim}={mean}").exit_code == 0
    gated = invoke("cohort", folder, "--cohort", "c", "--db", db, "--fail-under", f"{dim}={mean + 0.1}",
                   "--format", "json")
    assert gated.exit_code == 4 and json.loads(gated.stdout)["fail_under"]


def test_fail_under_outside_the_rubric_scale_is_refused_before_any_call(tmp_path, fake_llm: FakeLLM):
    """`--fail-under 9` on a 1-5 rubric can never pass and `0.5` can never fail: exit 2 naming the scale,
    before the model is asked anything (the rubric is known only once the transcript is read)."""
    model = ["--model", "openai/m", "--api-base", fake_llm.base_url, "--retries", "0"]
    for value, never in (("9", "be reached"), ("0.5", "fail"), ("invariant=5.5", "be reached")):
        r = invoke(LRU, "--db", tmp_path / "e.duckdb", "--fail-under", value, *model)
        assert r.exit_code == 2, (value, r.output)
        assert f"--fail-under {value}: rubric 'lru_ttl_cache' scores 1-5" in flat(r.stderr)
        assert f"can never {never}" in flat(r.stderr) and "within 1-5" in flat(r.stderr)
    typo = invoke(LRU, "--no-store", "--fail-under", "invarient=3", *model)
    assert typo.exit_code == 2 and "no such dimension" in flat(typo.stderr)
    assert fake_llm.chat_requests == [] and not (tmp_path / "e.duckdb").exists()
    fake_llm.script(Call(valid))
    edge = invoke(LRU, "--no-store", "--fail-under", "5", "--fail-under", "invariant=1", *model)
    assert edge.exit_code in (0, 4), edge.output  # the scale's own ends are thresholds like any other


def test_cohort_fail_under_outside_every_rubric_scale_is_refused_before_judging(tmp_path):
    db = tmp_path / "e.duckdb"
    for args in (["--fail-under", "9"], ["--fail-under", "restraint=0"], ["--rubric", "default", "--fail-under", "6"]):
        r = invoke("cohort", LRU.parent, "--cohort", "c", "--db", db, *args)
        assert r.exit_code == 2, (args, r.output)
        assert "1-5" in flat(r.stderr) and "can never" in flat(r.stderr)
    assert not db.exists()  # refused before the run: nothing judged, nothing stored
    assert invoke("cohort", LRU.parent, "--cohort", "c", "--db", db, "--fail-under", "nosuch=3").exit_code == 2


def _ten_point_rubrics(folder: Path) -> Path:
    """The default rubric (1-5) and one that extends it on a 0-10 scale, claiming the exercise `essay`."""
    import yaml

    from evaluator.rubrics import builtin_rubrics_dir

    folder.mkdir()
    base = builtin_rubrics_dir()
    assert base is not None
    (folder / "default.yaml").write_text((base / "default.yaml").read_text())
    default = yaml.safe_load((base / "default.yaml").read_text())
    dims = [{"id": d["id"], "anchors": {i: f"level {i} of {d['id']}" for i in range(11)}} for d in default["dimensions"]]
    (folder / "ten.yaml").write_text(yaml.safe_dump({"id": "ten", "title": "Ten", "extends": "default",
                                                     "exercises": ["essay"], "scale": {"min": 0, "max": 10},
                                                     "dimensions": dims}))
    return folder


def test_fail_under_with_rubrics_on_different_scales(tmp_path):
    """Without --rubric a cohort's threshold is checked, before any call, against each rubric its
    transcripts' exercises select: one off the scale of any of them can never pass (or never fail)
    for that rubric's transcripts, so it is refused naming it. A single transcript is held to its own
    rubric's scale."""
    env = {"EVALUATOR_RUBRICS_DIR": str(_ten_point_rubrics(tmp_path / "rubrics"))}
    db = tmp_path / "e.duckdb"
    essay_text = "---\nexercise: essay\n---\n" + LRU.read_text().split("---", 2)[-1]
    plain, essays, mixed = tmp_path / "plain", tmp_path / "essays", tmp_path / "mixed"
    for folder in (plain, essays, mixed):
        folder.mkdir()
    (plain / "a.md").write_text(LRU.read_text())  # exercise lru_ttl_cache: no such rubric here, the default
    (essays / "essay.md").write_text(essay_text)
    (mixed / "a.md").write_text(LRU.read_text())
    (mixed / "essay.md").write_text(essay_text)

    only_default = invoke("cohort", plain, "--cohort", "c", "--db", db, "--fail-under", "8", env=env)
    assert only_default.exit_code == 2, only_default.output
    assert ("--fail-under 8: rubric 'default' (used by 1 transcript of this cohort) scores 1-5, so a mean of 8 "
            "over all dimensions can never be reached; give a score within 1-5") in flat(only_default.stderr)
    assert not db.exists()  # refused before the run: nothing judged, nothing stored
    one_off = invoke("cohort", mixed, "--cohort", "c", "--db", db, "--fail-under", "invariant=8", env=env)
    assert one_off.exit_code == 2 and "rubric 'default' (used by 1 transcript of this cohort)" in flat(one_off.stderr)
    assert not db.exists()
    fits_none = invoke("cohort", mixed, "--cohort", "c", "--db", db, "--fail-under", "11", env=env)
    assert fits_none.exit_code == 2
    assert "1-5 ('default'), 0-10 ('ten')" in flat(fits_none.stderr) and "within 1-5" in flat(fits_none.stderr)
    typo = invoke("cohort", mixed, "--cohort", "c", "--db", db, "--fail-under", "nosuch=3", env=env)
    assert typo.exit_code == 2 and "the rubrics this cohort's transcripts use" in flat(typo.stderr)
    assert not db.exists()
    fits_ten = invoke("cohort", essays, "--cohort", "c", "--db", db, "--fail-under", "8", env=env)
    assert fits_ten.exit_code in (0, 4), fits_ten.output  # every transcript is on the 0-10 scale
    fits_both = invoke("cohort", mixed, "--cohort", "c2", "--db", db, "--fail-under", "3", env=env)
    assert fits_both.exit_code in (0, 4), fits_both.output
    exact = invoke("cohort", essays, "--cohort", "c", "--db", db, "--rubric", "default", "--fail-under", "8", env=env)
    assert exact.exit_code == 2 and "rubric 'default' scores 1-5" in flat(exact.stderr)
    one = invoke(plain / "a.md", "--no-store", "--fail-under", "8", env=env)  # no exercise `essay`: the default
    assert one.exit_code == 2 and "rubric 'default' scores 1-5" in flat(one.stderr)
    essay = essays / "essay.md"
    assert invoke(essay, "--no-store", "--fail-under", "8", env=env).exit_code in (0, 4)
    low = invoke(essay, "--no-store", "--fail-under", "0", env=env)
    assert low.exit_code in (0, 4), low.output  # 0 is the bottom of this rubric's scale


def test_gate_weighs_dimension_means_by_their_counts():
    from evaluator.gate import check, parse_thresholds

    assert check(parse_thresholds(["3"]), {"a": 2.0, "b": 4.0}, {"a": 3, "b": 1}) == \
        ["mean over all dimensions 2.50 < 3"]
    assert check(parse_thresholds(["a=2", "b=4"]), {"a": 2.0, "b": None}) == []


# ---------------------------------------------------------------------------------- config file

def test_config_file_sets_defaults_env_and_flags_win(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "evaluate.toml").write_text('db = "store/conf.duckdb"\nmax_tokens = 2000\n')
    assert invoke(LRU).exit_code == 0
    assert (tmp_path / "store" / "conf.duckdb").exists()
    assert invoke(LRU, env={"EVALUATOR_DB": str(tmp_path / "env.duckdb")}).exit_code == 0
    assert (tmp_path / "env.duckdb").exists()
    assert invoke(LRU, "--db", tmp_path / "flag.duckdb", env={"EVALUATOR_DB": str(tmp_path / "env.duckdb")}
                  ).exit_code == 0
    assert (tmp_path / "flag.duckdb").exists()
    listed = json.loads(invoke("runs", "--format", "json").stdout)  # other commands read the config's db too
    assert len(listed) == 1


def test_config_values_are_checked_like_flags(tmp_path):
    (tmp_path / "evaluate.toml").write_text("max_tokens = 0\n")
    r = invoke(LRU, "--no-store")
    assert r.exit_code == 2 and "--max-tokens" in flat(r.stderr)
    assert f"set by 'max_tokens' in {tmp_path / 'evaluate.toml'}" in flat(r.stderr)  # where to fix it
    as_json = invoke(LRU, "--no-store", "--format", "json")
    assert "evaluate.toml" in json.loads(as_json.stdout)["error"]
    typed = invoke(LRU, "--no-store", "--max-tokens", "0")  # the flag, not the file, is at fault
    assert typed.exit_code == 2 and "evaluate.toml" not in flat(typed.stderr)


def test_config_unknown_key_is_a_clear_error(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.evaluate]\nmodle = "openai/x"\n')
    r = invoke(LRU, "--no-store")
    assert r.exit_code == 2
    assert "unknown key 'modle'" in flat(r.stderr) and "did you mean 'model'" in flat(r.stderr)
    bad_toml = tmp_path / "sub"
    bad_toml.mkdir()
    (bad_toml / "evaluate.toml").write_text("model = \n")
    r2 = invoke(LRU, "--no-store", "--format", "json", env={"EVALUATOR_CONFIG": str(bad_toml / "evaluate.toml")})
    assert r2.exit_code == 2 and "not valid TOML" in json.loads(r2.stdout)["error"]


def test_config_model_reaches_only_the_judging_commands(tmp_path):
    from typer.main import get_command

    from evaluator.config import Settings, default_map

    dm = default_map(Settings(model="openai/x", db=Path("e.duckdb"), rubrics_dir=Path("r")),
                     get_command(app).commands)  # type: ignore[attr-defined]
    assert dm["judge"]["model"] == "openai/x" and dm["cohort"]["model"] == "openai/x"
    assert "model" not in dm.get("report", {}) and "model" not in dm.get("agreement", {})  # filters, not judges
    assert dm["runs"]["db"] == Path("e.duckdb") and dm["rubrics"]["list"]["directory"] == Path("r")


# ---------------------------------------------------------------------------------- show, list, export

@pytest.fixture
def stored(tmp_path) -> Path:
    db = tmp_path / "s.duckdb"
    folder = tmp_path / "c"
    folder.mkdir()
    for src in (LRU, RAG):
        (folder / src.name).write_text(src.read_text())
    assert invoke("cohort", folder, "--cohort", "spring", "--db", db).exit_code == 0
    assert invoke(REPO / "transcripts" / "agent_loop.md", "--db", db).exit_code in (0, 1)
    return db


def test_judgments_list_filters_and_show_prints_the_stored_judgment(stored, tmp_path):
    rows = json.loads(invoke("judgments", "list", "--db", stored, "--format", "json").stdout)
    assert len(rows) == 3
    spring = json.loads(invoke("judgments", "list", "--db", stored, "--cohort", "spring", "-f", "json").stdout)
    assert sorted(Path(r["source"]).name for r in spring) == ["lru_ttl_cache.md", "rag_pipeline.md"]
    dana = json.loads(invoke("judgments", "list", "--db", stored, "--candidate", "Dana Smith", "-f", "json").stdout)
    assert [Path(r["source"]).name for r in dana] == ["lru_ttl_cache.md"]
    assert len(json.loads(invoke("judgments", "list", "--db", stored, "--limit", "1", "-f", "json").stdout)) == 1
    assert json.loads(invoke("judgments", "list", "--db", stored, "--model", "openai/x", "-f", "json").stdout) == []
    assert invoke("judgments", "list", "--db", stored, "--cohort", "nope").exit_code == 2
    assert invoke("judgments", "list", "--db", stored, "--status", "great").exit_code == 2

    lru = dana[0]
    shown = json.loads(invoke("show", lru["id"][:8], "--db", stored, "--format", "json").stdout)
    fresh = json.loads(invoke(tmp_path / "c" / "lru_ttl_cache.md", "--no-store", "--format", "json").stdout)
    assert shown["store"]["judgment_id"] == lru["id"]
    assert [(d["id"], d["score"], d["rationale"]) for d in shown["dimensions"]] == \
        [(d["id"], d["score"], d["rationale"]) for d in fresh["dimensions"]]
    assert shown["transcript"]["candidate"] == "Dana Smith"
    by_file = json.loads(invoke("show", tmp_path / "c" / "lru_ttl_cache.md", "--db", stored, "-f", "json").stdout)
    assert by_file["store"]["judgment_id"] == lru["id"]
    table = invoke("show", lru["id"], "--db", stored)
    assert table.exit_code == 0 and "invariant" in table.output and lru["id"][:8] in table.output
    missing = invoke("show", "ffffffff", "--db", stored)
    assert missing.exit_code == 2 and "judgments list" in flat(missing.stderr)
    unjudged = tmp_path / "c" / "unjudged.md"
    unjudged.write_text(RAG.read_text() + "\nCandidate: one more line, so another hash.\n")
    never = invoke("show", unjudged, "--db", stored)
    assert never.exit_code == 2 and f"`evaluate {unjudged}`" in flat(never.stderr) and "{ref}" not in never.stderr


def test_cohort_filter_lists_the_cohorts_judgments_not_every_judgment_of_its_transcripts(stored, tmp_path):
    """As the report's cohort pages: a member transcript judged again outside the cohort (another rubric,
    standalone) is not the cohort's judgment, in `judgments list` and `export` alike."""
    member = tmp_path / "c" / "lru_ttl_cache.md"
    assert invoke(member, "--rubric", "default", "--db", stored).exit_code in (0, 1)
    rows = json.loads(invoke("judgments", "list", "--db", stored, "--cohort", "spring", "-f", "json").stdout)
    assert sorted(Path(r["source"]).name for r in rows) == ["lru_ttl_cache.md", "rag_pipeline.md"]
    assert {r["rubric_version"].split("@")[0] for r in rows} == {"lru_ttl_cache", "rag_pipeline"}
    out = tmp_path / "spring.jsonl"
    assert invoke("export", out, "--cohort", "spring", "--db", stored).exit_code == 0
    assert sorted(json.loads(line)["judgment_id"] for line in out.read_text().splitlines()) == \
        sorted(r["id"] for r in rows)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_judgments_and_dimensions(stored, tmp_path, suffix):
    out = tmp_path / f"judgments{suffix}"
    r = invoke("export", out, "--db", stored)
    assert r.exit_code == 0, r.output
    dims = tmp_path / f"dims{suffix}"
    assert invoke("export", dims, "--table", "dimensions", "--db", stored, "--cohort", "spring").exit_code == 0
    con = duckdb.connect()
    reader = {".csv": "read_csv_auto", ".jsonl": "read_json_auto", ".parquet": "read_parquet"}[suffix]
    judgments = con.execute(f"SELECT judgment_id, mean_score FROM {reader}('{out}')").fetchall()
    scores = con.execute(f"SELECT judgment_id, dimension_id, score FROM {reader}('{dims}')").fetchall()
    store = duckdb.connect(str(stored), read_only=True)
    assert sorted(str(j[0]) for j in judgments) == \
        sorted(r[0] for r in store.execute("SELECT id FROM judgments").fetchall())
    spring_dims = store.execute(
        "SELECT count(*) FROM dimension_scores d JOIN judgments j ON j.id = d.judgment_id WHERE j.transcript_hash IN "
        "(SELECT transcript_hash FROM cohort_members WHERE cohort = 'spring')").fetchone()[0]
    store.close()
    assert len(scores) == spring_dims > 0
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_export_into_a_named_pipe_writes_through_it_and_leaves_it_a_pipe(stored, tmp_path):
    """A destination that is not a regular file (a FIFO here; /dev/stdout or /dev/null alike) is
    written into, never renamed over: as root, the rename replaced /dev/null with a plain file."""
    import stat
    import threading

    pipe = tmp_path / "rows.csv"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    r = invoke("export", pipe, "--db", stored)
    reader.join(timeout=30)
    assert r.exit_code == 0, r.output
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    lines = received[0].decode().splitlines()
    assert lines[0].startswith("judgment_id") and len(lines) > 1
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_export_bad_requests_are_exit_2(stored, tmp_path):
    assert invoke("export", tmp_path / "x.xlsx", "--db", stored).exit_code == 2
    assert invoke("export", tmp_path / "x.csv", "--table", "nope", "--db", stored).exit_code == 2
    assert invoke("export", tmp_path / "no" / "x.csv", "--db", stored).exit_code == 2
    assert invoke("export", tmp_path / "x.csv", "--db", tmp_path / "absent.duckdb").exit_code == 2


# ---------------------------------------------------------------------------------- cohort formats

VTT = """WEBVTT
Kind: captions

NOTE exported by a meeting tool

1
00:00:01.000 --> 00:00:04.000 align:start
<v Priya Nair (interviewer)>Let's build an LRU cache with a TTL. What must always hold?</v>

2
00:00:04.500 --> 00:00:09.000
<v Dana Smith (candidate)><c.yellow>Before code:</c> the map and the recency list hold the same keys,

00:00:09.000 --> 00:00:12.000
and the size never exceeds the capacity &amp; I will assert that after every put.

3
00:00:12.500 --> 00:00:14.000
Priya Nair (interviewer): Good, go ahead.
"""


def test_webvtt_cues_become_speaker_turns():
    from evaluator.formats import webvtt_to_text

    text = webvtt_to_text(VTT)
    assert text.splitlines()[0] == "Priya Nair (interviewer): Let's build an LRU cache with a TTL. What must always hold?"
    assert ("Dana Smith (candidate): Before code: the map and the recency list hold the same keys, and the size "
            "never exceeds the capacity & I will assert that after every put.") in text
    assert "-->" not in text and "WEBVTT" not in text and "NOTE" not in text and "<" not in text
    assert text.count("Priya Nair (interviewer):") == 2


def test_cohort_takes_txt_and_vtt_and_lists_what_it_skips(tmp_path):
    folder = tmp_path / "c"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text(LRU.read_text())
    (folder / "b.txt").write_text(RAG.read_text())
    (folder / "sub" / "call.vtt").write_text(VTT)
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4")
    (folder / "README.md").write_text("# how we interview\n")
    r = invoke("cohort", folder, "--cohort", "c", "--db", tmp_path / "e.duckdb", "--format", "json")
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    assert doc["total"] == 3 and doc["failed"] == 0
    err = flat(r.stderr)
    assert "notes.pdf" in err and "not a transcript format" in err
    assert "README.md" in err and "documentation" in err
    shown = json.loads(invoke("show", folder / "sub" / "call.vtt", "--db", tmp_path / "e.duckdb", "-f", "json").stdout)
    quotes = " ".join(e["quote"] for d in shown["dimensions"] for e in d["evidence"])
    assert "-->" not in quotes and "<v" not in quotes  # judged from the captions' words, not their markup


def test_single_command_reads_vtt(tmp_path):
    (tmp_path / "call.vtt").write_text(VTT)
    r = invoke(tmp_path / "call.vtt", "--no-store", "--format", "json")
    assert r.exit_code in (0, 1), r.output
    assert json.loads(r.stdout)["transcript"]["turns"] == 3


# ---------------------------------------------------------------------------------- language, rubric hint

FRENCH = ("Intervieweur: Bonjour, nous allons construire un cache LRU avec une durée de vie.\n"
          "Candidat: Avant de coder, je pose les invariants: la table et la liste contiennent les mêmes clés, "
          "la capacité n'est jamais dépassée. Ensuite je teste les cas limites, capacité zéro, expiration "
          "exacte, et je mesure le coût des appels au modèle pour chaque requête du client.\n") * 3


def test_baseline_says_when_a_transcript_is_not_english(tmp_path):
    (tmp_path / "fr.md").write_text(FRENCH)
    doc = json.loads(invoke(tmp_path / "fr.md", "--no-store", "--format", "json").stdout)
    assert "not_english" in doc["flags"]
    english = json.loads(invoke(LRU, "--no-store", "--format", "json").stdout)
    assert "not_english" not in english["flags"]


def test_no_matching_rubric_names_the_closest_exercise():
    from evaluator.rubrics import select_rubric_with_warnings

    _, warnings = select_rubric_with_warnings(None, "ttl", REPO / "rubrics")
    assert "ttl_cache" in warnings[0]
    _, warnings = select_rubric_with_warnings(None, "token bucket", REPO / "rubrics")
    assert "known exercises:" in warnings[0] and "rag_pipeline" in warnings[0]
