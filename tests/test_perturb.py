"""Perturbations are pure, deterministic, and change exactly one thing; probe statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluator.ingest import load_transcript
from evaluator.judge.perturb import (
    PERTURBATIONS,
    edit_filler,
    is_filler,
    name_swaps,
    perturb,
    swap_names,
)
from evaluator.models import JudgeInfo
from evaluator.pipeline import cache_key
from evaluator.probe.stats import ScoreRow, movements, retest
from evaluator.rubrics import select_rubric

ROOT = Path(__file__).resolve().parent.parent
LRU = ROOT / "transcripts" / "lru_ttl_cache.md"


@pytest.fixture(scope="module")
def lru():
    t = load_transcript(LRU)
    return t, select_rubric(None, t.exercise)


@pytest.mark.parametrize("sentence", ["Okay.", "Hmm, let me think.", "Sounds good!", "Right, right.", "Yeah, I think so.",
                                      "Thanks!", "Got it", "Sure, that makes sense."])
def test_filler_sentences(sentence: str) -> None:
    assert is_filler(sentence)


@pytest.mark.parametrize("sentence", ["Okay, the dict maps key to node.", "I think a heap is better.", "O(1).",
                                      "Let me think about the TTL.", "", "...", "`get` first."])
def test_content_is_not_filler(sentence: str) -> None:
    assert not is_filler(sentence)


def test_edit_filler_removes_or_doubles_only_filler_and_never_touches_code() -> None:
    text = "Okay. Let me write it.\n```python\nok = True  # Okay.\n```\nSure. Done with the tests."
    removed, n = edit_filler(text, "remove")
    assert n == 2 and removed == "Let me write it.\n```python\nok = True  # Okay.\n```\nDone with the tests."
    doubled, n = edit_filler(text, "double")
    assert n == 2 and doubled.startswith("Okay. Okay. Let me write it.") and "Sure. Sure. Done" in doubled


@given(st.text(alphabet=st.sampled_from(list("abc .!?\n`okay")), max_size=80))
def test_edit_filler_is_identity_without_filler_and_removal_never_adds(text: str) -> None:
    removed, n = edit_filler(text, "remove")
    if n == 0:
        assert removed == text
    assert len(removed) <= len(text)


def test_every_perturbation_is_deterministic_and_gets_its_own_cache_key(lru) -> None:
    t, r = lru
    info = JudgeInfo(kind="llm", model="m", prompt_version="p")
    keys = {cache_key(t.content_hash, r, info)}
    for name in PERTURBATIONS:
        a, b = perturb(name, t, r, seed=7), perturb(name, t, r, seed=7)
        assert a.skipped is None, name
        assert (a.transcript.content_hash, a.rubric.version) == (b.transcript.content_hash, b.rubric.version)
        assert a.transcript.model_dump() == b.transcript.model_dump()
        keys.add(cache_key(a.transcript.content_hash, a.rubric, info))
    assert len(keys) == 1 + len(PERTURBATIONS)
    assert t.content_hash == load_transcript(LRU).content_hash  # the original is untouched


def test_rubric_perturbations_change_only_order(lru) -> None:
    t, r = lru
    shuffled = perturb("dimension_order", t, r).rubric
    assert shuffled.dimension_ids != r.dimension_ids and sorted(shuffled.dimension_ids) == sorted(r.dimension_ids)
    reversed_ = perturb("anchors_reversed", t, r).rubric
    for d, orig in zip(reversed_.dimensions, r.dimensions, strict=True):
        assert list(d.anchors) == list(reversed(list(orig.anchors))) and d.anchors == orig.anchors
    assert r.dimensions[0].anchors == dict(sorted(r.dimensions[0].anchors.items()))  # the original is untouched


def test_names_are_swapped_consistently_for_another_gender_and_origin(lru) -> None:
    t, r = lru
    p = perturb("names_swapped", t, r, seed=3)
    swapped = p.transcript
    table = {n["first"]: n for n in swap_names()}
    new_candidate = swapped.metadata["candidate"]
    assert new_candidate != "Dana Smith" and new_candidate.split()[0] in table
    assert table[new_candidate.split()[0]]["gender"] != table["Dana"]["gender"]
    assert table[new_candidate.split()[0]]["origin"] != table["Dana"]["origin"]
    assert all("Dana" not in turn.text and "Priya" not in turn.text for turn in swapped.turns)
    assert {turn.speaker for turn in swapped.turns} == {new_candidate, swapped.metadata["interviewer"]}
    assert [turn.role for turn in swapped.turns] == [turn.role for turn in t.turns]
    first = t.turns[0].text.replace("Dana", new_candidate.split()[0])
    assert swapped.turns[0].text == first.replace("Priya", swapped.metadata["interviewer"].split()[0])


def test_name_swaps_never_reuse_a_name_in_the_transcript() -> None:
    swaps = name_swaps(["Wei Zhang", "Kwame Mensah", "Zed"], seed=1)
    assert set(swaps.values()).isdisjoint({"Wei", "Zhang", "Kwame", "Mensah", "Wei Zhang", "Kwame Mensah"})
    assert len({swaps["Wei Zhang"], swaps["Kwame Mensah"], swaps["Zed"]}) == 3


def test_code_removed_drops_only_the_files(lru) -> None:
    t, r = lru
    p = perturb("code_removed", t, r)
    assert p.transcript.code_files == [] and p.transcript.turns == t.turns and p.detail == "left out: lru_ttl_cache.py"


def _rows(spec: list[tuple[str, str, int, str, int | None]]) -> list[ScoreRow]:
    return [ScoreRow(*s) for s in spec]


def test_movement_is_against_the_mean_of_the_unperturbed_samples() -> None:
    rows = _rows([
        ("a", "none", 1, "x", 3), ("a", "none", 2, "x", 4), ("a", "none", 3, "x", 2),
        ("b", "none", 1, "x", 5), ("a", "names_swapped", 1, "x", 4), ("b", "names_swapped", 1, "x", 5),
        ("a", "code_removed", 1, "x", 1), ("b", "code_removed", 1, "x", None),
    ])
    by = {m["perturbation"]: m for m in movements(rows)}
    assert by["names_swapped"] == {"perturbation": "names_swapped", "dimension_id": "x", "n": 2, "mean_delta": 0.5,
                                   "mean_abs_delta": 0.5, "invariant": True, "flagged": True}
    assert by["code_removed"]["n"] == 1 and by["code_removed"]["mean_delta"] == -2 and not by["code_removed"]["flagged"]


def test_retest_agreement_and_spread() -> None:
    rows = _rows([("a", "none", 1, "x", 3), ("a", "none", 2, "x", 3), ("a", "none", 3, "x", 5),
                  ("b", "none", 1, "x", 2), ("b", "none", 2, "x", 2), ("c", "none", 1, "x", 4)])
    (r,) = retest(rows)
    assert r["n"] == 2 and r["k"] == 3  # c has one sample only
    assert r["agreement"] == pytest.approx(2 / 4)  # a: 1 of 3 pairs, b: 1 of 1
    assert r["spread"] == 1.0
