"""Repeated samples (--samples) and juries (--jury): the pure aggregation rules, then the real CLI
over real HTTP to the scripted fake server (tests/fakellm.py), whose replies depend on the request's
seed (one per sample) and model (one per juror). Every test checks the stored rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import krippendorff
import pytest
from fakellm import Call, FakeLLM
from hypothesis import given
from hypothesis import strategies as st
from replies import build_reply
from support import DIMS, Run, cohort, evaluate, make_cohort, query
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.judge.aggregate import (
    MemberDimension,
    combine,
    jury_alpha,
    lower_median,
    unstable_threshold,
)
from evaluator.report import queries as q

# ------------------------------------------------------------------------------------------ pure rules


def M(juror: str, sample: int, score: int | None, status: str = "scored") -> MemberDimension:
    return MemberDimension(juror, sample, status if score is not None or status != "scored" else "unscored", score)


def test_lower_median_stays_on_the_scale_and_threshold_follows_the_scale() -> None:
    assert lower_median([3, 4]) == 3 and lower_median([5, 1, 4]) == 4 and lower_median([2, 2, 5, 5]) == 2
    assert unstable_threshold(1, 5) == 1 and unstable_threshold(0, 10) == 2 and unstable_threshold(1, 3) == 1


def test_samples_median_spread_agreement_and_unstable() -> None:
    a = combine([M("m", 0, 4), M("m", 1, 4), M("m", 2, 3)], 1, 5)
    assert (a.status, a.score, a.min, a.max, a.n, a.n_scored) == ("scored", 4, 3, 4, 3, 3)
    assert a.agreement == pytest.approx(2 / 3) and not a.unstable and not a.disagree
    b = combine([M("m", 0, 2), M("m", 1, 5), M("m", 2, 4)], 1, 5)
    assert b.score == 4 and b.unstable and b.agreement == pytest.approx(1 / 3)


def test_unscored_members_are_left_out_and_counted() -> None:
    a = combine([M("m", 0, 5), M("m", 1, None, "unscored"), M("m", 2, 3)], 1, 5)
    assert (a.score, a.n_scored, a.n) == (3, 2, 3)
    none = combine([M("m", 0, None, "not_observed"), M("m", 1, None, "not_observed"), M("m", 2, None, "unscored")], 1, 5)
    assert (none.status, none.score, none.n_scored) == ("not_observed", None, 0)
    assert combine([M("m", 0, None, "unscored"), M("m", 1, None, "not_observed")], 1, 5).status == "unscored"


def test_jury_median_of_juror_medians_disagreement_and_weights() -> None:
    members = [M("a", 0, 2), M("a", 1, 2), M("b", 0, 4), M("c", 0, 5)]
    j = combine(members, 1, 5)
    assert j.jurors == {"a": 2, "b": 4, "c": 5} and j.score == 4 and j.disagree
    assert combine([M("a", 0, 3), M("b", 0, 4)], 1, 5).disagree is False
    w = combine(members, 1, 5, weights={"a": 0.1, "b": 0.1, "c": 0.8})
    assert w.weighted_mean == pytest.approx((0.2 + 0.4 + 4.0) / 1.0) and w.score == 5
    assert combine(members, 1, 5, weights={"a": 1.0}).weights is None  # a juror without a weight: median


def test_alpha_matches_the_krippendorff_package_and_is_none_when_undefined() -> None:
    units = [{"a": 1, "b": 2}, {"a": 3, "b": 3}, {"a": 5, "b": 4}, {"a": 2, "b": None}, {"a": 4, "b": 5}]
    expected = krippendorff.alpha(reliability_data=[[1, 3, 5, 2, 4], [2, 3, 4, float("nan"), 5]],
                                  level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert jury_alpha(units, [1, 2, 3, 4, 5]) == pytest.approx(expected)
    assert jury_alpha([{"a": 1, "b": 1}, {"a": 4, "b": 4}], range(1, 6)) == pytest.approx(1.0)
    assert jury_alpha([{"a": 1, "b": 2}], range(1, 6)) is None  # one unit
    assert jury_alpha([{"a": 3, "b": 3}, {"a": 3, "b": 3}], range(1, 6)) is None  # no variation


# ---------------------------------------------------------------------------------- the scripted model

# Per seed (= sample index), the scores the fake model gives; `invariant` is stable, `edge_cases` jumps.
BY_SEED = {0: {"invariant": 4, "edge_cases": 2}, 1: {"invariant": 4, "edge_cases": 5},
           2: {"invariant": 3, "edge_cases": 4}, 3: {"invariant": 4, "edge_cases": 4},
           4: {"invariant": 4, "edge_cases": 4}}
# Per juror model, its scores: b is two levels above a on `restraint`.
BY_MODEL = {"model-a": {"restraint": 2, "invariant": 3}, "model-b": {"restraint": 4, "invariant": 3},
            "model-c": {"restraint": 3, "invariant": 4}}


def scripted(body: dict[str, Any]) -> str:
    """A valid reply whose scores depend on the request's model and seed; `model-bad` answers prose."""
    if body["model"] == "model-bad":
        return "I would rather not grade this."
    scores = {**BY_SEED.get(body.get("seed"), {}), **BY_MODEL.get(body["model"], {})}
    return json.dumps(build_reply(body, scores=scores))


def judgments(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM judgments ORDER BY kind DESC, created_at")


def aggregate_dims(db: Path) -> dict[str, dict[str, Any]]:
    rows = query(db, """SELECT d.* FROM dimension_scores d JOIN judgments j ON j.id = d.judgment_id
                        WHERE j.kind = 'aggregate' ORDER BY j.created_at DESC""")
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        r["ensemble"] = json.loads(r["ensemble"])
        out.setdefault(r["dimension_id"], r)
    return out


def members(db: Path) -> list[dict[str, Any]]:
    return query(db, """SELECT m.*, j.model, j.params, j.cache_key FROM judgment_members m
                        JOIN judgments j ON j.id = m.member_id ORDER BY m.aggregate_id, m.position""")


# ----------------------------------------------------------------------------------------- --samples


def test_samples_are_judged_stored_and_combined(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    run = evaluate(fake_llm.base_url, tmp_path, "--samples", "3")
    assert run.exception is None, run.stderr
    assert run.code == 0, run.stdout + run.stderr
    reqs = [r.body for r in fake_llm.chat_requests]
    assert sorted(r["seed"] for r in reqs) == [0, 1, 2]
    assert {r["temperature"] for r in reqs} == {0.7}  # not given: the documented default above 0
    rows = judgments(run.db)
    assert [r["kind"] for r in rows] == ["single", "single", "single", "aggregate"]
    agg = rows[-1]
    assert agg["model"] == "openai/test-model (median of 3)" and agg["status"] == "scored"
    assert sum(r["calls"] for r in rows[:3]) == 3 and agg["calls"] == 0  # each call counted once, on its member
    # the report's score views show the samples through their aggregate; its cost view counts every call
    with duckdb.connect(str(run.db), read_only=True) as con:
        schema = q.read_schema(con)
        listed = q.judgments_page(con, schema, q.Filters())
        assert [r["model"] for r in listed["rows"]] == ["openai/test-model (median of 3)"]
        assert q.cost_total(con, schema, q.Filters())["calls"] == 3
    links = members(run.db)
    assert [(m["sample"], m["reused"]) for m in links] == [(0, False), (1, False), (2, False)]
    assert len({m["cache_key"] for m in links}) == 3
    dims = aggregate_dims(run.db)
    inv, edge = dims["invariant"], dims["edge_cases"]
    assert (inv["score"], inv["ensemble"]["min"], inv["ensemble"]["max"]) == (4, 3, 4)
    assert inv["ensemble"]["agreement"] == pytest.approx(2 / 3) and not inv["ensemble"]["unstable"]
    assert (edge["score"], edge["ensemble"]["min"], edge["ensemble"]["max"], edge["ensemble"]["unstable"]) == (4, 2, 5, True)
    doc = run.doc
    assert doc["kind"] == "aggregate" and "unstable" in doc["flags"]
    assert doc["usage"]["by_juror"]["openai/test-model"]["calls"] == 3
    # the aggregate's rationale and quotes are a member's whose score is the median, verified like any
    assert all(e["match"] is not None for d in doc["dimensions"] for e in d["evidence"])


def test_raising_samples_pays_only_for_the_new_ones_and_a_rerun_is_free(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    assert evaluate(fake_llm.base_url, tmp_path, "--samples", "3").code == 0
    fake_llm.clear()
    run = evaluate(fake_llm.base_url, tmp_path, "--samples", "5")
    assert run.code == 0, run.stdout + run.stderr
    assert sorted(r.body["seed"] for r in fake_llm.chat_requests) == [3, 4]
    assert run.doc["usage"]["calls"] == 2 and run.doc["usage"]["by_juror"]["openai/test-model"]["reused"] == 3
    newest = query(run.db, "SELECT id FROM judgments WHERE kind = 'aggregate' ORDER BY created_at DESC LIMIT 1")[0]["id"]
    links = query(run.db, "SELECT sample, reused FROM judgment_members WHERE aggregate_id = ? ORDER BY position", [newest])
    assert [(m["sample"], m["reused"]) for m in links] == [(0, True), (1, True), (2, True), (3, False), (4, False)]
    assert query(run.db, "SELECT count(*) AS n FROM judgments WHERE kind = 'single'")[0]["n"] == 5
    edge = aggregate_dims(run.db)["edge_cases"]
    assert edge["score"] == 4 and edge["ensemble"]["agreement"] == pytest.approx(3 / 5)
    fake_llm.clear()
    again = evaluate(fake_llm.base_url, tmp_path, "--samples", "5")
    assert again.code == 0 and again.doc["cache"]["hit"] and not fake_llm.chat_requests


def test_explicit_temperature_and_seed_are_used_per_sample(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    run = evaluate(fake_llm.base_url, tmp_path, "--samples", "2", "--temperature", "0.3", "--seed", "40")
    assert run.code == 0, run.stdout + run.stderr
    assert sorted((r.body["seed"], r.body["temperature"]) for r in fake_llm.chat_requests) == [(40, 0.3), (41, 0.3)]


@pytest.mark.parametrize("args, message", [
    (["--samples", "0"], "--samples must be between 1"),
    (["--samples", "3", "--temperature", "0"], "temperature"),
    (["--jury", "openai/model-a"], "two or more"),
    (["--jury", "openai/model-a,openai/model-a"], "twice"),
    (["--jury", "openai/model-a,openai/model-b@ftp://x"], "http(s) URL"),
    (["--jury", "openai/model-a,,openai/model-b"], "empty entry"),
])
def test_bad_options_exit_2_before_any_call(fake_llm: FakeLLM, tmp_path: Path, args: list[str], message: str) -> None:
    run = evaluate(fake_llm.base_url, tmp_path, *args)
    assert run.code == 2 and message in run.stderr and run.exception is None
    assert not fake_llm.chat_requests


# -------------------------------------------------------------------------------------------- --jury


def test_jury_aggregates_flags_disagreement_and_accounts_per_juror(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    with FakeLLM() as other:  # juror b is served elsewhere: MODEL@API_BASE
        other.script(Call(scripted))
        b = f"openai/model-b@{other.base_url}"
        run = evaluate(fake_llm.base_url, tmp_path, "--jury",
                       f"openai/model-a,openai/model-b@{other.base_url},openai/model-c")
        assert [r.body["model"] for r in other.chat_requests] == ["model-b"]
    assert run.code == 0, run.stdout + run.stderr
    assert sorted(r.body["model"] for r in fake_llm.chat_requests) == ["model-a", "model-c"]
    rows = judgments(run.db)
    agg = rows[-1]
    assert agg["kind"] == "aggregate" and agg["model"].startswith("jury(openai/model-a, openai/model-b@")
    assert sorted(r["model"] for r in rows[:-1]) == ["openai/model-a", "openai/model-b", "openai/model-c"]
    dims = aggregate_dims(run.db)
    restraint = dims["restraint"]
    assert restraint["score"] == 3 and restraint["ensemble"]["disagree"]
    assert restraint["ensemble"]["jurors"] == {"openai/model-a": 2, b: 4, "openai/model-c": 3}
    assert dims["invariant"]["score"] == 3 and not dims["invariant"]["ensemble"]["disagree"]
    doc = run.doc
    assert "jurors_disagree" in doc["flags"]
    by = doc["usage"]["by_juror"]
    assert set(by) == {"openai/model-a", b, "openai/model-c"}
    assert all(u["calls"] == 1 and u["prompt_tokens"] > 0 for u in by.values())
    assert doc["usage"]["calls"] == 3


def test_a_juror_that_never_answers_is_left_out_and_counted(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    run = evaluate(fake_llm.base_url, tmp_path, "--jury", "openai/model-a,openai/model-b,openai/model-bad",
                   "--repair-attempts", "0")
    assert run.code == 0, run.stdout + run.stderr
    dims = aggregate_dims(run.db)
    assert all(d["ensemble"]["n_scored"] == 2 and d["ensemble"]["n"] == 3 for d in dims.values())
    assert set(dims) == set(DIMS)
    statuses = {r["model"]: r["status"] for r in judgments(run.db)[:-1]}
    assert statuses["openai/model-bad"] == "unscored"
    assert "[2 of 3 scored]" in run.doc["dimensions"][0]["rationale"]


def test_jury_with_k1_reuses_a_plain_judgment_of_a_juror(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    db = tmp_path / "e.duckdb"
    plain = CliRunner().invoke(app, [str(Path(__file__).resolve().parent.parent / "transcripts" / "lru_ttl_cache.md"),
                                     "--model", "openai/model-a", "--api-base", fake_llm.base_url, "--db", str(db),
                                     "--format", "json"])
    assert plain.exit_code == 0
    fake_llm.clear()
    run = evaluate(fake_llm.base_url, tmp_path, "--jury", "openai/model-a,openai/model-b")
    assert run.code == 0
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["model-b"]
    assert [m["reused"] for m in members(run.db)] == [True, False]


# ------------------------------------------------------------------------------------------ cohorts


def test_cohort_with_samples_stores_members_and_aggregates(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    folder = tmp_path / "rounds"
    make_cohort(folder, 2)
    db = tmp_path / "c.duckdb"
    dry = cohort(folder, db, "--dry-run", "--samples", "3", base_url=fake_llm.base_url)
    assert dry.code == 0, dry.stdout + dry.stderr
    single = cohort(folder, tmp_path / "other.duckdb", "--dry-run", base_url=fake_llm.base_url)
    assert dry.doc["estimate"]["calls"] == 3 * single.doc["estimate"]["calls"]
    assert dry.doc["estimate"]["calls_multiplier"] == 3
    run: Run = cohort(folder, db, "--samples", "3", base_url=fake_llm.base_url)  # type: ignore[assignment]
    assert run.code == 0, run.stdout + run.stderr
    assert len(fake_llm.chat_requests) == 6
    kinds = query(db, "SELECT kind, count(*) AS n FROM judgments GROUP BY kind ORDER BY kind")
    assert [(k["kind"], k["n"]) for k in kinds] == [("aggregate", 2), ("single", 6)]
    assert query(db, "SELECT count(*) AS n FROM judgment_members")[0]["n"] == 6
    items = query(db, "SELECT i.status, j.kind FROM run_items i JOIN judgments j ON j.id = i.judgment_id")
    assert {(i["status"], i["kind"]) for i in items} == {("scored", "aggregate")}
    # raising --samples in a cohort pays only for the new samples (2 transcripts x 2 more), and the
    # same command again pays for nothing
    more = cohort(folder, db, "--samples", "5", base_url=fake_llm.base_url)
    assert more.code == 0, more.stdout + more.stderr
    assert len(fake_llm.chat_requests) == 6 + 4
    again = cohort(folder, db, "--samples", "5", base_url=fake_llm.base_url)
    assert again.code == 0 and len(fake_llm.chat_requests) == 10
    # calibration and agreement read the aggregates (the medians), never a single sampled draw
    from evaluator.calibrate.store import JudgeSelection, judge_score_sets
    from evaluator.errors import BadInput
    from evaluator.store.db import open_store

    aggregates = {r["id"] for r in query(db, "SELECT id FROM judgments WHERE kind = 'aggregate'")}
    with open_store(db) as store:
        # one set per rubric version (the two transcripts' exercises pick two rubrics)
        sets = judge_score_sets(store, JudgeSelection(model="openai/test-model (median of 5)"))
        scores = [s for found in sets for s in found.scores]
        assert scores and {s.judgment_id for s in scores} <= aggregates
        with pytest.raises(BadInput):  # the sampled draws alone are no judge to calibrate
            judge_score_sets(store, JudgeSelection(model="openai/test-model"))


# ------------------------------------------------------------------------------------ weighted juries


def test_agreement_weights_need_enough_pairs_for_every_juror() -> None:
    from evaluator.judge.weights import agreement_weights

    pairs = [{"juror": "a", "dimension_id": "d", "judge": 2, "human": 2.0}] * 5 + \
            [{"juror": "b", "dimension_id": "d", "judge": 4, "human": 2.0}] * 5 + \
            [{"juror": "a", "dimension_id": "e", "judge": 3, "human": 3.0}] * 5
    w = agreement_weights(pairs, ["a", "b"], ["d", "e"])
    assert w == {"d": {"a": 6 / 7, "b": 1 / 7}}  # e: juror b has no pairs there


def test_jury_is_weighted_by_held_out_agreement_with_human_labels(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    jury = "openai/model-a,openai/model-b,openai/model-c"
    folder = tmp_path / "rounds"
    sample = Path(__file__).resolve().parent.parent / "transcripts" / "lru_ttl_cache.md"
    paths = make_cohort(folder, 7, sample=sample)
    db = tmp_path / "c.duckdb"
    # humans always agree with juror a (restraint 2, invariant 3, the rest 4), on the first six rounds
    human = {"restraint": 2, "invariant": 3}
    lines = ["transcript,rater,dimension,score"] + [
        f"{p.name},r1,{d},{human.get(d, 4)}" for p in paths[:6] for d in DIMS]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = cohort(folder, db, "--jury", jury, base_url=fake_llm.base_url)
    assert first.code == 0, first.stdout + first.stderr
    imported = CliRunner().invoke(app, ["labels", "import", str(folder / "labels.csv"), "--db", str(db),
                                        "--transcripts", str(folder)])
    assert imported.exit_code == 0, imported.output
    fake_llm.clear()
    result = CliRunner().invoke(app, [str(paths[6]), "--jury", jury, "--api-base", fake_llm.base_url,
                                      "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert not fake_llm.chat_requests  # every juror's judgment of this round is stored: reused
    doc = json.loads(result.stdout)
    assert doc["judge"]["model"].endswith(" weighted")
    restraint = next(d for d in doc["dimensions"] if d["id"] == "restraint")
    # held out: six labelled rounds each; a agrees 6/6 -> 7/8, b and c 0/6 -> 1/8 on restraint
    assert restraint["ensemble"]["weights"] == {"openai/model-a": 7 / 8, "openai/model-b": 1 / 8,
                                                "openai/model-c": 1 / 8}
    assert restraint["ensemble"]["weighted_mean"] == pytest.approx((7 / 8 * 2 + 1 / 8 * 4 + 1 / 8 * 3) / (9 / 8))
    assert restraint["score"] == 2  # the plain median would be 3
    stored = query(db, "SELECT model FROM judgments WHERE kind = 'aggregate' ORDER BY created_at DESC LIMIT 1")
    assert stored[0]["model"] == doc["judge"]["model"]


def test_dry_run_table_says_how_many_judgments_each_transcript_costs(fake_llm: FakeLLM, tmp_path: Path) -> None:
    folder = tmp_path / "rounds"
    make_cohort(folder, 2)
    result = CliRunner().invoke(app, ["cohort", str(folder), "--cohort", "c", "--db", str(tmp_path / "d.duckdb"),
                                      "--dry-run", "--jury", "openai/model-a,openai/model-b", "--samples", "2",
                                      "--api-base", fake_llm.base_url], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "4 judgments per transcript" in result.output and not fake_llm.chat_requests


@given(st.lists(st.tuples(st.sampled_from("abc"), st.one_of(st.none(), st.integers(1, 5))), min_size=1, max_size=12))
def test_combine_stays_on_the_scale_within_the_scored_range(members: list[tuple[str, int | None]]) -> None:
    ms = [M(j, i, s) for i, (j, s) in enumerate(members)]
    agg = combine(ms, 1, 5)
    scored = [s for _, s in members if s is not None]
    assert agg.n == len(members) and agg.n_scored == len(scored)
    if not scored:
        assert agg.score is None and agg.status == "unscored"
        return
    assert min(scored) <= agg.score <= max(scored) and 1 <= agg.score <= 5
    assert 0 < agg.agreement <= 1
    if len({j for j, _ in members}) == 1:
        assert agg.unstable == (max(scored) - min(scored) > 1)


def test_the_offline_baseline_can_sit_on_a_jury_but_not_be_sampled(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Call(scripted))
    run = evaluate(fake_llm.base_url, tmp_path, "--jury", "baseline,openai/model-a")
    assert run.code == 0, run.stdout + run.stderr
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["model-a"]
    kinds = {(r["judge_kind"], r["model"]) for r in judgments(run.db)[:-1]}
    assert kinds == {("baseline", None), ("llm", "openai/model-a")}
    assert run.doc["judge"]["model"] == "jury(baseline, openai/model-a) median"
    sampled = evaluate(fake_llm.base_url, tmp_path, "--jury", "baseline,openai/model-a", "--samples", "2")
    assert sampled.code == 2 and "deterministic" in sampled.stderr
