"""Ingest: every transcript format we accept, and every way a file can be unusable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluator.errors import BadInput
from evaluator.ingest import load_transcript

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted((REPO / "transcripts").glob("*.md"))


def write(tmp_path: Path, text: str | bytes, name: str = "round.md") -> Path:
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8", newline="")
    else:
        p.write_bytes(text)
    return p


def load(tmp_path: Path, text: str | bytes, name: str = "round.md", **kw):
    return load_transcript(write(tmp_path, text, name), **kw)


def spoken(t) -> list[tuple[str, str]]:
    """(role, text) of the speaker turns, preamble excluded."""
    return [(x.role, x.text) for x in t.turns if x.id != "t0"]


# --------------------------------------------------------------------------------------------
# front matter
# --------------------------------------------------------------------------------------------

FRONT = """---
candidate: Dana Smith
date: 2025-03-14
exercise: lru_ttl_cache
round: 2
interviewer: Priya Nair
language: python
tags: [cache, python]
---

Interviewer: Hi Dana. Build an LRU cache.

Candidate: Sure. First the invariant.
"""


def test_front_matter_fields(tmp_path):
    t = load(tmp_path, FRONT)
    assert t.candidate == "Dana Smith"
    assert t.exercise == "lru_ttl_cache"
    assert t.metadata["round"] == 2
    # a YAML date becomes an ISO string (JSON/DuckDB friendly), not a datetime.date
    assert t.metadata["date"] == "2025-03-14"
    assert isinstance(t.metadata["date"], str)
    assert t.session_date == "2025-03-14"
    # extra keys are kept
    assert t.metadata["language"] == "python"
    assert t.metadata["tags"] == ["cache", "python"]
    assert t.metadata["interviewer"] == "Priya Nair"
    assert t.warnings == []
    assert spoken(t) == [("interviewer", "Hi Dana. Build an LRU cache."),
                         ("candidate", "Sure. First the invariant.")]
    # the front matter is not a turn
    assert all("exercise:" not in x.text for x in t.turns)


def test_front_matter_datetime_becomes_iso_string(tmp_path):
    t = load(tmp_path, "---\ndate: 2025-03-14 10:30:00\n---\nInterviewer: hi\n\nCandidate: hello\n")
    assert isinstance(t.metadata["date"], str)
    assert t.metadata["date"].startswith("2025-03-14")


@pytest.mark.parametrize("raw, expected", [("2026-02-30", None), ("last week", None), ("20260301", "2026-03-01"),
                                           ('"2026-03-01T10:00:00"', "2026-03-01")])
def test_front_matter_date_is_checked_not_a_crash(tmp_path, raw, expected):
    """YAML's own date constructor raised ValueError on 2026-02-30 (an internal error, exit 70):
    dates are read as text and checked; a wrong one is dropped with a warning, the rest is kept."""
    t = load(tmp_path, f"---\ncandidate: Dana\ndate: {raw}\n---\nInterviewer: hi\n\nCandidate: hello\n")
    assert t.candidate == "Dana" and t.session_date == expected
    assert any("not a date" in w for w in t.warnings) == (expected is None)


def test_broken_front_matter_warns_and_still_parses(tmp_path):
    text = "---\ncandidate: Dana\ndate: 2025-03-14\ntags: [unclosed\n---\n\nInterviewer: hi\n\nCandidate: hello\n"
    t = load(tmp_path, text)
    assert t.metadata == {}
    assert any("front matter" in w for w in t.warnings)
    assert t.speakers_recognised
    roles = [(x.role, x.text) for x in t.turns if x.role in ("interviewer", "candidate")]
    # The body's turns are parsed; the broken YAML block must not become a candidate turn
    # (its 'candidate: Dana' line would otherwise put metadata into the candidate's mouth).
    assert roles == [("interviewer", "hi"), ("candidate", "hello")]


def test_unclosed_front_matter_warns(tmp_path):
    t = load(tmp_path, "---\ncandidate: Dana\n\nInterviewer: hi\n\nCandidate: hello\n")
    assert any("never closed" in w for w in t.warnings)
    assert ("interviewer", "hi") in spoken(t)


# --------------------------------------------------------------------------------------------
# speaker styles
# --------------------------------------------------------------------------------------------

STYLES = {
    "bold_inside": "**Interviewer:** Q one.\n\n**Candidate:** A one.\n\n**Interviewer:** Q two.\n\n**Candidate:** A two.\n",
    "bold_outside": "**Interviewer**: Q one.\n\n**Candidate**: A one.\n\n**Interviewer**: Q two.\n\n**Candidate**: A two.\n",
    "plain": "Interviewer: Q one.\n\nCandidate: A one.\n\nInterviewer: Q two.\n\nCandidate: A two.\n",
    "q_a": "Q: Q one.\n\nA: A one.\n\nQ: Q two.\n\nA: A two.\n",
    "bracket_ts": "[00:00:05] Interviewer: Q one.\n\n[00:03:12] Candidate: A one.\n\n[00:04:00] Interviewer: Q two.\n\n[00:05:10] Candidate: A two.\n",
    "paren_ts": "(00:00:05) Interviewer: Q one.\n\n(00:03:12) Candidate: A one.\n\n(00:04:00) Interviewer: Q two.\n\n(00:05:10) Candidate: A two.\n",
    "name_role": "Priya (interviewer): Q one.\n\nSam (candidate): A one.\n\nPriya (interviewer): Q two.\n\nSam (candidate): A two.\n",
    "no_blank_lines": "Interviewer: Q one.\nCandidate: A one.\nInterviewer: Q two.\nCandidate: A two.\n",
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_speaker_styles(tmp_path, style):
    t = load(tmp_path, STYLES[style])
    assert t.speakers_recognised
    assert t.warnings == []
    assert [x.id for x in t.turns] == ["t1", "t2", "t3", "t4"]
    assert spoken(t) == [("interviewer", "Q one."), ("candidate", "A one."),
                         ("interviewer", "Q two."), ("candidate", "A two.")]


def test_timestamps_kept(tmp_path):
    t = load(tmp_path, STYLES["bracket_ts"])
    assert [x.timestamp for x in t.turns] == ["00:00:05", "00:03:12", "00:04:00", "00:05:10"]
    t = load(tmp_path, STYLES["paren_ts"], name="p.md")
    assert t.turns[1].timestamp == "00:03:12"


def test_q_a_speakers_named_by_role(tmp_path):
    t = load(tmp_path, STYLES["q_a"])
    assert [x.speaker for x in t.turns[:2]] == ["Interviewer", "Candidate"]


def test_name_with_role_keeps_name(tmp_path):
    t = load(tmp_path, STYLES["name_role"])
    assert [x.speaker for x in t.turns[:2]] == ["Priya", "Sam"]


def test_names_resolved_through_front_matter(tmp_path):
    text = (
        "---\ninterviewer: Priya\ncandidate: Ana Ruiz\n---\n"
        "Priya: Tell me about chunking.\n\n"
        "Ana Ruiz: I'd split on headings first.\n\n"
        "Priya: Why?\n\n"
        "Ana: Because sections are coherent.\n"
    )
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert t.turns[1].speaker == "Ana Ruiz"


def test_front_matter_name_used_only_once_is_still_a_speaker(tmp_path):
    # a name from the front matter is trusted even when it labels a single turn
    text = "---\ninterviewer: Priya\ncandidate: Sam\n---\nPriya: Go ahead.\n\nSam: Done.\n"
    t = load(tmp_path, text)
    assert spoken(t) == [("interviewer", "Go ahead."), ("candidate", "Done.")]


def test_unknown_name_takes_the_other_role(tmp_path):
    t = load(tmp_path, "Interviewer: Q one.\n\nBob: A one.\n\nInterviewer: Q two.\n\nBob: A two.\n")
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert t.warnings == []
    t = load(tmp_path, "Alice: Q one.\n\nCandidate: A one.\n\nAlice: Q two.\n\nCandidate: A two.\n", name="b.md")
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]


def test_two_unknown_names_guessed_with_warning(tmp_path):
    t = load(tmp_path, "Alice: Q one.\n\nBob: A one.\n\nAlice: Q two.\n\nBob: A two.\n")
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert any("guessed" in w for w in t.warnings)


# --------------------------------------------------------------------------------------------
# real-world exports: non-ASCII names, Otter/Zoom, Google Meet, lists, chat quotes
# --------------------------------------------------------------------------------------------

def test_non_ascii_names_from_front_matter(tmp_path):
    text = (
        "---\ncandidate: José Núñez\ninterviewer: Zoë Müller\n---\n"
        "Zoë Müller: Hola José, build an LRU cache.\n\n"
        "José Núñez (candidate): Claro. A dict and a linked list.\n\n"
        "Zoë Müller: Why both?\n\n"
        "José: O(1) lookup and O(1) reordering.\n"
    )
    t = load(tmp_path, text)
    assert t.speakers_recognised and t.warnings == []
    assert [(x.role, x.speaker) for x in t.turns] == [
        ("interviewer", "Zoë Müller"), ("candidate", "José Núñez"),
        ("interviewer", "Zoë Müller"), ("candidate", "José")]
    assert t.turns[1].text == "Claro. A dict and a linked list."


def test_non_ascii_name_recurring_without_front_matter(tmp_path):
    text = ("Priya (interviewer): Hi Seán.\n\nSeán O'Brien: Hi.\n\n"
            "Priya (interviewer): Go on.\n\nSeán O'Brien: Done.\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [(x.role, x.speaker) for x in t.turns] == [
        ("interviewer", "Priya"), ("candidate", "Seán O'Brien"),
        ("interviewer", "Priya"), ("candidate", "Seán O'Brien")]


def test_names_match_front_matter_across_unicode_forms(tmp_path):
    # decomposed "Zoë" (e + U+0308) in the body, curly apostrophe, unaccented front matter
    text = ("---\ncandidate: Zoë\ninterviewer: Sean O'Brien\n---\n"
            "Seán O’Brien: Hi.\n\nZoe\u0308: Hello.\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [x.role for x in t.turns] == ["interviewer", "candidate"]
    assert t.turns[0].speaker == "Seán O’Brien"


def test_cjk_role_labels(tmp_path):
    text = "面试官：请实现一个 LRU 缓存。\n\n候选人：好的，用字典加链表。\n\n面试官: 为什么？\n\n候选人: 因为都是 O(1)。\n"
    t = load(tmp_path, text)
    assert t.speakers_recognised and t.warnings == []
    assert spoken(t) == [("interviewer", "请实现一个 LRU 缓存。"), ("candidate", "好的，用字典加链表。"),
                         ("interviewer", "为什么？"), ("candidate", "因为都是 O(1)。")]


OTTER = """Interview with Dana
Fri, Mar 14, 2025

Speaker 1  00:00:03
Hi Dana. Build an LRU cache.
Take your time.

Speaker 2  00:00:10
Sure, here it is:

```python
class LRU:
    pass
Speaker 1  00:00:11
```

Speaker 1  00:01:00
Good.

Speaker 2  00:01:05
Thanks.
"""


def test_otter_label_lines_with_text_below(tmp_path):
    t = load(tmp_path, OTTER)
    assert t.speakers_recognised
    assert [x.id for x in t.turns] == ["t0", "t1", "t2", "t3", "t4"]
    assert spoken(t)[0] == ("interviewer", "Hi Dana. Build an LRU cache.\nTake your time.")
    assert [x.role for x in t.turns[1:]] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert [x.speaker for x in t.turns[1:3]] == ["Speaker 1", "Speaker 2"]
    assert [x.timestamp for x in t.turns[1:]] == ["00:00:03", "00:00:10", "00:01:00", "00:01:05"]
    # the label line inside the code block is code
    assert [b.language for b in t.turns[2].code_blocks] == ["python"]
    assert "Speaker 1  00:00:11" in t.turns[2].code_blocks[0].code
    # unknown Speaker N roles: first speaker taken as interviewer, with the usual warning
    assert any("guessed" in w and "Speaker 1" in w for w in t.warnings)
    lines = OTTER.split("\n")
    assert [lines[x.line - 1] for x in t.turns[1:3]] == ["Speaker 1  00:00:03", "Speaker 2  00:00:10"]


def test_otter_roles_from_front_matter_and_role_names(tmp_path):
    text = ("---\ncandidate: Dana Smith\n---\n"
            "Interviewer  0:03\nHi Dana.\n\nDana Smith 00:12:40\nHello.\nSecond line.\n\nInterviewer  0:15\nOk.\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert spoken(t) == [("interviewer", "Hi Dana."), ("candidate", "Hello.\nSecond line."), ("interviewer", "Ok.")]
    assert [x.timestamp for x in t.turns] == ["0:03", "00:12:40", "0:15"]


def test_otter_speaker_mapped_in_front_matter(tmp_path):
    text = ("---\ninterviewer: Speaker 1\ncandidate: Speaker 2\n---\n"
            "Speaker 2  0:01\nCan I ask a question first?\n\nSpeaker 1  0:05\nSure.\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [x.role for x in t.turns] == ["candidate", "interviewer"]


def test_zoom_and_teams_label_lines(tmp_path):
    zoom = ("---\ncandidate: Dana Smith\n---\n[Priya Nair] 10:02:33\nHi.\n\n[Dana Smith] 10:02:40\nHello.\n\n"
            "[Priya Nair] 10:03:00\nGo on.\n")
    t = load(tmp_path, zoom)
    assert spoken(t) == [("interviewer", "Hi."), ("candidate", "Hello."), ("interviewer", "Go on.")]
    assert t.turns[0].speaker == "Priya Nair"
    teams = "[10:02 AM] Interviewer\nHi.\n[10:03 AM] Candidate\nHello.\n"
    t = load(tmp_path, teams, name="teams.md")
    assert spoken(t) == [("interviewer", "Hi."), ("candidate", "Hello.")]
    assert t.turns[1].timestamp == "10:03 AM"


WHATSAPP_ANDROID = """12/03/2026, 14:00 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.
12/03/2026, 14:01 - Priya Nair created group "Mock interview"
12/03/2026, 14:02 - Priya Nair: Hi Dana, the task is an LRU cache with a TTL.
How would you start?
12/03/2026, 14:03 - Dana Smith: A dict from key to node plus a doubly linked list for recency.

The invariant: both hold the same keys, size never exceeds capacity.
12/03/2026, 14:04 - Dana Smith: <Media omitted>
12/03/2026, 14:04 - Priya Nair added Sam
12/03/2026, 14:05 - Priya Nair: What about expiry?
12/03/2026, 14:06 - Dana Smith: Lazily on get, against an injectable clock.
"""

WHATSAPP_IOS = ("\u200e[3/12/26, 2:00:01\u202fPM] Mock interview: \u200eMessages and calls are end-to-end encrypted. "
                "No one outside of this chat, not even WhatsApp, can read or listen to them.\n"
                "[3/12/26, 2:02:11\u202fPM] Priya Nair: Hi Dana, the task is an LRU cache with a TTL.\n"
                "[3/12/26, 2:03:40\u202fPM] Dana Smith: A dict from key to node plus a linked list.\n"
                "Both hold the same keys.\n"
                "\u200e[3/12/26, 2:04:00\u202fPM] Dana Smith: \u200eimage omitted\n"
                "[3/12/26, 2:05:10\u202fPM] Priya Nair: What about expiry?\n"
                "[3/12/26, 2:06:00\u202fPM] Dana Smith: Lazily on get.\n")


def test_whatsapp_android_export(tmp_path):
    """`date, time - Name: text`: one turn per message with its further lines; the app's notices
    (encryption, group changes) are nobody's turn; a left-out attachment is said."""
    t = load(tmp_path, WHATSAPP_ANDROID, name="WhatsApp Chat with Dana Smith.txt")
    assert t.speakers_recognised
    assert [x.id for x in t.turns] == ["t1", "t2", "t3", "t4", "t5"]  # no preamble: the notices are dropped
    assert spoken(t) == [
        ("interviewer", "Hi Dana, the task is an LRU cache with a TTL.\nHow would you start?"),
        ("candidate", "A dict from key to node plus a doubly linked list for recency.\n\n"
                      "The invariant: both hold the same keys, size never exceeds capacity."),
        ("candidate", "<Media omitted>"),
        ("interviewer", "What about expiry?"),  # "Priya Nair added Sam" is not part of any turn
        ("candidate", "Lazily on get, against an injectable clock.")]
    assert [x.speaker for x in t.turns[:2]] == ["Priya Nair", "Dana Smith"]
    assert t.turns[0].timestamp == "12/03/2026, 14:02"
    lines = WHATSAPP_ANDROID.split("\n")
    assert [lines[x.line - 1][:18] for x in t.turns] == ["12/03/2026, 14:02 "] * 1 + [
        "12/03/2026, 14:03 ", "12/03/2026, 14:04 ", "12/03/2026, 14:05 ", "12/03/2026, 14:06 "]
    assert any("1 attachment(s)" in w for w in t.warnings)
    assert any("guessed" in w for w in t.warnings)  # no front matter: first speaker taken as interviewer


def test_whatsapp_ios_export_12_hour_with_seconds(tmp_path):
    t = load(tmp_path, WHATSAPP_IOS, name="_chat.txt")
    assert spoken(t) == [("interviewer", "Hi Dana, the task is an LRU cache with a TTL."),
                         ("candidate", "A dict from key to node plus a linked list.\nBoth hold the same keys."),
                         ("candidate", "image omitted"), ("interviewer", "What about expiry?"),
                         ("candidate", "Lazily on get.")]
    assert "Mock interview" not in {x.speaker for x in t.turns}  # the chat's own notice is no speaker
    assert t.turns[0].timestamp == "3/12/26, 2:02:11\u202fPM"
    assert any("1 attachment(s)" in w for w in t.warnings)


@pytest.mark.parametrize("stamp", ["12/03/2026, 14:02 - ", "03/12/2026, 2:02 PM - ", "3/12/26, 2:02 p.m. - ",
                                   "12.03.26, 14:02 - ", "2026-03-12 14:02:05 - ", "[12/03/2026, 14:02:11] ",
                                   "[03/12/2026, 2:02:11 PM] ", "[12/03/2026 14:02] "])
def test_whatsapp_stamp_variants_with_roles_from_front_matter(tmp_path, stamp):
    text = (f"---\ncandidate: Dana Smith\n---\n{stamp}Priya Nair: Build an LRU cache.\n"
            f"{stamp}Dana Smith: First the invariant.\nThen the code.\n{stamp}+44 7700 900123: Sorry, wrong chat\n"
            f"{stamp}Priya Nair: Go on.\n{stamp}Dana Smith: Done.\n{stamp}+44 7700 900123: bye\n")
    t = load(tmp_path, text)
    assert [(x.speaker, x.role) for x in t.turns[:2]] == [("Priya Nair", "interviewer"), ("Dana Smith", "candidate")]
    assert t.turns[1].text == "First the invariant.\nThen the code."
    assert "+44 7700 900123" in {x.speaker for x in t.turns}  # an unsaved contact is a sender too
    assert t.turns[0].timestamp == stamp.strip(" -[]")


def test_a_stamped_log_line_in_an_ordinary_transcript_stays_in_its_turn(tmp_path):
    """Only a chat export's stamped lines without a sender are the app's notices: in a Markdown
    transcript the same line is what the speaker said."""
    text = ("Interviewer: What did the log say?\n\nCandidate: This:\n12/03/2026, 14:02 - cache rebuilt in 3 s\n\n"
            "Interviewer: Fine.\n")
    t = load(tmp_path, text)
    assert spoken(t)[1] == ("candidate", "This:\n12/03/2026, 14:02 - cache rebuilt in 3 s")


def test_bare_time_line_in_prose_is_not_a_speaker(tmp_path):
    text = ("Interviewer: When do we stop?\n\nCandidate: We said:\nMeeting at 10:30\n\nInterviewer: And?\n\n"
            "Candidate: Again\nMeeting at 10:30\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert t.turns[1].text == "We said:\nMeeting at 10:30"


@pytest.mark.parametrize("label", [
    "{role} (10:02 AM): {text}", "{role} (3:15 p.m.): {text}", "{role} [00:01:02]: {text}",
    "{role} (00:01:02): {text}", "[10:02 AM] {role}: {text}",
])
def test_clock_time_after_the_name_is_a_timestamp(tmp_path, label):
    text = "\n\n".join(label.format(role=r, text=x) for r, x in
                       [("Interviewer", "Q one."), ("Candidate", "A one."), ("Interviewer", "Q two.")]) + "\n"
    t = load(tmp_path, text)
    assert t.warnings == []
    assert spoken(t) == [("interviewer", "Q one."), ("candidate", "A one."), ("interviewer", "Q two.")]
    assert all(x.timestamp for x in t.turns)
    assert t.turns[0].speaker == "Interviewer"


def test_google_meet_names_with_times_resolve_through_front_matter(tmp_path):
    text = ("---\ninterviewer: Priya Nair\ncandidate: Dana Smith\n---\n"
            "Priya Nair (10:02 AM): Hi Dana.\n\nDana Smith (10:03 AM): Hi.\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [(x.role, x.speaker, x.timestamp) for x in t.turns] == [
        ("interviewer", "Priya Nair", "10:02 AM"), ("candidate", "Dana Smith", "10:03 AM")]


LISTED = """- Interviewer: Q one.
* Candidate: A one.
Interviewer:Q two.
Candidate：A two, see https://example.com/docs and http://localhost:8080/x
https://example.com/other
10:30: standup
Note:keep the dict and list in sync.
Complexity: O(1)
C:\\Users\\dana\\cache.py
Interviewer：Q three.
"""


def test_list_markers_and_colon_variants(tmp_path):
    t = load(tmp_path, LISTED)
    assert t.speakers_recognised and t.warnings == []
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate", "interviewer"]
    assert spoken(t)[:3] == [("interviewer", "Q one."), ("candidate", "A one."), ("interviewer", "Q two.")]
    answer = t.turns[3].text
    assert answer.startswith("A two, see https://example.com/docs")
    for prose in ("https://example.com/other", "10:30: standup", "Note:keep the dict", "Complexity: O(1)",
                  "C:\\Users\\dana"):
        assert prose in answer
    assert t.turns[4].text == "Q three."


def test_recurring_list_items_inside_a_turn_stay_prose(tmp_path):
    text = ("Interviewer: Trade-offs?\n\nCandidate: Two options.\n- Latency: low\n- Memory: bounded\n\n"
            "Option two:\n- Latency: higher\n- Memory: unbounded\n\nInterviewer: OK.\n\nCandidate: Done.\n")
    t = load(tmp_path, text)
    assert t.warnings == []
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert "- Memory: unbounded" in t.turns[1].text


def test_chat_written_as_a_list_of_names(tmp_path):
    text = "- Alice: Q one.\n- Bob: A one.\n- Alice: Q two.\n- Bob: A two.\n"
    t = load(tmp_path, text)
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    assert any("guessed" in w for w in t.warnings)


QUOTED = """---
candidate: Sam
---
# Chat export

> **interviewer**: Write an LRU cache.
>
> **candidate**: Here:
>
> ```python
> Interviewer: not a turn, this is code
> class LRU:
>     pass
> ```
>
> > a nested quote stays a quote
>
> **interviewer**: Good.
"""


def test_quoted_chat_export(tmp_path):
    t = load(tmp_path, QUOTED)
    assert t.speakers_recognised and t.warnings == []
    assert t.title == "Chat export"
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer"]
    answer = t.turns[1]
    assert [b.language for b in answer.code_blocks] == ["python"]
    assert answer.code_blocks[0].code == "Interviewer: not a turn, this is code\nclass LRU:\n    pass"
    assert "> a nested quote stays a quote" in answer.text
    assert not any(line.startswith(">") and "```" in line for line in answer.text.split("\n"))
    # line numbers still point at the labels in the file
    lines = QUOTED.split("\n")
    assert [lines[x.line - 1] for x in t.turns] == [
        "> **interviewer**: Write an LRU cache.", "> **candidate**: Here:", "> **interviewer**: Good."]


def test_an_occasional_quote_is_left_alone(tmp_path):
    text = "Interviewer: Read this:\n\n> the spec says O(1)\n\nCandidate: OK.\n\nInterviewer: Go.\n"
    t = load(tmp_path, text)
    assert "> the spec says O(1)" in t.turns[0].text


def test_labels_without_a_candidate_are_judged_as_one_block(tmp_path):
    # only the interviewer is recognised: Seán speaks once and is not in the front matter
    text = "---\ninterviewer: Priya\n---\nPriya: Build a cache.\n\nSeán: Sure, a dict.\n\nPriya: Why?\n"
    t = load(tmp_path, text)
    assert t.speakers_recognised is False
    assert [(x.id, x.role) for x in t.turns] == [("t1", "unknown")]
    assert "Sure, a dict." in t.turns[0].text and "Build a cache." in t.turns[0].text
    assert t.turns[0].line == 4
    assert t.warnings == [
        ("speaker labels found (Priya, Seán) but none recognised as the candidate: judged as one block; "
         "add 'candidate: NAME' front matter or a '(candidate)' label")]


def test_every_label_an_interviewer_is_judged_as_one_block(tmp_path):
    t = load(tmp_path, "Interviewer: Q one.\n\nQuestion: Q two.\n\nInterviewer: Q three.\n")
    assert t.speakers_recognised is False
    assert len(t.turns) == 1 and t.turns[0].role == "unknown"
    assert len(t.warnings) == 1
    assert "none recognised as the candidate" in t.warnings[0]
    assert "Interviewer" in t.warnings[0] and "Question" in t.warnings[0]


# --------------------------------------------------------------------------------------------
# turn bodies
# --------------------------------------------------------------------------------------------

BODY = """Interviewer: Write an LRU cache with O(1) get and put.

Candidate: First paragraph: the invariant.

Second paragraph of the same turn.

```python
class LRU:
    def get(self, key):
        pass
Note: this looks like a label but is inside a code block
Interviewer: so is this
```

Note: the dict and the list always hold the same keys.
Complexity: O(1) for both operations.
Time: O(1)
Example: get(1) returns 1

Interviewer: Good.

Candidate: Thanks.
"""


def test_multi_paragraph_turn_with_code_block(tmp_path):
    t = load(tmp_path, BODY)
    assert [x.id for x in t.turns] == ["t1", "t2", "t3", "t4"]
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer", "candidate"]
    body = t.turns[1].text
    assert body.startswith("First paragraph: the invariant.")
    assert "Second paragraph of the same turn." in body
    assert "Note: this looks like a label but is inside a code block" in body
    assert "Interviewer: so is this" in body
    # prose lines that look like labels stay in the turn
    assert "Note: the dict and the list always hold the same keys." in body
    assert "Complexity: O(1) for both operations." in body
    assert "Example: get(1) returns 1" in body
    assert [b.language for b in t.turns[1].code_blocks] == ["python"]
    code = t.turns[1].code_blocks[0].code
    assert "class LRU:" in code and "Note: this looks like a label" in code
    assert t.turns[2].text == "Good."


def test_tilde_fence_also_protects_labels(tmp_path):
    text = "Interviewer: go\n\nCandidate: here\n\n~~~\nCandidate: not a turn\nNote: nor this\n~~~\n\nInterviewer: ok\n"
    t = load(tmp_path, text)
    assert len(t.turns) == 3
    assert "Candidate: not a turn" in t.turns[1].text


def test_longer_fence_contains_a_shorter_one(tmp_path):
    """CommonMark: a ```` fence is closed only by a fence at least as long; the inner ``` is code."""
    text = ("Interviewer: show me the README\n\nCandidate: here\n\n````markdown\n```python\nx = 1\n```\n"
            "Candidate: still inside the outer fence\n````\n\nInterviewer: ok\n")
    t = load(tmp_path, text)
    assert [x.role for x in t.turns] == ["interviewer", "candidate", "interviewer"]
    assert [b.language for b in t.turns[1].code_blocks] == ["markdown"]
    assert t.turns[1].code_blocks[0].code == "```python\nx = 1\n```\nCandidate: still inside the outer fence"


def test_turn_lines_point_into_the_file(tmp_path):
    t = load(tmp_path, FRONT)
    lines = FRONT.split("\n")
    for turn in t.turns:
        assert lines[turn.line - 1].split(":")[0] in ("Interviewer", "Candidate")


def test_stable_ids_and_hash(tmp_path):
    a = load(tmp_path, BODY, name="a.md")
    (tmp_path / "other").mkdir()
    b = load(tmp_path / "other", BODY, name="renamed.md")
    assert [x.id for x in a.turns] == [x.id for x in b.turns] == ["t1", "t2", "t3", "t4"]
    assert a.content_hash == b.content_hash
    assert len(a.content_hash) == 64
    c = load(tmp_path, BODY.replace("Thanks.", "Thanks!"), name="c.md")
    assert c.content_hash != a.content_hash


def test_preamble_heading_is_not_a_turn(tmp_path):
    t = load(tmp_path, "# Round 1: LRU cache\n\nInterviewer: hi\n\nCandidate: hello\n")
    assert t.title == "Round 1: LRU cache"
    assert [x.id for x in t.turns] == ["t1", "t2"]


def test_no_speakers_is_one_block_with_warning(tmp_path):
    text = "We talked about caches.\nThe candidate proposed a dict plus a linked list.\n"
    t = load(tmp_path, text)
    assert t.speakers_recognised is False
    assert len(t.turns) == 1
    assert t.turns[0].id == "t1"
    assert t.turns[0].role == "unknown"
    assert "linked list" in t.turns[0].text
    assert any("no speaker" in w for w in t.warnings)


# --------------------------------------------------------------------------------------------
# code files
# --------------------------------------------------------------------------------------------

REFS = "Interviewer: Show me the code.\n\nCandidate: It's in cache.py, see cache.py for the tests too.\n"


def test_code_option_attaches_file(tmp_path):
    code = tmp_path / "solution.py"
    code.write_text("def f():\n    return 1\n")
    t = load(tmp_path, STYLES["plain"], code_paths=[code])
    assert [(c.name, c.language) for c in t.code_files] == [("solution.py", "python")]
    assert "return 1" in t.code_files[0].content


def test_missing_code_option_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="nope.py"):
        load(tmp_path, STYLES["plain"], code_paths=[tmp_path / "nope.py"])


def test_code_referenced_by_name_is_attached(tmp_path):
    (tmp_path / "cache.py").write_text("class Cache: ...\n")
    t = load(tmp_path, REFS)
    assert [c.name for c in t.code_files] == ["cache.py"]


def test_code_file_the_transcript_names_but_is_not_beside_it_is_a_warning(tmp_path):
    # moved to another folder without its code: judged without it, and the user is told so (once)
    t = load(tmp_path, REFS)
    assert t.code_files == []
    assert len(t.warnings) == 1
    assert "cache.py" in t.warnings[0] and "--code" in t.warnings[0]


@pytest.mark.parametrize("text", [
    "Interviewer: ok\n\nCandidate: The full file is lru_ttl_cache.py. Here are the tests.\n",
    "Interviewer: ok\n\nCandidate: I'll write `lru_ttl_cache.py` first.\n",
    "Interviewer: ok\n\nCandidate: Here is [my code](lru_ttl_cache.py).\n",
    "---\ncandidate: Dana\ncode: lru_ttl_cache.py\n---\nInterviewer: ok\n\nCandidate: done.\n",
])
def test_each_way_of_naming_the_code_file_warns_when_it_is_missing(tmp_path, text):
    t = load(tmp_path, text)
    assert [w for w in t.warnings if "lru_ttl_cache.py" in w], t.warnings
    (tmp_path / "lru_ttl_cache.py").write_text("class Cache: ...\n")
    t = load(tmp_path, text)
    assert [c.name for c in t.code_files] == ["lru_ttl_cache.py"]
    assert t.warnings == []


def test_file_like_word_in_passing_is_no_warning(tmp_path):
    t = load(tmp_path, "Interviewer: ok\n\nCandidate: Like Django's settings.py or functools.py, "
                       "I'd reach for os.path.join.\n\nInterviewer: it fails:\n\n```\nTraceback (most recent "
                       "call last):\n  File \"parse.py\", line 4, in parse_invoice\n```\n")
    assert t.code_files == []
    assert t.warnings == []


def test_named_code_file_given_elsewhere_is_no_warning(tmp_path):
    elsewhere = tmp_path / "code"
    elsewhere.mkdir()
    (elsewhere / "cache.py").write_text("class Cache: ...\n")
    t = load(tmp_path, REFS, code_paths=[elsewhere / "cache.py"])
    assert [c.name for c in t.code_files] == ["cache.py"]
    assert t.warnings == []


def test_referenced_and_explicit_same_file_attached_once(tmp_path):
    code = tmp_path / "cache.py"
    code.write_text("class Cache: ...\n")
    t = load(tmp_path, REFS, code_paths=[code])
    assert [c.name for c in t.code_files] == ["cache.py"]


def test_reference_outside_the_folder_is_not_attached(tmp_path):
    sub = tmp_path / "round"
    sub.mkdir()
    (tmp_path / "secret.py").write_text("TOKEN = 'x'\n")
    t = load(sub, "Interviewer: code?\n\nCandidate: see ../secret.py\n")
    assert t.code_files == []


def test_hash_changes_when_code_changes(tmp_path):
    code = tmp_path / "cache.py"
    code.write_text("class Cache: ...\n")
    p = write(tmp_path, REFS)
    h1 = load_transcript(p).content_hash
    assert load_transcript(p).content_hash == h1
    code.write_text("class Cache:\n    pass\n")
    h2 = load_transcript(p).content_hash
    assert h2 != h1
    # explicit --code attachment too
    other = tmp_path / "extra.py"
    other.write_text("x = 1\n")
    h3 = load_transcript(p, [other]).content_hash
    other.write_text("x = 2\n")
    assert load_transcript(p, [other]).content_hash != h3
    assert h3 != h2


# --------------------------------------------------------------------------------------------
# bad input and encodings
# --------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_transcript(tmp_path / "absent.md")


def test_directory(tmp_path):
    with pytest.raises(BadInput, match="directory"):
        load_transcript(tmp_path)


@pytest.mark.parametrize("data", [b"", b"   \n\t\n  \n", "\ufeff\n \n".encode()])
def test_empty_or_whitespace(tmp_path, data):
    with pytest.raises(BadInput, match="empty"):
        load(tmp_path, data)


def test_binary_png(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
    with pytest.raises(BadInput, match="binary"):
        load(tmp_path, png, name="shot.md")


def test_a_few_invalid_utf8_bytes_decode_with_warning(tmp_path):
    data = "Interviewer: hi\n\nCandidate: caf\xe9 and na\xefve\n".encode("latin-1")
    t = load(tmp_path, data)
    assert any("invalid UTF-8" in w for w in t.warnings)
    assert "\ufffd" in t.turns[1].text
    assert [x.role for x in t.turns] == ["interviewer", "candidate"]


def test_mostly_invalid_utf8_is_bad_input(tmp_path):
    data = b"\xff\xfe\xfa\xc3" * 300 + b"\nInterviewer: hi\nCandidate: yo\n"
    with pytest.raises(BadInput, match="UTF-8"):
        load(tmp_path, data)


def test_utf8_bom(tmp_path):
    t = load(tmp_path, "\ufeff" + FRONT)
    assert t.candidate == "Dana Smith"  # front matter still recognised after the BOM
    assert not t.raw_text.startswith("\ufeff")
    assert t.warnings == []
    assert t.content_hash == load(tmp_path, FRONT, name="plain.md").content_hash


def test_crlf_line_endings(tmp_path):
    crlf = FRONT.replace("\n", "\r\n") + "\r\nMore of the same turn.\r\n"
    lf = FRONT + "\nMore of the same turn.\n"
    t = load(tmp_path, crlf.encode())
    u = load(tmp_path, lf.encode(), name="lf.md")
    assert "\r" not in t.raw_text
    assert all("\r" not in x.text for x in t.turns)
    assert t.candidate == "Dana Smith"
    assert spoken(t) == spoken(u)
    assert t.turns[-1].text.endswith("More of the same turn.")
    assert t.content_hash == u.content_hash


# --------------------------------------------------------------------------------------------
# the sample transcripts
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_samples_parse_cleanly(path):
    t = load_transcript(path)
    assert len(t.turns) >= 10
    roles = {x.role for x in t.turns}
    assert {"interviewer", "candidate"} <= roles
    assert t.speakers_recognised
    assert t.warnings == []
    ids = [x.id for x in t.turns if x.id != "t0"]
    assert ids == [f"t{i}" for i in range(1, len(ids) + 1)]


def test_samples_exist():
    assert len(SAMPLES) >= 3


# --------------------------------------------------------------------------------------------
# hostile files: alias bombs, devices and FIFOs, empty rounds (through the real CLI)
# --------------------------------------------------------------------------------------------

ROUND = "Interviewer: Build an LRU cache.\n\nCandidate: I'd use a dict and a linked list; capacity never exceeded.\n"
BOMB = "".join(
    ["---\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
       f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8)]
    + ["exercise: *i\n---\n", ROUND]
)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The installed console script in a subprocess: a hang or a memory blow-up fails by timeout,
    not by freezing the test session."""
    exe = Path(sys.executable).with_name("evaluate")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from evaluator.cli import run; run()"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVALUATOR_")}
    return subprocess.run([*cmd, *args], check=False, capture_output=True, text=True, timeout=timeout, env=env)


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    p = write(tmp_path, BOMB)
    run = cli(str(p), "--db", str(tmp_path / "e.duckdb"), timeout=30)
    assert run.returncode == 2, run.stderr
    assert "alias" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "e.duckdb").exists() or "judgments" not in run.stdout


@pytest.mark.parametrize("front", [
    "---\nsizes: &s [1, 2]\nexercise: *s\n---\n",
    "---\nexercise: [lru, ttl]\ncandidate: {first: Dana}\ntitle: [x]\n---\n",
    "---\nwho: &w {name: Dana}\ncandidate: *w\ninterviewer: [[a]]\n---\n",
])
def test_front_matter_values_of_the_wrong_type_are_warnings(tmp_path, front):
    p = write(tmp_path, front + ROUND)
    t = load_transcript(p)
    assert t.exercise is None and t.candidate is None and t.title is None
    assert any("should be" in w for w in t.warnings)
    run = cli(str(p), "--db", str(tmp_path / "e.duckdb"), "--format", "json")
    assert run.returncode == 0, run.stderr


def test_front_matter_over_the_size_cap_is_bad_input(tmp_path):
    p = write(tmp_path, "---\nnotes: \"" + "x" * 100_000 + "\"\n---\n" + ROUND)
    with pytest.raises(BadInput, match="front matter"):
        load_transcript(p)


def test_deeply_nested_front_matter_is_bad_input(tmp_path):
    p = write(tmp_path, "---\nx: " + "[" * 200 + "]" * 200 + "\n---\n" + ROUND)
    with pytest.raises(BadInput, match="nested"):
        load_transcript(p)


def test_yaml_binary_set_and_nan_values_are_stored_as_json(tmp_path):
    p = write(tmp_path, "---\nblob: !!binary aGVsbG8=\ntags: !!set {a, b}\nratio: .nan\n---\n" + ROUND)
    run = cli(str(p), "--db", str(tmp_path / "e.duckdb"), "--format", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["transcript"]["metadata"]["blob"] == "hello"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_as_transcripts_and_code(tmp_path, device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    run = cli(device, "--db", str(tmp_path / "e.duckdb"))
    assert run.returncode == 2 and "not a regular file" in run.stderr, run.stderr
    p = write(tmp_path, ROUND)
    run = cli(str(p), "--code", device, "--db", str(tmp_path / "e.duckdb"))
    assert run.returncode == 2 and "not a regular file" in run.stderr, run.stderr


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "round.md"
    os.mkfifo(fifo)  # nobody ever writes: opening it for reading would block for ever
    run = cli(str(fifo), "--db", str(tmp_path / "e.duckdb"), timeout=30)
    assert run.returncode == 2 and "FIFO" in run.stderr, run.stderr
    code = tmp_path / "cache.py"
    os.mkfifo(code)
    real = write(tmp_path, ROUND, name="real.md")
    run = cli(str(real), "--code", str(code), "--db", str(tmp_path / "e.duckdb"), timeout=30)
    assert run.returncode == 2 and "FIFO" in run.stderr, run.stderr


def test_label_and_manifest_devices_and_fifos_are_refused(tmp_path):
    db = tmp_path / "e.duckdb"
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    run = cli("labels", "import", str(fifo), "--db", str(db), timeout=30)
    assert run.returncode == 2 and "FIFO" in run.stderr, run.stderr
    if os.path.exists("/dev/zero"):
        run = cli("labels", "import", "/dev/zero", "--db", str(db), timeout=30)
        assert run.returncode == 2 and "not a regular file" in run.stderr, run.stderr
    manifest = tmp_path / "cohort.csv"
    os.mkfifo(manifest)
    run = cli("cohort", str(manifest), "--cohort", "c", "--db", str(db), timeout=30)
    assert run.returncode == 2 and "FIFO" in run.stderr, run.stderr


def test_fifo_in_a_cohort_folder_is_one_bad_item(tmp_path):
    folder = tmp_path / "round"
    folder.mkdir()
    write(folder, ROUND, name="good.md")
    os.mkfifo(folder / "stuck.md")
    run = cli("cohort", str(folder), "--cohort", "c", "--db", str(tmp_path / "e.duckdb"), timeout=60)
    assert "stuck.md" in run.stdout + run.stderr and "FIFO" in run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in run.stderr


@pytest.mark.parametrize("text", [
    "---\ncandidate: Dana\nexercise: lru_cache\n---\n",
    "---\ncandidate: Dana\n---\n\n   \n\t\n",
    "---\ncandidate: Dana\n---\n# LRU cache round\n\n<!-- nothing recorded -->\n\n---\n",
    "Interviewer:\n\nCandidate:\n\n",
])
def test_a_round_with_nothing_said_is_bad_input_before_any_call(tmp_path, text, fake_llm):
    p = write(tmp_path, text)
    with pytest.raises(BadInput, match="nothing to judge"):
        load_transcript(p)
    run = cli(str(p), "--model", "openai/test-model", "--api-base", fake_llm.base_url,
              "--db", str(tmp_path / "e.duckdb"))
    assert run.returncode == 2 and "nothing to judge" in run.stderr, run.stderr
    assert fake_llm.chat_requests == []


def test_rubric_path_that_is_a_device_or_fifo_is_refused(tmp_path):
    fifo = tmp_path / "rubric.yaml"
    os.mkfifo(fifo)
    p = write(tmp_path, ROUND)
    run = cli(str(p), "--rubric", str(fifo), "--db", str(tmp_path / "e.duckdb"), timeout=30)
    assert run.returncode == 2 and "FIFO" in run.stderr, run.stderr


# Pieces a body is made of: words, headings, rules, fences, comments opened or closed anywhere.
_PIECES = ["word", "# heading", "##", "---", "```", "> ", ": ", "<!--", "-->", "<!-- note -->", " ", "\t", "\n",
           "\n\n", "- x", "####### seven", "#no-space", "*", "="]


@pytest.mark.parametrize("prefix", [0, 1, 3, 8])
def test_has_content_from_the_opening_lines_agrees_with_the_full_scan(prefix: int) -> None:
    """The opening-lines shortcut never finds a word the full scan would not (property over
    bodies built from every construct the scan sets aside, cut at many places)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from evaluator.ingest import _has_content, _words_left

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(_PIECES), max_size=30))
    def agree(pieces: list[str]) -> None:
        body = "".join(pieces)
        assert _has_content(body, prefix) == _words_left(body)

    agree()


def test_a_redact_list_that_is_a_fifo_is_refused(tmp_path):
    fifo = tmp_path / "terms.txt"
    os.mkfifo(fifo)
    run = cli(str(REPO / "transcripts" / "cosine_topk.md"), "--redact-list", str(fifo), "--db",
              str(tmp_path / "e.duckdb"), timeout=30)
    assert run.returncode == 2 and "FIFO" in run.stderr, run.stderr
