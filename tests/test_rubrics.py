"""Rubrics: validation, content-hash versions, extension, selection, and the `evaluate rubrics` commands."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import evaluator.rubrics as rubrics_module
from evaluator.cli import app
from evaluator.errors import BadInput
from evaluator.rubrics import check_all, load_all, load_rubric_files, select_rubric, select_rubric_with_warnings

REPO = Path(__file__).resolve().parent.parent
RUBRICS = REPO / "rubrics"
DEFAULT_DIMS = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]


pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def rubric_copy(tmp_path) -> Path:
    d = tmp_path / "rubrics"
    shutil.copytree(RUBRICS, d)
    return d


def dim(did: str, levels=(1, 2, 3, 4, 5), **extra) -> dict:
    return {"id": did, "name": did.title(), "question": f"Does the candidate show {did}?",
            "anchors": {lvl: f"level {lvl}" for lvl in levels}, **extra}


def write_rubric(directory: Path, name: str, data: dict | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def only_error(directory: Path) -> str:
    with pytest.raises(BadInput) as exc:
        load_all(directory)
    return str(exc.value)


# --------------------------------------------------------------------------------------------
# the shipped rubrics
# --------------------------------------------------------------------------------------------

def test_every_shipped_rubric_validates():
    rubrics = load_all(RUBRICS)
    assert {r.id for r in rubrics} >= {"default"}
    assert len(rubrics) == len(list(RUBRICS.glob("*.y*ml")))
    assert all(error is None for _, error in check_all(RUBRICS))
    for r in rubrics:
        assert r.dimensions
        for d in r.dimensions:
            assert sorted(d.anchors) == r.scale.levels, (r.id, d.id)
            assert all(text.strip() for text in d.anchors.values())


def test_default_rubric_dimensions():
    r = select_rubric("default", None, RUBRICS)
    assert r.dimension_ids == DEFAULT_DIMS
    assert (r.scale.min, r.scale.max) == (1, 5)
    for d in r.dimensions:
        assert sorted(d.anchors) == [1, 2, 3, 4, 5]
    assert [d.id for d in r.dimensions if d.allow_not_observed] == ["recovery"]
    assert r.dimension("recovery").not_observed_when


def test_extending_rubrics_keep_the_default_dimensions():
    for r in load_all(RUBRICS):
        if r.extends == "default":
            assert r.dimension_ids[: len(DEFAULT_DIMS)] == DEFAULT_DIMS


# --------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------

def test_version_is_a_content_hash(rubric_copy):
    original = {r.id: r.version for r in load_all(RUBRICS)}
    copied = {r.id: r.version for r in load_all(rubric_copy)}
    assert copied == original  # the folder is not part of the version
    assert re.fullmatch(r"default@[0-9a-f]{8,}", original["default"])


def test_editing_a_rubric_changes_its_version(rubric_copy):
    before = select_rubric("default", None, rubric_copy).version
    p = rubric_copy / "default.yaml"
    data = yaml.safe_load(p.read_text())
    data["dimensions"][0]["anchors"][3] += " Edited."
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    assert select_rubric("default", None, rubric_copy).version != before


def test_comment_only_edit_keeps_the_version(rubric_copy):
    before = select_rubric("default", None, rubric_copy).version
    p = rubric_copy / "default.yaml"
    p.write_text("# a comment changes nothing the judge sees\n" + p.read_text())
    assert select_rubric("default", None, rubric_copy).version == before


def test_editing_the_base_changes_the_extending_rubrics_version(rubric_copy):
    before = {r.id: r.version for r in load_all(rubric_copy)}
    extending = [rid for rid, _ in before.items()
                 if select_rubric(rid, None, rubric_copy).extends == "default"]
    assert extending, "expected at least one shipped rubric to extend default"
    p = rubric_copy / "default.yaml"
    data = yaml.safe_load(p.read_text())
    data["dimensions"][1]["question"] += " (edited)"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    after = {r.id: r.version for r in load_all(rubric_copy)}
    for rid in extending + ["default"]:
        assert after[rid] != before[rid], rid


# --------------------------------------------------------------------------------------------
# extension
# --------------------------------------------------------------------------------------------

def test_extension_merges_anchors_and_adds_dimensions(tmp_path):
    d = tmp_path / "r"
    write_rubric(d, "base.yaml", {"id": "base", "title": "Base", "guidance": "Base guidance.",
                                  "dimensions": [dim("alpha"), dim("beta", allow_not_observed=True)]})
    write_rubric(d, "child.yaml", {
        "id": "child", "title": "Child", "extends": "base", "guidance": "Child guidance.",
        "dimensions": [
            {"id": "alpha", "anchors": {4: "sharper level 4"}},
            {"id": "beta", "question": "A new question?"},
            dim("gamma"),
        ],
    })
    base = select_rubric("base", None, d)
    child = select_rubric("child", None, d)
    assert child.extends == "base"
    assert child.dimension_ids == ["alpha", "beta", "gamma"]
    alpha = child.dimension("alpha")
    assert alpha.anchors[4] == "sharper level 4"
    assert {k: v for k, v in alpha.anchors.items() if k != 4} == \
        {k: v for k, v in base.dimension("alpha").anchors.items() if k != 4}
    assert alpha.name == base.dimension("alpha").name
    beta = child.dimension("beta")
    assert beta.question == "A new question?"
    assert beta.anchors == base.dimension("beta").anchors
    assert beta.allow_not_observed is True
    assert "Base guidance." in child.guidance and "Child guidance." in child.guidance
    # the base itself is untouched by its extension
    assert base.dimension("alpha").anchors[4] == "level 4"


def test_shipped_extension_merges_anchors():
    base = select_rubric("default", None, RUBRICS)
    for r in load_all(RUBRICS):
        if r.extends != "default":
            continue
        for dd in base.dimensions:
            assert sorted(r.dimension(dd.id).anchors) == [1, 2, 3, 4, 5]


# --------------------------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------------------------

def test_select_by_id():
    assert select_rubric("lru_ttl_cache", None, RUBRICS).id == "lru_ttl_cache"
    assert select_rubric("default", "rag", RUBRICS).id == "default"  # an explicit id wins


def test_select_unknown_id_is_bad_input():
    with pytest.raises(BadInput, match="no_such_rubric"):
        select_rubric("no_such_rubric", None, RUBRICS)


def test_select_by_yaml_path(tmp_path):
    p = write_rubric(tmp_path / "custom", "mine.yaml", {"id": "mine", "title": "Mine", "dimensions": [dim("alpha")]})
    assert select_rubric(str(p), None, RUBRICS).id == "mine"
    # relative path, no folder separator
    shutil.copy(p, tmp_path / "mine2.yaml")
    assert select_rubric("mine2.yaml", None, RUBRICS).id == "mine"


def test_select_by_yaml_path_extending_a_known_rubric(tmp_path):
    p = write_rubric(tmp_path / "custom", "ext.yaml", {
        "id": "ext", "title": "Ext", "extends": "default", "dimensions": [dim("extra")]})
    r = select_rubric(str(p), None, RUBRICS)
    assert r.dimension_ids == DEFAULT_DIMS + ["extra"]


def test_select_missing_yaml_path_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="absent.yaml"):
        select_rubric(str(tmp_path / "absent.yaml"), None, RUBRICS)


@pytest.mark.parametrize("exercise,expected", [
    ("lru_ttl_cache", "lru_ttl_cache"),
    ("lru_cache", "lru_ttl_cache"),
    ("LRU cache", "lru_ttl_cache"),
    ("rag", "rag_pipeline"),
    ("RAG pipeline", "rag_pipeline"),
    ("rag-pipeline", "rag_pipeline"),
    ("react_agent", "agent_loop"),
    ("agent_loop", "agent_loop"),
    ("rate_limiter", "default"),
    (None, "default"),
])
def test_select_by_exercise(exercise, expected):
    assert select_rubric(None, exercise, RUBRICS).id == expected


def test_default_found_from_the_working_directory_or_the_checkout(tmp_path):
    # cwd is an empty tmp folder (autouse fixture): the checkout's rubrics are used
    assert select_rubric(None, None).id == "default"


def test_env_var_selects_the_folder(tmp_path, monkeypatch):
    d = tmp_path / "elsewhere"
    write_rubric(d, "default.yaml", {"id": "default", "title": "Other default", "dimensions": [dim("alpha")]})
    monkeypatch.setenv("EVALUATOR_RUBRICS_DIR", str(d))
    assert select_rubric(None, None).title == "Other default"


# --------------------------------------------------------------------------------------------
# validation errors name the file and the field
# --------------------------------------------------------------------------------------------

def base_rubric(**over) -> dict:
    return {"id": "r", "title": "T", "dimensions": [dim("alpha")], **over}


BAD = {
    "missing_anchor": (base_rubric(dimensions=[dim("alpha", levels=(1, 2, 3, 4))]), ["alpha", "anchor", "5"]),
    "anchor_outside": (base_rubric(dimensions=[dim("alpha", levels=(1, 2, 3, 4, 5, 6))]), ["alpha", "anchor", "6"]),
    "bad_id": (base_rubric(id="Bad-Id"), ["id"]),
    "bad_dimension_id": (base_rubric(dimensions=[dim("Alpha Beta")]), ["dimensions", "id"]),
    "unknown_key": (base_rubric(colour="red"), ["colour"]),
    "unknown_dimension_key": (base_rubric(dimensions=[dim("alpha", weight=2)]), ["weight"]),
    "duplicate_dimension": (base_rubric(dimensions=[dim("alpha"), dim("alpha")]), ["alpha"]),
    "extends_unknown": (base_rubric(extends="nope"), ["extends", "nope"]),
    "bad_regex": (base_rubric(dimensions=[dim("alpha", baseline_signals=["(unclosed"])]),
                  ["baseline_signals", "(unclosed"]),
    "invalid_yaml": ("id: r\ntitle: [unclosed\ndimensions: []\n", ["YAML"]),
    "not_a_mapping": ("- just\n- a list\n", ["mapping"]),
    "missing_title": ({"id": "r", "dimensions": [dim("alpha")]}, ["title"]),
    "scale_reversed": (base_rubric(scale={"min": 5, "max": 1}), ["scale"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_validation_error_names_file_and_field(tmp_path, case):
    data, needles = BAD[case]
    d = tmp_path / "bad"
    write_rubric(d, f"{case}.yaml", data)
    message = only_error(d)
    assert f"{case}.yaml" in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in message
    # check_all reports it against the same file
    results = dict(check_all(d))
    assert results[str(d / f"{case}.yaml")] is not None


def test_circular_extends_names_file_and_field(tmp_path):
    d = tmp_path / "bad"
    write_rubric(d, "a.yaml", {"id": "a", "title": "A", "extends": "b", "dimensions": [dim("alpha")]})
    write_rubric(d, "b.yaml", {"id": "b", "title": "B", "extends": "a", "dimensions": [dim("beta")]})
    message = only_error(d)
    assert "circular" in message
    assert "extends" in message
    assert re.search(r"\b[ab]\.yaml\b", message), message


def test_duplicate_rubric_id_across_files(tmp_path):
    d = tmp_path / "bad"
    write_rubric(d, "one.yaml", base_rubric())
    write_rubric(d, "two.yaml", base_rubric())
    message = only_error(d)
    assert "two.yaml" in message and "one.yaml" in message


def test_check_all_reports_every_bad_file_independently(tmp_path):
    d = tmp_path / "mixed"
    write_rubric(d, "good.yaml", base_rubric(id="good"))
    write_rubric(d, "bad1.yaml", base_rubric(id="bad1", colour="red"))
    write_rubric(d, "bad2.yaml", base_rubric(id="bad2", dimensions=[dim("alpha", levels=(1, 2))]))
    results = dict(check_all(d))
    assert results[str(d / "good.yaml")] is None
    assert "colour" in results[str(d / "bad1.yaml")]
    assert "anchor" in results[str(d / "bad2.yaml")]


# --------------------------------------------------------------------------------------------
# a folder of one's own may extend the built-in rubrics
# --------------------------------------------------------------------------------------------

def chunker(**over) -> dict:
    return {"id": "chunker", "title": "Chunker round", "extends": "default", "exercises": ["chunker"],
            "dimensions": [{"id": "cost_awareness", "anchors": {3: "sharper level 3"}}], **over}


def test_own_folder_extends_a_builtin_rubric(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker())
    r = select_rubric("chunker", None, d)
    assert r.dimension_ids == DEFAULT_DIMS
    assert r.dimension("cost_awareness").anchors[3] == "sharper level 3"
    assert r.extends == "default" and r.extends_builtin
    assert [x.id for x in load_all(d)] == ["chunker"]  # the built-ins are bases, not members of the folder
    assert dict(check_all(d)) == {str(d / "chunker.yaml"): None}
    assert select_rubric(None, "chunker", d).id == "chunker"
    # the folder is not part of the version: the same as with the base copied into the folder
    shutil.copy(RUBRICS / "default.yaml", d / "default.yaml")
    copied = select_rubric("chunker", None, d)
    assert copied.version == r.version and not copied.extends_builtin


def test_env_var_folder_extends_a_builtin_rubric(tmp_path, monkeypatch):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker())
    monkeypatch.setenv("EVALUATOR_RUBRICS_DIR", str(d))
    assert select_rubric(None, "chunker").dimension_ids == DEFAULT_DIMS
    r = invoke("rubrics", "check")
    assert r.exit_code == 0, r.output


def test_selecting_by_path_extends_a_builtin_when_the_folder_lacks_the_base(tmp_path):
    p = write_rubric(tmp_path / "custom", "chunker.yaml", chunker())
    other = tmp_path / "other"
    write_rubric(other, "unrelated.yaml", base_rubric(id="unrelated"))
    r = select_rubric(str(p), None, other)
    assert r.dimension_ids == DEFAULT_DIMS and r.extends_builtin


def test_files_in_the_folder_win_over_builtins(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "default.yaml", {"id": "default", "title": "Mine", "dimensions": [dim("alpha")]})
    write_rubric(d, "chunker.yaml", chunker(dimensions=[dim("beta")]))
    r = select_rubric("chunker", None, d)
    assert r.dimension_ids == ["alpha", "beta"]
    assert not r.extends_builtin
    assert select_rubric(None, None, d).title == "Mine"


def test_a_file_extending_its_own_id_extends_the_builtin(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "default.yaml", {"id": "default", "title": "Stricter default", "extends": "default",
                                     "guidance": "Be strict.",
                                     "dimensions": [{"id": "recovery", "anchors": {5: "flawless"}}]})
    write_rubric(d, "chunker.yaml", chunker())
    builtin = select_rubric("default", None, RUBRICS)
    mine = select_rubric(None, None, d)
    assert mine.title == "Stricter default" and mine.extends_builtin
    assert mine.dimension_ids == DEFAULT_DIMS
    assert mine.dimension("recovery").anchors[5] == "flawless"
    assert mine.guidance.endswith("Be strict.") and mine.guidance.startswith(builtin.guidance)
    # chunker extends the folder's default, which extends the built-in one
    c = select_rubric("chunker", None, d)
    assert c.dimension("recovery").anchors[5] == "flawless" and not c.extends_builtin
    assert all(error is None for _, error in check_all(d))


def test_extending_its_own_id_without_a_builtin(tmp_path, monkeypatch):
    monkeypatch.setattr(rubrics_module, "builtin_rubrics_dir", lambda: None)
    d = tmp_path / "mydir"
    write_rubric(d, "a.yaml", base_rubric(id="a", extends="a"))
    message = only_error(d)
    assert "a.yaml" in message and "own id" in message


def test_unknown_base_lists_the_builtins_and_suggests(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker(extends="defualt"))
    message = only_error(d)
    assert "chunker.yaml" in message and "'defualt'" in message
    assert "built-in: " in message and "did you mean 'default'?" in message


def test_unknown_id_in_own_folder_points_at_the_builtin(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker())
    with pytest.raises(BadInput) as exc:
        select_rubric("default", None, d)
    assert "built-in" in str(exc.value) and str(RUBRICS / "default.yaml") in str(exc.value)


def test_no_default_in_own_folder_says_how_to_use_the_builtin(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker())
    with pytest.raises(BadInput, match=r"no 'default' rubric in .*mydir.*extends: default"):
        select_rubric(None, "rag", d)


def test_cli_own_folder_extending_a_builtin(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker())
    r = invoke("rubrics", "check", "--dir", str(d))
    assert r.exit_code == 0, r.output
    r = invoke("rubrics", "list", "--dir", str(d))
    assert r.exit_code == 0, r.output
    assert "default (built-in)" in r.output
    r = invoke("rubrics", "show", "chunker", "--dir", str(d))
    assert r.exit_code == 0, r.output
    assert "extends default (built-in)" in r.output
    # the built-in folder itself does not call its own bases built-in
    r = invoke("rubrics", "show", "lru_ttl_cache", "--dir", str(RUBRICS))
    assert "extends default" in r.output and "(built-in)" not in r.output


# --------------------------------------------------------------------------------------------
# one rubric per exercise
# --------------------------------------------------------------------------------------------

def test_two_rubrics_claiming_an_exercise(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "one.yaml", base_rubric(id="one", exercises=["chunker", "rag_chunker"]))
    write_rubric(d, "two.yaml", base_rubric(id="two", exercises=["Chunker"]))  # the same once normalised
    results = dict(check_all(d))
    assert results[str(d / "one.yaml")] is None
    error = results[str(d / "two.yaml")]
    assert error and "'chunker'" in error and "one.yaml" in error and "two.yaml" in error
    message = only_error(d)
    assert "one.yaml" in message and "two.yaml" in message
    with pytest.raises(BadInput) as exc:
        select_rubric(None, "chunker", d)
    assert "one.yaml" in str(exc.value) and "two.yaml" in str(exc.value)
    # an exercise only one of them claims still selects
    assert select_rubric(None, "rag_chunker", d).id == "one"
    r = invoke("rubrics", "check", "--dir", str(d))
    assert r.exit_code == 2 and "two.yaml" in r.output


def test_an_exercise_claimed_by_another_rubrics_id(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", base_rubric(id="chunker"))
    write_rubric(d, "other.yaml", base_rubric(id="other", exercises=["chunker"]))
    assert dict(check_all(d))[str(d / "other.yaml")] is not None
    with pytest.raises(BadInput, match="chunker.yaml"):
        select_rubric(None, "chunker", d)


def test_a_conflict_joins_other_errors_in_the_same_file(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "one.yaml", base_rubric(id="one", exercises=["chunker"]))
    write_rubric(d, "two.yaml", base_rubric(id="two", exercises=["chunker"], dimensions=[dim("alpha", levels=(1, 2))]))
    results = check_all(d)
    assert len(results) == 2
    error = dict(results)[str(d / "two.yaml")]
    assert "anchor" in error and "one.yaml" in error


# --------------------------------------------------------------------------------------------
# dimension errors name the dimension, not its index in the merged list
# --------------------------------------------------------------------------------------------

def test_typo_in_a_patched_dimension(tmp_path):
    d = tmp_path / "mydir"
    p = write_rubric(d, "chunker.yaml", chunker(dimensions=[{"id": "cost_awarness", "anchors": {3: "x"}}]))
    assert only_error(d) == (
        f"{p}: dimension 'cost_awarness' is not in the base rubric 'default', so it needs name, question and "
        f"anchors; did you mean 'cost_awareness'?")
    assert dict(check_all(d))[str(p)] == only_error(d)


def test_new_dimension_missing_fields_without_a_base(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "r.yaml", base_rubric(dimensions=[{"id": "alpha", "anchors": {1: "a"}}]))
    message = only_error(d)
    assert "dimension 'alpha'" in message and "missing: name, question" in message
    assert "did you mean" not in message


def test_several_incomplete_dimensions_are_all_named(tmp_path):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker(dimensions=[{"id": "invariantt", "name": "I"}, {"id": "recovry"}]))
    message = only_error(d)
    assert "did you mean 'invariant'?" in message and "did you mean 'recovery'?" in message


@pytest.mark.parametrize("patch,needle", [
    ({"id": "recovery", "baseline_signals": ["(unclosed"]}, "dimensions['recovery'].baseline_signals"),
    ({"id": "recovery", "anchors": {3: "  "}}, "dimensions['recovery'].anchors"),
    ({"id": "recovery", "weight": 2}, "dimensions['recovery'].weight"),
])
def test_errors_in_an_extending_rubric_name_the_dimension(tmp_path, patch, needle):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker(dimensions=[patch]))
    message = only_error(d)
    assert "chunker.yaml" in message and needle in message, message
    assert not re.search(r"dimensions\.\d", message), message
    assert "Value error" not in message


# --------------------------------------------------------------------------------------------
# selection warnings
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rubric,exercise,expected,warnings", [
    (None, "lru_ttl_cache", "lru_ttl_cache", []),
    (None, "LRU cache", "lru_ttl_cache", []),
    (None, None, "default", []),
    (None, "", "default", []),
    (None, "lru_ttl_cahce", "default",
     ["exercise 'lru_ttl_cahce' matches no rubric (did you mean lru_ttl_cache?); using 'default'"]),
    (None, "rate_limiter", "default", ["exercise 'rate_limiter' matches no rubric (known exercises: agent_loop, "
                                       "lru_cache, lru_ttl_cache, rag, rag_pipeline, react_agent, ttl_cache); "
                                       "using 'default'"]),
    ("default", "lru_ttl_cahce", "default", []),  # an explicit rubric makes the exercise irrelevant
])
def test_select_rubric_with_warnings(rubric, exercise, expected, warnings):
    r, got = select_rubric_with_warnings(rubric, exercise, RUBRICS)
    assert (r.id, got) == (expected, warnings)
    assert select_rubric(rubric, exercise, RUBRICS).version == r.version


def test_rubric_files_are_read_once_per_change(tmp_path, monkeypatch):
    d = tmp_path / "mydir"
    write_rubric(d, "chunker.yaml", chunker())
    write_rubric(d, "default.yaml", {"id": "default", "title": "Mine", "extends": "default"})
    select_rubric(None, None, d)  # warm: the built-in folder may be read here for the first time
    reads: list[Path] = []
    real = rubrics_module.read_rubric_file
    monkeypatch.setattr(rubrics_module, "read_rubric_file", lambda p: reads.append(p) or real(p))
    for exercise in ["chunker", "rag", None, "chunker"] * 25:
        select_rubric_with_warnings(None, exercise, d)
    assert reads == []
    p = d / "chunker.yaml"
    p.write_text(p.read_text() + "description: edited\n")
    load_rubric_files(d)
    assert d / "chunker.yaml" in reads


# --------------------------------------------------------------------------------------------
# the `evaluate rubrics` commands
# --------------------------------------------------------------------------------------------

runner = CliRunner()
WIDE = {"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}


def invoke(*args):
    result = runner.invoke(app, list(args), env=WIDE)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


def test_cli_check_real_folder():
    r = invoke("rubrics", "check", "--dir", str(RUBRICS))
    assert r.exit_code == 0, r.output
    assert "default.yaml" in r.output


def test_cli_check_real_folder_by_default():
    # cwd has no rubrics/ (autouse fixture): the checkout's folder is checked
    r = invoke("rubrics", "check")
    assert r.exit_code == 0, r.output


def test_cli_show_unknown_id_without_a_folder_lists_the_builtins_as_known():
    # cwd has no rubrics/ (autouse fixture): the built-in rubrics are the known ones, not "none"
    r = invoke("rubrics", "show", "nope")
    message = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert "known: none" not in message and "known (built-in): " in message and "default" in message


def test_cli_check_bad_folder(tmp_path):
    d = tmp_path / "bad"
    write_rubric(d, "good.yaml", base_rubric(id="good"))
    write_rubric(d, "broken_anchor.yaml", base_rubric(id="broken", dimensions=[dim("alpha", levels=(1, 2, 3))]))
    r = invoke("rubrics", "check", "--dir", str(d))
    assert r.exit_code == 2, r.output
    assert "broken_anchor.yaml" in r.output
    assert "anchor" in r.output


def test_cli_check_missing_folder(tmp_path):
    r = invoke("rubrics", "check", "--dir", str(tmp_path / "nowhere"))
    assert r.exit_code == 2


def test_cli_check_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    r = invoke("rubrics", "check", "--dir", str(tmp_path / "empty"))
    assert r.exit_code == 2


def test_cli_list():
    r = invoke("rubrics", "list", "--dir", str(RUBRICS))
    assert r.exit_code == 0, r.output
    for rubric in load_all(RUBRICS):
        assert rubric.id in r.output
        assert rubric.version in r.output


def test_cli_show_default():
    r = invoke("rubrics", "show", "default", "--dir", str(RUBRICS))
    assert r.exit_code == 0, r.output
    rubric = select_rubric("default", None, RUBRICS)
    assert rubric.version in r.output
    for d in DEFAULT_DIMS:
        assert d in r.output


def test_cli_show_json():
    import json

    r = invoke("rubrics", "show", "default", "--dir", str(RUBRICS), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["id"] == "default"
    assert [d["id"] for d in doc["dimensions"]] == DEFAULT_DIMS
    assert doc["version"] == select_rubric("default", None, RUBRICS).version


def test_cli_show_unknown_is_exit_2():
    r = invoke("rubrics", "show", "no_such_rubric", "--dir", str(RUBRICS))
    assert r.exit_code == 2
    assert "no_such_rubric" in r.output
