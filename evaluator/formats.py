"""Transcript formats other than Markdown, turned into the `Speaker: text` lines ingest reads.

WebVTT (`.vtt`, the caption export of Zoom, Teams, Meet and YouTube): the header, NOTE, STYLE and
REGION blocks, cue ids and timings are dropped; a cue's speaker comes from its voice tag
(`<v Priya Nair>text`) or a `Speaker: text` line. Consecutive cues of one speaker become one turn,
and a cue with no speaker continues the previous one (captions name the speaker on a change only).
"""

from __future__ import annotations

import html
import re

TRANSCRIPT_SUFFIXES = (".md", ".markdown", ".txt", ".vtt")

_TIMING = re.compile(r"^\s*(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}\s+-->\s+(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{3}")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<\d{1,2}:\d{2}(?::\d{2})?[.,]\d{3}>")
_LABEL = re.compile(r"^\s*([^\W\d_][\w .'-]{0,40}?(?:\s*\([\w .-]{1,30}\))?)\s*:\s+(.*)$")
_BLOCKS = ("NOTE", "STYLE", "REGION")


def _cue_text(lines: list[str]) -> tuple[str | None, str]:
    """(speaker or None, text without tags) of one cue's payload lines."""
    speaker = None
    parts = []
    for line in lines:
        voice = _VOICE.search(line)
        if voice and speaker is None:
            speaker = voice.group(1).strip()
        text = html.unescape(_TAG.sub("", line)).replace("\u00a0", " ").strip()
        if text:
            parts.append(text)
    text = " ".join(parts)
    if speaker is None:
        label = _LABEL.match(text)
        if label:
            speaker, text = label.group(1).strip(), label.group(2).strip()
    return speaker, text


def webvtt_to_text(vtt: str) -> str:
    """A WebVTT caption file as `Speaker: text` paragraphs, one per turn."""
    blocks = re.split(r"\n\s*\n", vtt.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff"))
    turns: list[list[str]] = []  # [speaker or "", text]
    for block in blocks:
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines or lines[0].startswith("WEBVTT") or lines[0].split(" ")[0] in _BLOCKS:
            continue
        timing = next((i for i, ln in enumerate(lines) if _TIMING.match(ln)), None)
        if timing is None:
            continue  # not a cue (stray text between blocks)
        speaker, text = _cue_text(lines[timing + 1:])
        if not text:
            continue
        if turns and (speaker is None or speaker == turns[-1][0]):
            turns[-1][1] += " " + text
        else:
            turns.append([speaker or "", text])
    return "\n\n".join(f"{who}: {text}" if who else text for who, text in turns) + "\n"


def convert(text: str, suffix: str) -> str:
    """The text ingest should parse for a file with this suffix (Markdown and plain text as they are)."""
    return webvtt_to_text(text) if suffix.lower() == ".vtt" else text
