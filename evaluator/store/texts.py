"""The text a judgment was made on, as stored for reports (migration 0007_transcript_text).

Reports read only the store: each judgment points (`judgments.text_key`) at the turns and code
files the judge read, and its evidence quotes carry the span where the verifier found them in
that text. The key is a hash of the stored text itself, not of the file: a cohort manifest's
candidate override can split the same file into other turns, and spans are offsets into turns.

The same key is the judge's VIEW of a transcript (`View`): its turns as split (who said what, in
which order, with which time stamp) and its code files. The cache key hashes the file's bytes, not
how they are read, so a parser change (WhatsApp exports read as turns where they were one block, a
new candidate rule, a code file attached differently) leaves it as it was while the judge would now
read another text. A stored judgment is reused only when it was made on the view the transcript
gives now (`reusable`); otherwise it is judged again (a new judgment, the old one kept) and the run
says how many were refused. Checked on reuse rather than hashed into the cache key, so deploying the
check, or any upgrade that reads a file as before, re-judges nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from evaluator.models import Transcript


class TextRecord(NamedTuple):
    """A transcript's text as stored (JSON columns), keyed by content: one text is stored once."""

    key: str
    turns: str  # JSON: [{id, speaker, role, timestamp, text}]
    code: str  # JSON: [{name, language, content}]
    candidate_speaker: str | None


def _stored_form(transcript: Transcript) -> tuple[str, str, str]:
    """(key, turns JSON, code JSON): the stored text and its hash. The form is frozen: every stored
    judgment's `text_key` was computed this way, and a change here would refuse them all."""
    turns: list[dict[str, Any]] = [{"id": t.id, "speaker": t.speaker, "role": t.role, "timestamp": t.timestamp,
                                    "text": t.text} for t in transcript.turns]
    code = [{"name": c.name, "language": c.language, "content": c.content} for c in transcript.code_files]
    turns_json = json.dumps(turns, ensure_ascii=False)
    code_json = json.dumps(code, ensure_ascii=False)
    key = hashlib.sha256(f"{transcript.content_hash}\0{turns_json}\0{code_json}".encode()).hexdigest()
    return key, turns_json, code_json


def text_record(transcript: Transcript) -> TextRecord:
    """The stored form of a transcript's turns and code files."""
    from evaluator.speakers import candidate_speaker

    key, turns_json, code_json = _stored_form(transcript)
    return TextRecord(key, turns_json, code_json, candidate_speaker(transcript.turns))


def refused_notice(n: int) -> str:
    """The one line a run prints when it judged again what it could not reuse (`reusable`)."""
    several = n != 1
    return (f"{n} cached judgment{'s' if several else ''} not reused: the transcript is now read differently "
            f"(speaker turns or code files); judged again, the stored one{'s' if several else ''} kept")


class View(NamedTuple):
    """What a judge reads of a transcript as this version parses it: the text key (turns and code
    files, as stored), and whether its speakers were told apart (all that rows stored before the
    text key existed, migration 0007, recorded of it: the `speakers_unrecognised` flag)."""

    key: str
    recognised: bool


class StoredView(NamedTuple):
    """What a stored judgment was made on: its text key (None before migration 0007) and whether it
    was flagged `speakers_unrecognised`."""

    key: str | None
    unrecognised: bool


def view_of(transcript: Transcript) -> View:
    """The view a parsed transcript gives (~0.4 ms for a 10 KB round: the stored form's JSON and hash)."""
    return View(_stored_form(transcript)[0], transcript.speakers_recognised)


def reusable(stored: StoredView, now: View) -> bool:
    """Whether a judgment made on `stored` may stand for the transcript read as `now`.

    A row with a text key: exactly when the text is the same. A row from before text keys (0007)
    recorded only whether its speakers were told apart: it stands while that still holds. Those
    rows cannot show any finer change, and refusing them all would re-judge a whole store once for
    an upgrade that may read every file as before; the change that motivated this check (a file
    once read as one unlabelled block, now split into turns) is exactly the one they do show."""
    if stored.key is not None:
        return stored.key == now.key
    return stored.unrecognised != now.recognised


Candidate = tuple[str, str, StoredView]  # (judgment id, status, what it was made on), newest first per key


def pick(candidates: list[Candidate], now: View) -> tuple[tuple[str, str] | None, bool]:
    """The newest stored judgment made on the view `now` ((id, status) or None), and whether a
    judgment of this cache key was refused for having been made on another view (the run says so)."""
    for jid, status, stored in candidates:
        if reusable(stored, now):
            return (jid, status), False
    return None, bool(candidates)
