"""The offline baseline judge: substance over keywords, verbatim quotes, schema, determinism.

Hand-built transcripts pin each dimension's behaviour; the sample transcripts (when present) check
that strong rounds outscore weak and hollow ones.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from evaluator.judge.base import Judge, JudgeOutput
from evaluator.judge.baseline import BaselineJudge, map_score
from evaluator.judge.evidence import EvidenceIndex
from evaluator.models import CodeBlock, CodeFile, DimensionResult, Transcript, Turn
from evaluator.rubrics import Dimension, Rubric, Scale

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "transcripts"
BUILTIN = ["invariant", "edge_cases", "restraint", "recovery", "cost_awareness"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def transcript(*turns: tuple[str, str], code_files: dict[str, str] | None = None,
               recognised: bool = True) -> Transcript:
    """Turns as (role, text); fenced code in a turn's text also becomes its code_blocks, as ingest does."""
    built = []
    for i, (role, text) in enumerate(turns):
        blocks = [CodeBlock(language=m.group(1) or None, code=m.group(2))
                  for m in re.finditer(r"```(\w*)\n(.*?)\n```", text, re.S)]
        built.append(Turn(id=f"t{i + 1}", index=i, speaker=role.title(), role=role, text=text,  # type: ignore[arg-type]
                          code_blocks=blocks))
    files = [CodeFile(name=n, path=n, content=c, language="python") for n, c in (code_files or {}).items()]
    return Transcript(source="hand.md", turns=built, code_files=files, content_hash="h",
                      raw_text="\n\n".join(t for _, t in turns), speakers_recognised=recognised)


def dim(dim_id: str, *, allow_not_observed: bool = False, signals: list[str] | None = None,
        scale: tuple[int, int] = (1, 5)) -> Dimension:
    return Dimension(id=dim_id, name=dim_id, question=f"{dim_id}?",
                     anchors={i: f"level {i}" for i in range(scale[0], scale[1] + 1)},
                     allow_not_observed=allow_not_observed, baseline_signals=signals or [])


def rubric(*dims: Dimension, scale: tuple[int, int] = (1, 5)) -> Rubric:
    return Rubric(id="t", title="t", scale=Scale(min=scale[0], max=scale[1]), dimensions=list(dims))


DEFAULT = rubric(*(dim(d, allow_not_observed=(d == "recovery")) for d in BUILTIN))


def judge(t: Transcript, r: Rubric = DEFAULT) -> JudgeOutput:
    return asyncio.run(BaselineJudge().judge(t, r))


def result(t: Transcript, dim_id: str, r: Rubric = DEFAULT) -> DimensionResult:
    return next(d for d in judge(t, r).dimensions if d.id == dim_id)


def assert_verbatim(t: Transcript, out: JudgeOutput) -> None:
    """Every quote is a verbatim substring of the turn or code file it names, short, and placeable by
    the pipeline's quote verifier at 100%."""
    places = {turn.id: [turn.text, *(b.code for b in turn.code_blocks)] for turn in t.turns}
    places.update({f.name: [f.content] for f in t.code_files})
    index = EvidenceIndex.of(t)
    for d in out.dimensions:
        assert len(d.evidence) <= 3, d.id
        for ev in d.evidence:
            assert ev.source in places, (d.id, ev)
            assert any(ev.quote in text for text in places[ev.source]), (d.id, ev.quote)
            assert 0 < len(ev.quote) <= 200, (d.id, ev.quote)
            located = index.locate(ev.quote)
            assert located is not None and located.match == 100.0, (d.id, ev.quote)


# --------------------------------------------------------------------------------------------
# hand-built rounds
# --------------------------------------------------------------------------------------------

HOLLOW = transcript(
    ("interviewer", "Implement an LRU cache with get and put."),
    ("candidate", "Great question. I think the invariant is really important here, and correctness matters. "
                  "I'll handle all the edge cases carefully. Cost and latency matter a lot, tokens are expensive, "
                  "so I'd be efficient. There are trade-offs, of course."),
    ("interviewer", "What exactly must be true?"),
    ("candidate", "The system always behaves correctly and stays in a consistent state. Edge cases are key."),
)

LRU_CODE = """\
class LRU:
    def __init__(self, capacity):
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self.data = OrderedDict()

    def get(self, key):
        if key not in self.data:
            return None
        self.data.move_to_end(key)
        return self.data[key]

    def put(self, key, value):
        if self.capacity == 0:
            return
        if key in self.data:
            self.data.move_to_end(key)
        self.data[key] = value
        if len(self.data) > self.capacity:
            self.data.popitem(last=False)
        assert len(self.data) <= self.capacity
"""

LRU_TESTS = """\
def test_capacity_zero_stores_nothing():
    c = LRU(0)
    c.put("a", 1)
    assert c.get("a") is None

def test_missing_key_returns_none():
    assert LRU(2).get("nope") is None

def test_duplicate_put_updates_value():
    c = LRU(2)
    c.put("a", 1)
    c.put("a", 2)
    assert c.get("a") == 2 and len(c.data) <= c.capacity
"""

STRONG = transcript(
    ("interviewer", "Implement an LRU cache with get and put, both O(1)."),
    ("candidate", "Before any code, the invariant: the cache never holds more than `capacity` entries, "
                  "and the dict order is the recency order, least recent first.\n"
                  "I'll start with a plain OrderedDict, the simplest version that is correct, and add TTL later "
                  "if we need it.\n"
                  "Edge cases: capacity 0 stores nothing; a missing key returns None; putting a duplicate key "
                  "updates it in place; negative capacity raises ValueError."),
    ("candidate", "```python\n" + LRU_CODE + "```"),
    ("candidate", "get and put are O(1): one dict lookup and one move_to_end. Memory is O(capacity), "
                  "about 100 bytes per entry, so 1 million entries is roughly 100 MB. "
                  "Using OrderedDict instead of a hand-written linked list trades a little speed for less code, "
                  "which is worth it at this size."),
    ("candidate", "Tests:\n```python\n" + LRU_TESTS + "```"),
)


def test_output_schema_order_usage_and_info():
    out = judge(STRONG)
    assert [d.id for d in out.dimensions] == BUILTIN
    assert out.usage.calls == 0 and out.usage.prompt_tokens == 0 and out.usage.completion_tokens == 0
    assert out.usage.cost_usd == 0.0 and out.exchanges == []
    info = BaselineJudge().info()
    assert isinstance(BaselineJudge(), Judge)
    assert info.kind == "baseline" and info.model is None
    assert re.fullmatch(r"baseline-v1\+[0-9a-f]{10}\.[0-9a-f]{8}", info.prompt_version)  # tables + probe outputs
    assert info.note and info.note.startswith("Offline baseline judge") and "not an LLM" in info.note
    for d in out.dimensions:
        if d.id == "recovery":  # no mistake in this round
            assert d.status == "not_observed" and d.score is None and d.rationale
        else:
            assert d.status == "scored" and 1 <= d.score <= 5 and d.rationale and d.evidence


def test_hollow_keywords_score_low():
    out = {d.id: d for d in judge(HOLLOW).dimensions}
    assert out["invariant"].score <= 2
    assert out["edge_cases"].score <= 2
    assert out["cost_awareness"].score <= 2
    assert "no concrete" in out["edge_cases"].rationale or "names no" in out["edge_cases"].rationale.lower()


def test_strong_round_scores_high_with_reasons():
    out = {d.id: d for d in judge(STRONG).dimensions}
    assert out["invariant"].score == 5, out["invariant"].rationale
    assert out["edge_cases"].score >= 4, out["edge_cases"].rationale
    assert out["restraint"].score >= 4, out["restraint"].rationale
    assert out["cost_awareness"].score >= 4, out["cost_awareness"].rationale
    assert out["recovery"].status == "not_observed" and out["recovery"].score is None
    inv = out["invariant"]
    assert "before any code" in inv.rationale
    assert any("never holds more than" in e.quote for e in inv.evidence)
    assert any(e.quote.startswith("assert len(self.data) <= self.capacity") for e in inv.evidence)
    assert "capacity 0" in out["edge_cases"].rationale or "zero" in out["edge_cases"].rationale


# ---------------------------------------------------------------------------------------- invariant

def test_invariant_stated_after_code_and_never_used_is_middling():
    t = transcript(("candidate", "```python\ndef f(xs):\n    return sorted(xs)\n```"),
                   ("candidate", "The output must always be sorted in increasing order and have the same length "
                                 "as the input."))
    r = result(t, "invariant")
    assert r.score == 3 and "none before the first code" in r.rationale


def test_invariant_supplied_by_interviewer_caps_at_two():
    t = transcript(("interviewer", "The invariant is that size never exceeds capacity. Use it."),
                   ("candidate", "Right, size never exceeds capacity."),
                   ("candidate", "```python\nx = 1\n```"))
    assert result(t, "invariant").score == 2


def test_invariant_with_only_asserts_is_low():
    t = transcript(("candidate", "```python\ndef push(q, x):\n    q.append(x)\n    assert len(q) <= 10\n```"))
    r = result(t, "invariant")
    assert r.score == 2 and "no invariant is stated" in r.rationale


# --------------------------------------------------------------------------------------- edge cases

def test_edge_cases_named_handled_and_tested():
    t = transcript(
        ("candidate", "Boundary cases for top_k: an empty corpus, k = 0, and k larger than the number of documents."),
        ("candidate", "```python\ndef top_k(docs, k):\n    if not docs or k <= 0:\n        return []\n"
                      "    return sorted(docs)[:min(k, len(docs))]\n```"),
        ("candidate", "```python\ndef test_empty_corpus():\n    assert top_k([], 3) == []\n\n"
                      "def test_k_larger_than_corpus():\n    assert top_k([1], 5) == [1]\n\n"
                      "def test_k_zero():\n    assert top_k([1], 0) == []\n```"))
    r = result(t, "edge_cases")
    assert r.score >= 4, r.rationale
    assert "3 boundary case" in r.rationale and "covered by a test" in r.rationale


def test_edge_cases_named_but_not_handled_is_capped():
    t = transcript(("candidate", "Edge cases: an empty list, duplicates, and unicode input."),
                   ("candidate", "```python\ndef f(xs):\n    return xs[0]\n```"))
    r = result(t, "edge_cases")
    assert r.score <= 3 and "0 handled" in r.rationale


def test_edge_cases_raised_only_by_interviewer_do_not_count():
    t = transcript(("interviewer", "What happens with an empty input?"),
                   ("candidate", "An empty input would just return nothing, it's fine."))
    r = result(t, "edge_cases")
    assert r.score == 2 and "interviewer raised" in r.rationale


# ---------------------------------------------------------------------------------------- restraint

THREADED = ("```python\nimport threading\n\nclass Cache:\n    def __init__(self):\n"
            "        self.lock = threading.Lock()\n```")


def test_restraint_penalises_unrequested_concurrency_even_with_simple_talk():
    t = transcript(("interviewer", "Write a cache."),
                   ("candidate", "I'll keep it simple and start with a dict."),
                   ("candidate", THREADED))
    r = result(t, "restraint")
    assert r.score <= 2 and "threads/locks" in r.rationale and "contradicted" in r.rationale
    assert r.evidence[0].quote == "import threading"


def test_restraint_does_not_penalise_requested_concurrency():
    t = transcript(("interviewer", "Write a cache that is safe with multiple threads."),
                   ("candidate", "Then the simplest correct version is one lock around each method."),
                   ("candidate", THREADED))
    r = result(t, "restraint")
    assert r.score >= 4 and "threads/locks" not in r.rationale


def test_restraint_without_code_is_capped():
    t = transcript(("candidate", "I'd start with the simplest version and add caching later if we need it."))
    assert result(t, "restraint").score <= 3


# ----------------------------------------------------------------------------------------- recovery

def test_recovery_not_observed_or_neutral_without_mistake():
    t = transcript(("candidate", "If the model call fails we retry once, so nothing breaks."),
                   ("candidate", "```python\nx = 1\n```"))
    assert result(t, "recovery").status == "not_observed"
    neutral = result(t, "recovery", rubric(dim("recovery", allow_not_observed=False)))
    assert neutral.status == "scored" and neutral.score == 3 and "No mistake" in neutral.rationale


def test_recovery_named_fixed_and_rechecked():
    t = transcript(
        ("candidate", "```python\ndef put(self, k, v):\n    self.order.append(k)\n```\nLet me run the tests."),
        ("candidate", "test_eviction fails. The bug is that I never delete the evicted key from the dict, "
                      "because eviction only touches the list."),
        ("candidate", "```python\ndef _drop(self, k):\n    self.order.remove(k)\n    del self.data[k]\n```\n"
                      "Running again, all tests pass now."))
    r = result(t, "recovery")
    assert r.score == 4, r.rationale  # the rubric's 5 also wants a test that would have caught it
    assert "noticed it themselves" in r.rationale
    assert any("fails" in e.quote for e in r.evidence)
    with_test = transcript(*((tu.role, tu.text) for tu in t.turns[:2]),
                           ("candidate", t.turns[2].text + "\nAnd a test that would have caught it:\n```python\n"
                                         "def test_evicted_key_is_gone():\n    c = LRU(1)\n    c.put(1, 1)\n"
                                         "    c.put(2, 2)\n    assert 1 not in c.data\n```"))
    r = result(with_test, "recovery")
    assert r.score == 5 and "added a test" in r.rationale, r.rationale


def test_hypothetical_and_deliberate_failures_are_not_mistakes():
    t = transcript(
        ("candidate", "If I pick capacity 10 and refill 1 per second, the first minute sees 70 requests. "
                      "That breaks the invariant, so I size it to 60."),
        ("candidate", "As a sanity check I ran the test with the wrong rate, and it fails with 69 requests, "
                      "which is the overshoot I described."),
        ("candidate", "```python\ntry:\n    x = int(s)\nexcept ValueError:\n    raise AssertionError('bad')\n```"))
    assert result(t, "recovery").status == "not_observed"


def test_recovery_after_interviewer_probe_that_candidate_acknowledges():
    t = transcript(("interviewer", "What happens if the key is already in the cache?"),
                   ("candidate", "Oh, good catch: I append a second node. The bug is that put never checks the dict "
                                 "first.\n```python\nif key in self.map:\n    self._unlink(self.map[key])\n```"),
                   ("candidate", "Now the re-put test passes."))
    r = result(t, "recovery")
    assert r.score == 4, r.rationale
    assert "after a hint or question" in r.rationale


def test_recovery_panic_scores_low():
    t = transcript(("interviewer", "There's a bug in put: the test fails."),
                   ("candidate", "Sorry. I'm lost, I have no idea what's wrong. Sorry, I'm so nervous."),
                   ("interviewer", "Okay, let's move on."))
    r = result(t, "recovery")
    assert r.score == 1 and "panic" in r.rationale


# ------------------------------------------------------------------------------------ cost awareness

def test_cost_quantified_tradeoff_scores_high():
    t = transcript(("candidate", "Each question costs one embedding call plus one LLM call, about 1,500 tokens and "
                                 "roughly 800 ms."),
                   ("candidate", "Batching the embeddings 64 at a time instead of one call per chunk cuts 10,000 "
                                 "calls to 157."))
    r = result(t, "cost_awareness")
    assert r.score >= 4, r.rationale
    assert "calls" in r.rationale and "tokens" in r.rationale


def test_cost_numbers_only_when_asked_cap_at_three():
    t = transcript(("interviewer", "What's the time complexity?"),
                   ("candidate", "It's O(n log n) because of the sort."))
    r = result(t, "cost_awareness")
    assert r.score == 3 and "only when the interviewer asks" in r.rationale


# ------------------------------------------------------------------ custom dimensions, scales, speakers

def test_unknown_dimension_without_signals_is_unscored():
    out = judge(STRONG, rubric(dim("communication"), dim("invariant")))
    comm = out.dimensions[0]
    assert comm.status == "unscored" and comm.score is None and "no built-in signals" in comm.reason
    assert out.dimensions[1].status == "scored"


def test_unknown_dimension_with_baseline_signals_counts_statements():
    r = rubric(dim("clarifying", signals=[r"\?$", r"\bdo you want\b"]))
    t = transcript(("candidate", "Is the TTL per entry? Does get extend it?"),
                   ("candidate", "Do you want the list written out, or is OrderedDict fine?"))
    out = judge(t, r)
    d = out.dimensions[0]
    assert d.status == "scored" and d.score == 4 and "3 distinct" in d.rationale
    assert 1 <= len(d.evidence) <= 3
    assert_verbatim(t, out)
    none = judge(transcript(("candidate", "Here is the code.")), r).dimensions[0]
    assert none.score == 1


@pytest.mark.parametrize("scale", [(0, 10), (1, 3), (1, 5), (0, 4)])
def test_scores_are_mapped_onto_the_rubric_scale(scale):
    r = rubric(*(dim(d, allow_not_observed=(d == "recovery"), scale=scale) for d in BUILTIN), scale=scale)
    for t in (STRONG, HOLLOW):
        for d in judge(t, r).dimensions:
            if d.status == "scored":
                assert scale[0] <= d.score <= scale[1]
    assert map_score(1, *scale) == scale[0] and map_score(5, *scale) == scale[1]
    assert [map_score(s, 0, 10) for s in range(1, 6)] == [0, 3, 5, 8, 10]
    assert [map_score(s, 1, 3) for s in range(1, 6)] == [1, 2, 2, 3, 3]


def test_unrecognised_speakers_are_all_treated_as_candidate():
    text = ("Q: implement it. A: Before coding, the invariant: the queue never holds more than `limit` items.\n"
            "```python\ndef push(q, x, limit):\n    q.append(x)\n    assert len(q) <= limit\n```")
    t = transcript(("unknown", text), recognised=False)
    out = judge(t)
    inv = next(d for d in out.dimensions if d.id == "invariant")
    assert inv.score >= 4
    assert any(f.kind == "baseline_assumption" for f in out.flags)
    assert_verbatim(t, out)


def test_interviewer_text_is_not_credited_to_the_candidate():
    t = transcript(("interviewer", "Note each query is one LLM call of about 2,000 tokens, O(n) in the corpus."),
                   ("candidate", "Okay."))
    assert result(t, "cost_awareness").score == 1


# -------------------------------------------------------------------- quotes, determinism, speed

@pytest.mark.parametrize("t", [HOLLOW, STRONG], ids=["hollow", "strong"])
def test_quotes_are_verbatim(t):
    assert_verbatim(t, judge(t))


def test_prompt_version_tracks_the_signal_tables():
    from evaluator.judge import signals

    changed = {**signals.TABLES, "cost_awareness": [*signals.TABLES["cost_awareness"], [r"\bgpu\b"]]}
    assert signals.tables_hash(changed) != signals.tables_hash() == signals.TABLES_HASH
    assert signals.TABLES_HASH in BaselineJudge().info().prompt_version


def test_deterministic():
    a = judge(STRONG).model_dump()
    b = asyncio.run(BaselineJudge().judge(STRONG, DEFAULT)).model_dump()
    assert a == b
    assert BaselineJudge().info() == BaselineJudge().info()


def test_long_sentences_are_clipped_verbatim():
    long = ("The cache never holds more than `capacity` entries, " + "and this is a very long aside " * 12
            + "which keeps going.")
    t = transcript(("candidate", long), ("candidate", "```python\nassert len(c) <= capacity\n```"))
    out = judge(t)
    assert_verbatim(t, out)


def test_code_submitted_as_a_file_is_read_and_quoted_by_file_name():
    code = LRU_CODE + "\n\n" + LRU_TESTS
    t = transcript(("interviewer", "LRU cache, please."),
                   ("candidate", "The invariant: the cache never holds more than `capacity` entries. "
                                 "Edge cases: capacity 0, a missing key, a duplicate key. The code is in lru.py."),
                   ("interviewer", "Thanks."), ("candidate", "Done."), ("interviewer", "Bye."), ("candidate", "Bye."),
                   code_files={"lru.py": code})
    out = {d.id: d for d in judge(t).dimensions}
    assert out["invariant"].score >= 4, out["invariant"].rationale
    assert any(e.source == "lru.py" for e in out["invariant"].evidence)
    assert out["edge_cases"].score >= 4, out["edge_cases"].rationale
    assert_verbatim(t, judge(t))


# --------------------------------------------------------------------------------------------
# substance over vocabulary: guarantees without the word, cases handled not mentioned, episodes
# --------------------------------------------------------------------------------------------

def test_guarantee_stated_without_the_word_invariant_is_recognised_and_used():
    t = transcript(
        ("interviewer", "Merge two event streams into one."),
        ("candidate", "No matter what order the events arrive in, the output is in timestamp order and nothing "
                      "is dropped. So I buffer per stream and always emit the smaller head."),
        ("candidate", "```python\ndef merge(a, b):\n    out = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n"
                      "        if a[i].ts <= b[j].ts:\n            out.append(a[i]); i += 1\n        else:\n"
                      "            out.append(b[j]); j += 1\n    return out + a[i:] + b[j:]\n\n"
                      "def test_output_in_timestamp_order_and_nothing_dropped():\n"
                      "    out = merge(A, B)\n    assert len(out) == len(A) + len(B)\n```"))
    r = result(t, "invariant")
    assert r.score >= 4, r.rationale
    assert "before any code" in r.rationale and "design follows" in r.rationale
    assert any("No matter what order" in e.quote for e in r.evidence)


def test_guarantee_derived_from_a_task_requirement_is_the_candidates_own():
    t = transcript(
        ("interviewer", "Calls to the embedding API must never exceed 3 in flight. Write the client."),
        ("candidate", "Then every request path takes a slot before calling and gives it back in a finally, "
                      "so in-flight calls stay at most 3 even when a call raises."),
        ("candidate", "```python\nasync def embed(text):\n    async with SLOTS:\n        return await api(text)\n\n"
                      "async def test_at_most_three_calls_in_flight_when_one_raises():\n"
                      "    assert PEAK <= 3\n```"))
    r = result(t, "invariant")
    assert r.score >= 4 and "when the interviewer asked" not in r.rationale, r.rationale


def test_habits_and_vague_promises_are_not_guarantees():
    t = transcript(("candidate", "I always write the tests first. It should work for all inputs and stay consistent."),
                   ("candidate", "```python\ndef f(xs):\n    return sorted(xs)\n\ndef test_f():\n"
                                 "    assert f([2, 1]) == [1, 2]\n```"))
    r = result(t, "invariant")
    assert r.score == 2 and "never states" in r.rationale, r.rationale


def test_edge_case_talk_with_only_interviewer_forced_cases_scores_two():
    t = transcript(
        ("interviewer", "Return the k most frequent words."),
        ("candidate", "Edge cases matter most here, so I'll be careful with edge cases. Edge cases first."),
        ("candidate", "```python\ndef top_words(words, k):\n    counts = Counter(words)\n"
                      "    return [w for w, _ in counts.most_common(k)]\n```\nThat handles the edge cases."),
        ("interviewer", "What if the list is empty?"),
        ("candidate", "Good point, I'll return an empty list.\n```python\n    if not words:\n        return []\n```"),
        ("interviewer", "And what about a negative k?"),
        ("candidate", "I'll raise on negative k, and test both edge cases.\n```python\n    if k < 0:\n"
                      "        raise ValueError(k)\n\ndef test_empty_words():\n    assert top_words([], 2) == []\n\n"
                      "def test_negative_k():\n    with pytest.raises(ValueError):\n        top_words(['a'], -1)\n```"))
    r = result(t, "edge_cases")
    assert r.score == 2, r.rationale
    assert "interviewer raised" in r.rationale and "no concrete boundary case unprompted" in r.rationale


def test_cases_named_and_handled_without_the_word_edge_score_high():
    t = transcript(
        ("interviewer", "Write `chunks(xs, n)` splitting a list into pieces of size n."),
        ("candidate", "Inputs to decide first. An empty list gives no chunks. A negative or zero `n` is a caller "
                      "bug, so it raises ValueError. If the length isn't a multiple of n, the last chunk is shorter "
                      "than n rather than padded. Very long inputs are fine: it's a generator, nothing is copied."),
        ("candidate", "```python\ndef chunks(xs, n):\n    if n <= 0:\n        raise ValueError(n)\n"
                      "    for i in range(0, len(xs), n):\n        yield xs[i:i + n]\n\n"
                      "def test_rejects_bad_sizes():\n    for n in (0, -3):\n        with pytest.raises(ValueError):\n"
                      "            list(chunks([1], n))\n\ndef test_no_input_no_chunks():\n"
                      "    assert list(chunks([], 2)) == []\n\ndef test_last_piece_shorter():\n"
                      "    assert list(chunks([1, 2, 3], 2)) == [[1, 2], [3]]\n```"))
    r = result(t, "edge_cases")
    assert r.score >= 4, r.rationale
    assert "edge" not in " ".join(turn.text for turn in t.turns).lower()


def test_a_case_the_interviewer_had_to_raise_caps_edge_cases_at_three():
    t = transcript(
        ("candidate", "Boundary cases: capacity 0 stores nothing, a missing key returns None, and a duplicate put "
                      "updates in place."),
        ("candidate", "```python\n" + LRU_CODE + "```\n```python\n" + LRU_TESTS + "```"),
        ("interviewer", "What happens with a negative capacity?"),
        ("candidate", "That raises ValueError already."))
    r = result(t, "edge_cases")
    assert r.score >= 4, r.rationale  # already guarded before the question: not a miss
    t2 = transcript(*((turn.role, turn.text) for turn in t.turns[:2]),
                    ("interviewer", "What if two threads call put at the same time?"),
                    ("candidate", "I hadn't thought about concurrency. I'd add a lock."))
    r2 = result(t2, "edge_cases")
    assert r2.score == 3 and "raised first by the interviewer: concurrency" in r2.rationale, r2.rationale


def test_fix_after_a_hint_is_recovery_not_unobserved():
    t = transcript(
        ("candidate", "```python\ndef lookup(table, key):\n    return table[key]\n```"),
        ("interviewer", "I ran your tests:\n```\nE   KeyError: 'zz'\n1 failed, 4 passed\n```\n"
                        "Look at what `lookup` does for a key that isn't there."),
        ("candidate", "Right: I index the dict directly, so a missing key raises instead of returning None. "
                      "Using `.get` fixes it.\n```python\ndef lookup(table, key):\n    return table.get(key)\n```"),
        ("interviewer", "All five pass now."))
    r = result(t, "recovery")
    assert r.status == "scored" and r.score == 3, r.rationale
    assert "after a hint that gave it away" in r.rationale and "named the cause" in r.rationale


def test_blind_retry_that_happens_to_pass_scores_low():
    t = transcript(
        ("candidate", "```python\ndef clamp(x, lo, hi):\n    return max(lo, min(x, hi - 1))\n```\n"
                      "```\nFAILED test_clamp.py::test_upper - assert 9 == 10\n```"),
        ("candidate", "Let me just try dropping the minus one.\n```python\n    return max(lo, min(x, hi))\n```\n"
                      "```\n1 passed\n```\nThe problem was the bound, probably. Tests pass now."))
    r = result(t, "recovery")
    assert r.score == 2, r.rationale
    assert "trial and error" in r.rationale and "did not name the cause" in r.rationale


def test_rerun_until_green_is_not_a_fix():
    t = transcript(
        ("candidate", "```python\ndef test_cache_expires():\n    c = Cache(ttl=0.05)\n    c.put('a', 1)\n"
                      "    time.sleep(0.05)\n    assert c.get('a') is None\n```\n"
                      "```\nFAILED test_cache.py::test_cache_expires - assert 1 is None\n```"),
        ("candidate", "Weird. Let me just rerun it.\n```\n1 passed\n```\nProbably flaky, moving on."))
    r = result(t, "recovery")
    assert r.score == 1, r.rationale
    assert "passed on a rerun with no change" in r.rationale


def test_probe_answered_by_naming_the_mistake_fixing_and_rechecking_scores_four():
    t = transcript(
        ("candidate", "```python\ndef rank(scores):\n    out, last = [], None\n    for s in sorted(scores, reverse=True):\n"
                      "        if s != last:\n            out.append(s)\n        last = s\n    return out\n```"),
        ("interviewer", "Try it with the scores 5, 5 and 3."),
        ("candidate", "It returns [5, 3]. It should be [5, 5, 3]: my loop skips equal scores because I compare "
                      "against the previous score instead of keeping ties. Appending every score fixes it.\n"
                      "```python\n    for s in sorted(scores, reverse=True):\n        out.append(s)\n```\n"
                      "Rerunning the tests: all pass now."))
    r = result(t, "recovery")
    assert r.score == 4, r.rationale
    assert "after a hint or question" in r.rationale


def test_advice_and_confirmed_probes_are_not_mistakes():
    t = transcript(
        ("interviewer", "Think carefully about the boundaries and double-check the math before you code."),
        ("candidate", "```python\ndef mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0\n```"),
        ("interviewer", "Try it with an empty list."),
        ("candidate", "Oh, it returns 0.0 as expected, since the guard catches it."))
    assert result(t, "recovery").status == "not_observed"


def test_dev_set_quotes_verbatim_and_agreement_holds():
    """The baseline's own development rounds (datasets/baseline_dev): every quote verifiable, and the
    judge agrees with the dev labels on the three reworked dimensions (a regression guard, not a claim
    about unseen rounds: these are the rounds the signals were developed on)."""
    from evaluator.calibrate.agreement import human_consensus, point_metrics
    from evaluator.calibrate.labels import load_plain
    from evaluator.calibrate.records import ScaleSpec
    from evaluator.ingest import load_transcript

    dev = REPO / "datasets" / "baseline_dev"
    scale = ScaleSpec(min=1, max=5)
    labels = human_consensus(load_plain(dev / "labels.csv", kind="human", scale=scale))
    pairs: dict[str, tuple[list[float], list[float]]] = {d: ([], []) for d in ("invariant", "edge_cases", "recovery")}
    for name in sorted({n for n, _ in labels}):
        t = load_transcript(dev / name)
        out = judge(t)
        assert_verbatim(t, out)
        for d in out.dimensions:
            status, score = labels.get((name, d.id), ("missing", None))
            if d.id in pairs and status == "scored" and d.status == "scored":
                pairs[d.id][0].append(float(d.score))
                pairs[d.id][1].append(float(score))
    for dim_id, (js, hs) in pairs.items():
        assert point_metrics(js, hs, scale)["qwk"] >= 0.8, dim_id


# --------------------------------------------------------------------------------------------
# sample transcripts (written by other helpers; skipped until present)
# --------------------------------------------------------------------------------------------

def _sample(name: str):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"transcripts/{name} not present")
    from evaluator.ingest import load_transcript
    from evaluator.rubrics import select_rubric

    t = load_transcript(path)
    return t, select_rubric(None, t.exercise, directory=REPO / "rubrics")


def _mean(out: JudgeOutput, dims: list[str] = BUILTIN) -> float:
    scores = [d.score for d in out.dimensions if d.id in dims and d.status == "scored"]
    return sum(scores) / len(scores)


def test_samples_quotes_verbatim():
    paths = sorted(SAMPLES.glob("*.md"))
    if not paths:
        pytest.skip("no sample transcripts yet")
    from evaluator.ingest import load_transcript
    from evaluator.rubrics import select_rubric

    for path in paths:
        t = load_transcript(path)
        r = select_rubric(None, t.exercise, directory=REPO / "rubrics")
        out = judge(t, r)
        assert [d.id for d in out.dimensions] == r.dimension_ids
        assert_verbatim(t, out)


STRONG_SAMPLES = ("lru_ttl_cache.md", "rag_pipeline.md", "retry_rate_limiter.md", "time_kv_store.md")
WEAK_SAMPLES = ("cosine_topk.md", "hollow_keywords.md", "streaming_dedupe.md")


def _present(names: tuple[str, ...]) -> list:
    return [_sample(n) for n in names if (SAMPLES / n).exists()]


def test_strong_samples_outscore_weak_and_hollow():
    strong, weak = _present(STRONG_SAMPLES), _present(WEAK_SAMPLES)
    if not strong or not weak:
        pytest.skip("strong or weak sample transcripts not present yet")
    strong_mean = sum(_mean(judge(t, r)) for t, r in strong) / len(strong)
    weak_mean = sum(_mean(judge(t, r)) for t, r in weak) / len(weak)
    assert strong_mean >= weak_mean + 1.5, (strong_mean, weak_mean)
    assert min(_mean(judge(t, r)) for t, r in strong) > max(_mean(judge(t, r)) for t, r in weak)
    for t, r in strong:
        for d in judge(t, r).dimensions:
            if d.id in BUILTIN and d.status == "scored" and d.id != "recovery":
                assert d.score >= 4, (t.source, d.id, d.rationale)


def test_hollow_sample_gets_no_credit_for_buzzwords():
    t, r = _sample("hollow_keywords.md")
    out = {d.id: d for d in judge(t, r).dimensions}
    assert out["invariant"].score <= 2
    assert out["edge_cases"].score <= 2
    assert out["restraint"].score <= 2


# --------------------------------------------------------------------------------------------
# structure over vocabulary (issue 9, item 6): who raised a case, what the code does about it, what
# followed a failure, what a guarantee says about every path
# --------------------------------------------------------------------------------------------

BRACKETS = ("```python\ndef balanced(s):\n    stack = []\n    for ch in s:\n        if ch in '([{':\n"
            "            stack.append(ch)\n        elif stack.pop() != PAIRS[ch]:\n            return False\n"
            "    return not stack\n```")


def test_edge_talker_who_handles_only_what_the_interviewer_forces_scores_two():
    """'Edge cases' said often; the only guard is written in reply to the interviewer's question, and the
    candidate names the case in other words than the question did."""
    t = transcript(
        ("interviewer", "Check whether a string of brackets is balanced."),
        ("candidate", "I'll handle all the edge cases, edge cases are where these go wrong.\n" + BRACKETS),
        ("interviewer", "What happens with '))'?"),
        ("candidate", "Oh, pop on an empty list throws IndexError, my bad.\n```python\n"
                      "        elif not stack or stack.pop() != PAIRS[ch]:\n            return False\n```\n"
                      "So the edge cases are covered, I always think about edge cases first."))
    r = result(t, "edge_cases")
    assert r.score == 2, r.rationale
    assert "raised first by the interviewer" in r.rationale or "Only takes up" in r.rationale


def test_quiet_candidate_who_rejects_and_tests_cases_scores_high_without_the_word():
    """No 'edge' vocabulary: guards that reject inputs (one per or-ed condition) and tests expecting the
    rejection and the empty answer are the cases."""
    t = transcript(
        ("interviewer", "Write transfer(src, dst, amount) over a dict of balances."),
        ("candidate", "```python\ndef transfer(bal, src, dst, amount):\n"
                      "    if amount <= 0 or src == dst or src not in bal or dst not in bal:\n"
                      "        raise ValueError('invalid transfer')\n"
                      "    if bal[src] < amount:\n        return None\n"
                      "    bal[src] -= amount\n    bal[dst] += amount\n    return (src, dst, amount)\n```\n"
                      "```python\ndef test_rejects_self_transfer():\n    with pytest.raises(ValueError):\n"
                      "        transfer({'a': 5}, 'a', 'a', 1)\n\n"
                      "def test_insufficient_returns_none():\n    assert transfer({'a': 1, 'b': 0}, 'a', 'b', 5) is None\n```"))
    r = result(t, "edge_cases")
    assert r.score >= 4, r.rationale
    assert "raised first by the interviewer" not in r.rationale


def test_case_named_in_the_task_statement_is_spec_not_the_candidates():
    t = transcript(
        ("interviewer", "Fetch the URLs concurrently, at most three in flight."),
        ("candidate", "A semaphore of three.\n```python\nasync def fetch_all(urls, fetch):\n"
                      "    sem = asyncio.Semaphore(3)\n    return await asyncio.gather(*(one(u) for u in urls))\n```"))
    assert "concurrency" not in result(t, "edge_cases").rationale


def test_failing_test_fixed_after_a_hint_is_observed_with_partial_credit():
    """Failure, a muddled first look, the interviewer's hint, then the cause named in the candidate's own
    code terms (no 'because', no 'bug') and a green rerun: recovery after a hint, not 'not observed'."""
    t = transcript(
        ("candidate", "```python\ndef decode(e):\n    out, num = [], ''\n    for ch in e:\n"
                      "        if ch.isdigit():\n            num += ch\n        else:\n"
                      "            out.append(ch * int(num))\n            num = ''\n    return ''.join(out)\n```\n"
                      "```text\nFAILED test_roundtrip[ab12] - AssertionError: assert 'ab' == 'ab12'\n```"),
        ("candidate", "Hmm. Something with the numbers."),
        ("interviewer", "Look at what encode gives for 'ab12' and read it the way decode does."),
        ("candidate", "Oh, decode can't tell count digits from data digits, it reads them as one count. "
                      "I'll put the character first and end each count with ';'.\n```python\n"
                      "def decode(e):\n    return ''.join(ch * int(n) for ch, n in PAIRS.findall(e))\n```\n"
                      "```text\n7 passed\n```"))
    r = result(t, "recovery")
    assert r.status == "scored" and r.score == 3, r.rationale
    assert "named the cause" in r.rationale


def test_change_until_green_without_a_diagnosis_stays_low():
    t = transcript(
        ("candidate", "```python\ndef fetch_all(get_page):\n    items, page = [], get_page(None)\n"
                      "    while page['next']:\n        items += page['items']\n        page = get_page(page['next'])\n"
                      "    return items\n```\n```text\nFAILED test_fetch_all - AssertionError: assert 200 == 250\n```"),
        ("candidate", "I change `while page['next']` to `while page['next'] is not None`.\n"
                      "```text\nFAILED test_fetch_all - AssertionError: assert 200 == 250\n```"),
        ("candidate", "I try add the items one more time after the loop.\n```python\n    items += page['items']\n"
                      "    return items\n```\n```text\n1 passed\n```\nOk now it pass."),
        ("interviewer", "Why did it fail before?"),
        ("candidate", "I'm not sure, but now it is green so it works."))
    r = result(t, "recovery")
    assert r.status == "scored" and r.score <= 2, r.rationale


def test_wrong_complexity_claim_corrected_is_a_recovery_episode():
    claim = ("```python\ndef first_missing(a):\n    seen = set(a)\n    i = 1\n    while i in seen:\n"
             "        i += 1\n    return i\n```")
    own = transcript(
        ("candidate", "A set and a counter: O(n) time and O(1) space.\n" + claim),
        ("candidate", "Wait, that space claim is wrong: the set holds up to n values, so it's O(n) extra space, "
                      "not O(1). I conflated the counter with the set."))
    r = result(own, "recovery")
    assert r.status == "scored" and r.score == 4, r.rationale
    asked = transcript(
        ("candidate", "Sorting the samples is O(n), cheap enough.\n```python\ndef p95(xs):\n"
                      "    return sorted(xs)[int(0.95 * len(xs))]\n```"),
        ("interviewer", "Is sorting linear?"),
        ("candidate", "Ah, no: comparison sorting is O(n log n), I said that wrong. For a million samples that is "
                      "about twenty million comparisons a call."))
    r2 = result(asked, "recovery")
    assert r2.status == "scored" and r2.score == 3, r2.rationale


def test_interviewer_remark_that_leads_to_a_rewrite_is_a_mistake_episode():
    t = transcript(
        ("candidate", "```python\ndef render(template, values):\n"
                      "    return re.sub(r'{(\\w+)}', lambda m: str(values.get(m.group(1), m.group(0))), template)\n```"),
        ("interviewer", "If `values` has no `doc`, the prompt goes to the model with a literal `{doc}` in it."),
        ("candidate", "The model will figure it out."),
        ("interviewer", "Probably better to fail loudly."),
        ("candidate", "Okay.\n```python\ndef render(template, values):\n"
                      "    return re.sub(r'{(\\w+)}', lambda m: str(values[m.group(1)]), template)\n```"))
    r = result(t, "recovery")
    assert r.status == "scored" and r.score == 2, r.rationale


def test_guarantee_about_every_exit_path_counts_without_the_word():
    t = transcript(
        ("interviewer", "Take a lock file, run fn, release it."),
        ("candidate", "What the caller can rely on, on every way out of this function: the lock file is gone "
                      "when we return, whether fn returned or raised, and we either return fn's result, re-raise "
                      "its exception or raise LockTimeout. The `finally` is what keeps that promise."),
        ("candidate", "```python\ndef with_lock(path, fn):\n    fd = acquire(path)\n    try:\n        return fn()\n"
                      "    finally:\n        os.close(fd)\n        os.remove(path)\n```\n"
                      "```python\ndef test_lock_file_gone_when_fn_raises(tmp_path):\n    p = tmp_path / 'l'\n"
                      "    with pytest.raises(KeyError):\n        with_lock(p, lambda: {}['x'])\n"
                      "    assert not p.exists()\n```"))
    r = result(t, "invariant")
    assert r.score >= 4, r.rationale


def test_answer_to_what_the_structure_holds_is_a_prompted_invariant():
    t = transcript(
        ("candidate", BRACKETS),
        ("interviewer", "What does the stack hold at any point in the loop?"),
        ("candidate", "Exactly the opening brackets not matched yet, in the order they were opened."))
    r = result(t, "invariant")
    assert r.score == 3 and "only when the interviewer asked" in r.rationale, r.rationale
    vague = transcript(
        ("candidate", BRACKETS),
        ("interviewer", "What does the stack hold at any point in the loop?"),
        ("candidate", "It's a stack... the brackets, I think."))
    assert result(vague, "invariant").score == 1


def test_second_dev_set_quotes_verbatim():
    """datasets/baseline_dev2: every quote the baseline offers on rounds in other formats is verbatim."""
    from evaluator.ingest import load_transcript

    for path in sorted((REPO / "datasets" / "baseline_dev2").glob("f*.md")):
        t = load_transcript(path)
        assert_verbatim(t, judge(t))
