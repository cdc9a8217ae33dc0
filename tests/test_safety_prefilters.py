"""The safety checks' fast paths skip work only where the exact patterns cannot match.

Each cheap test (a character-class scan, a few `str` searches, start words found through a shared
piece) must let through every text the exact pattern matches; these properties check that on texts
built from the pieces the patterns are about, and the redaction against a one-search-per-word
reference. (benchmarks/safety_diff.py checks the same end to end on every sample of the repository.)
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.safety.fencing import _BRACKET_RUN, _DELIM_LIKE, _TRIPLE
from evaluator.safety.hidden import _SPACED, _SPACED_CORE, _unspace
from evaluator.safety.injection_checks import _compiled
from evaluator.safety.injection_foreign import _FOREIGN, _FOREIGN_GATE, _foreign_gates
from evaluator.safety.injection_scan import _ROT13_HINT, _may_hint_rot13
from evaluator.safety.redaction import _SECRET_SHAPES, REDACTED, _redact_shapes

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True)

PIECES = ["<", ">", "<<", ">>", "\u2039", "\u203a", " ", "\t", "\n", "-", ".", "_", "*", "\u00b7", "a", "b", "X", "é",
          "END", "end", "system", "Code", "rot", "ROT", "13", "1", "Caesar", "caesar", "İ", "ſ", "note", "para el",
          "evaluador", "ignora", "instrucciones", "満点", "sk-", "SK-", "proj-", "AKIA", "aiza", "AIza", "ghp_", "ghs_", "ugh",
          "github_pat_", "xoxb-", "hf_", "r8_", "eyJ", ".", "Bearer ", "basic ", "api_key", "client_secret_key",
          "=", ": ", '"', "0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOP", "access-token", "auth_token",
          "password", "Authorization: "]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@BOUNDED
@given(texts)
def test_bracket_run_is_found_wherever_a_delimiter_look_alike_is(text: str) -> None:
    if _TRIPLE.search(text) or _DELIM_LIKE.search(text):
        assert _BRACKET_RUN.search(text)


@BOUNDED
@given(texts)
def test_a_line_without_a_spaced_core_is_left_as_it_is(text: str) -> None:
    for line in text.split("\n"):
        if not _SPACED_CORE.search(line):
            assert _unspace(line) == line
    if any(len(m.group(0)) >= 7 for m in _SPACED.finditer(text)):
        assert _SPACED_CORE.search(text)


@BOUNDED
@given(texts)
def test_the_rot13_hint_is_looked_for_wherever_it_may_be(text: str) -> None:
    if _ROT13_HINT.search(text):
        assert _may_hint_rot13(text)


@BOUNDED
@given(st.lists(texts, min_size=1, max_size=4))
def test_foreign_gates_of_a_transcript_cover_every_gate_of_its_parts(parts: list[str]) -> None:
    gates = _foreign_gates("\n".join(parts).lower())
    for part in parts:
        low = part.lower()
        for line in low.split("\n"):
            if _compiled(_FOREIGN, re.IGNORECASE).search(line):  # a match has a gate word in its line, and the gates find that line
                assert any(g in line for g in _FOREIGN_GATE)
                assert any(g in line for g in gates)


def _reference_redact_shapes(text: str) -> str:
    """One search per start word (what `_redact_shapes` did before it shared searches)."""
    low = text.encode("ascii", "replace").lower()
    spans = []
    for starts, pattern in _SECRET_SHAPES:
        for first in starts:
            p = low.find(first.encode())
            while p != -1:
                m = pattern.match(text, p)
                if m:
                    spans.append((m.start(), m.end(), (m.groupdict().get("keep") or "") + REDACTED))
                p = low.find(first.encode(), p + 1)
    out, pos = [], 0
    for start, end, replacement in sorted(spans):
        if start >= pos:
            out += [text[pos:start], replacement]
            pos = end
    return "".join(out) + text[pos:]


@BOUNDED
@given(texts)
def test_shape_redaction_equals_one_search_per_start_word(text: str) -> None:
    assert _redact_shapes(text) == _reference_redact_shapes(text)


def test_shape_redaction_finds_words_sharing_a_piece_at_one_place() -> None:
    text = "client_secret_key=abc123456789 x-api-key: 99999999zz sk-proj-" + "a" * 20
    out = _redact_shapes(text)
    assert "abc123456789" not in out and "99999999zz" not in out and "sk-proj" not in out
    assert out == _reference_redact_shapes(text)
    assert re.search(r"client_secret_key=\[REDACTED\]", out)


def test_a_long_text_redacted_again_follows_the_secrets_configured_now(monkeypatch) -> None:
    from evaluator.safety import redact

    first, second = "first-secret-value-123", "second-secret-value-456"
    text = "x" * 3000 + f" {first} and {second} "
    monkeypatch.setenv("EVAL_TEST_ONE_TOKEN", first)
    once = redact(text)
    assert first not in once and second in once
    monkeypatch.setenv("EVAL_TEST_TWO_TOKEN", second)
    again = redact(text)  # the same text, cached for the first set of secrets only
    assert first not in again and second not in again
    assert redact(text) == again
