"""The text a judgment was made on, as stored for reports (migration 0007_transcript_text).

Reports read only the store: each judgment points (`judgments.text_key`) at the turns and code
files the judge read, and its evidence quotes carry the span where the verifier found them in
that text. The key is a hash of the stored text itself, not of the file: a cohort manifest's
candidate override can split the same file into other turns, and spans are offsets into turns.
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


def text_record(transcript: Transcript) -> TextRecord:
    """The stored form of a transcript's turns and code files."""
    from evaluator.speakers import candidate_speaker

    turns: list[dict[str, Any]] = [{"id": t.id, "speaker": t.speaker, "role": t.role, "timestamp": t.timestamp,
                                    "text": t.text} for t in transcript.turns]
    code = [{"name": c.name, "language": c.language, "content": c.content} for c in transcript.code_files]
    turns_json = json.dumps(turns, ensure_ascii=False)
    code_json = json.dumps(code, ensure_ascii=False)
    key = hashlib.sha256(f"{transcript.content_hash}\0{turns_json}\0{code_json}".encode()).hexdigest()
    return TextRecord(key, turns_json, code_json, candidate_speaker(transcript.turns))
