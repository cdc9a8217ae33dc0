"""Controlled perturbations of a judge's input, for bias probes (`evaluate probe`).

Each perturbation is a pure function of (transcript, rubric, seed) that changes ONE thing the score
should not depend on (or, for `code_removed`, one thing it should), so re-judging the perturbed input
and comparing scores measures that one influence. They are deterministic given the seed, so a probe
run can be repeated and its perturbed inputs hit the cache.

A perturbed transcript gets its own content hash (its text is rendered again from its turns) and a
perturbed rubric its own version (`<version>~<perturbation>`): each is judged as an ordinary
judgment with its own cache key, and the rubric variant is stored under its own version.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from evaluator.models import Transcript, Turn
from evaluator.rubrics import Rubric

PERTURBATIONS: tuple[str, ...] = (
    "dimension_order", "anchors_reversed", "filler_removed", "filler_doubled", "names_swapped", "code_removed",
)
# Probes whose scores should not move: a mean |delta| of INVARIANCE_LIMIT or more is flagged.
# `code_removed` is a sensitivity probe: a judge that reads the code SHOULD move on it.
INVARIANT: frozenset[str] = frozenset(PERTURBATIONS) - {"code_removed"}
INVARIANCE_LIMIT = 0.5


@dataclass(frozen=True)
class Perturbed:
    """One perturbed input. `skipped` says why the perturbation does not apply to this input (then
    `transcript` and `rubric` are the originals and nothing is judged)."""

    name: str
    transcript: Transcript
    rubric: Rubric
    detail: str = ""
    skipped: str | None = None


def perturb(name: str, transcript: Transcript, rubric: Rubric, seed: int = 1) -> Perturbed:
    """Apply the perturbation `name` (one of PERTURBATIONS)."""
    try:
        fn = _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}") from None
    return fn(transcript, rubric, seed)


# ---------------------------------------------------------------- rubric perturbations

def rubric_variant(rubric: Rubric, tag: str, **update: object) -> Rubric:
    """A copy of `rubric` with `update` applied and the version `<version>~<tag>` (the content hash
    would not see a reordering: anchors are keyed by level and the hash sorts keys)."""
    variant = rubric.model_copy(update=update, deep=True)
    variant.__dict__["version"] = f"{rubric.version}~{tag}"  # overrides the cached_property
    return variant


def _dimension_order(transcript: Transcript, rubric: Rubric, seed: int) -> Perturbed:
    name = "dimension_order"
    if len(rubric.dimensions) < 2:
        return Perturbed(name, transcript, rubric, skipped="the rubric has one dimension")
    if rubric.judge_mode == "per_dimension":
        return Perturbed(name, transcript, rubric, skipped="the rubric is judged one dimension per call")
    order = list(rubric.dimensions)
    random.Random(seed).shuffle(order)
    if [d.id for d in order] == rubric.dimension_ids:  # a shuffle that changed nothing: rotate instead
        order = order[1:] + order[:1]
    return Perturbed(name, transcript, rubric_variant(rubric, name, dimensions=order),
                     detail="order: " + ", ".join(d.id for d in order))


def _anchors_reversed(transcript: Transcript, rubric: Rubric, seed: int) -> Perturbed:
    dims = [d.model_copy(update={"anchors": dict(reversed(list(d.anchors.items())))}) for d in rubric.dimensions]
    return Perturbed("anchors_reversed", transcript, rubric_variant(rubric, "anchors_reversed", dimensions=dims),
                     detail=f"anchors listed from {rubric.scale.max} down to {rubric.scale.min}")


# ---------------------------------------------------------------- transcript rebuilding

def rebuild(transcript: Transcript, turns: list[Turn] | None = None, metadata: dict | None = None,
            **update: Any) -> Transcript:
    """A transcript with new turns/metadata/fields, its text rendered again from the turns and its
    content hash recomputed (what the judge reads changed, so the cache key must)."""
    from evaluator.ingest import content_hash

    turns = transcript.turns if turns is None else turns
    metadata = transcript.metadata if metadata is None else metadata
    code_files = update.get("code_files", transcript.code_files)
    raw = update.pop("raw_text", None)
    if raw is None:
        front = f"---\n{json.dumps(metadata, ensure_ascii=False, default=str)}\n---\n\n" if metadata else ""
        raw = front + "\n\n".join(f"{t.speaker} ({t.role}): {t.text}" for t in turns) + "\n"
    return transcript.model_copy(update={
        "turns": turns, "metadata": metadata, "raw_text": raw,
        "content_hash": content_hash(str(raw), list(code_files)),
        **update,
    })


def _code_removed(transcript: Transcript, rubric: Rubric, seed: int) -> Perturbed:
    if not transcript.code_files:
        return Perturbed("code_removed", transcript, rubric, skipped="no code files are attached")
    names = ", ".join(c.name for c in transcript.code_files)
    return Perturbed("code_removed", rebuild(transcript, code_files=[], raw_text=transcript.raw_text), rubric,
                     detail=f"left out: {names}")


# ---------------------------------------------------------------- filler (verbosity)

# Words and phrases that carry no content signal on their own: greetings, acknowledgements,
# thinking aloud, hedges. A sentence made ONLY of these is filler; one content word makes it not.
_FILLER_WORDS = [
    "okay", "ok", "so", "um", "uh", "uhm", "er", "hmm", "mm", "right", "yeah", "yep", "yes", "sure", "well",
    "alright", "great", "good", "cool", "nice", "perfect", "fine", "thanks", "hi", "hello", "hey", "maybe",
    "probably", "perhaps", "basically", "actually", "oh", "ah", "then", "sorry",
]
_FILLER_PHRASES = (
    "got it", "thank you", "let me think", "let me see", "let's see", "give me a second", "just a second",
    "one moment", "one sec", "i think", "i guess", "i suppose", "sort of", "kind of", "you know", "i mean",
    "that makes sense", "makes sense", "sounds good", "i see", "all right", "of course", "no problem",
    "excuse me", "that's fair", "that's right", "fair enough", "let me", "think about it",
)
_PHRASES = sorted({(w,) for w in _FILLER_WORDS} | {tuple(p.split()) for p in _FILLER_PHRASES}, key=len, reverse=True)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_FENCED = re.compile(r"(```.*?(?:```|$)|~~~.*?(?:~~~|$))", re.DOTALL)
_SPLIT = re.compile(r"((?<=[.!?…])[ \t]+|\n)")


def is_filler(sentence: str) -> bool:
    """True when the sentence has words and every one belongs to a filler phrase ("Okay.", "Hmm, let
    me think.", "Sounds good!"). Digits, code or any other word make it content."""
    if re.search(r"[\d`=()\[\]{}<>/_*#]", sentence):
        return False
    words = _WORD.findall(sentence.lower().replace("’", "'"))
    if not words:
        return False
    i = 0
    while i < len(words):
        for phrase in _PHRASES:
            if tuple(words[i:i + len(phrase)]) == phrase:
                i += len(phrase)
                break
        else:
            return False
    return True


def edit_filler(text: str, mode: str) -> tuple[str, int]:
    """`text` with its filler sentences removed (`mode="remove"`) or each said twice (`"double"`),
    and how many there were. Code fences are left alone; so is every other character."""
    out: list[str] = []
    count = 0
    for k, part in enumerate(_FENCED.split(text)):
        if k % 2:  # a fenced code block
            out.append(part)
            continue
        pieces = _SPLIT.split(part)
        kept: list[str] = []
        skip_sep = False
        for i, piece in enumerate(pieces):
            if i % 2:  # a separator
                if skip_sep and piece != "\n":
                    skip_sep = False
                    continue
                skip_sep = False
                kept.append(piece)
            elif piece.strip() and is_filler(piece):
                count += 1
                if mode == "remove":
                    skip_sep = True
                else:
                    kept.append(f"{piece} {piece.strip()}")
            else:
                kept.append(piece)
        out.append("".join(kept))
    if not count:
        return text, 0
    result = "".join(out)
    if mode == "remove":
        result = re.sub(r"[ \t]+\n", "\n", result).strip()
    return result, count


def _filler(mode: str):
    name = "filler_removed" if mode == "remove" else "filler_doubled"

    def apply(transcript: Transcript, rubric: Rubric, seed: int) -> Perturbed:
        turns: list[Turn] = []
        total = 0
        for t in transcript.turns:
            text, n = edit_filler(t.text, mode) if t.role == "candidate" else (t.text, 0)
            total += n
            if text.strip():
                turns.append(t.model_copy(update={"text": text, "id": f"t{len(turns) + 1}", "index": len(turns)}))
        if not total:
            return Perturbed(name, transcript, rubric, skipped="the candidate says no filler sentence")
        verb = "removed" if mode == "remove" else "doubled"
        return Perturbed(name, rebuild(transcript, turns), rubric, detail=f"{total} filler sentence(s) {verb}")

    return apply


# ---------------------------------------------------------------- names

@lru_cache(maxsize=1)
def swap_names() -> tuple[dict[str, str], ...]:
    """The shipped names (data/swap_names.yaml): first, last, apparent gender and origin."""
    import yaml

    text = resources.files("evaluator.judge").joinpath("data", "swap_names.yaml").read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text))


def name_swaps(people: list[str], seed: int) -> dict[str, str]:
    """Each person's replacement: someone of another apparent gender and origin (when the person's
    first name is in the shipped list; else any listed name), never a name already in use. Full
    names map to full names, first names to first names, last names to last names."""
    table = swap_names()
    known = {p["first"].lower(): p for p in table}
    taken = {w.lower() for person in people for w in person.split()}
    swaps: dict[str, str] = {}
    for person in people:
        words = person.split()
        if not words or person in swaps:
            continue
        me = known.get(words[0].lower())
        pool = [p for p in table if p["first"].lower() not in taken and p["last"].lower() not in taken
                and (me is None or (p["gender"] != me["gender"] and p["origin"] != me["origin"]))]
        pool = pool or [p for p in table if p["first"].lower() not in taken]
        if not pool:
            continue
        pick = random.Random(f"{seed}:{person}").choice(pool)
        taken |= {pick["first"].lower(), pick["last"].lower()}
        if len(words) == 1:
            swaps[person] = pick["first"]
        else:
            swaps[person] = f"{pick['first']} {pick['last']}"
            swaps.setdefault(words[0], pick["first"])
            swaps.setdefault(words[-1], pick["last"])
    return swaps


def replace_words(text: str, mapping: dict[str, str]) -> str:
    """Replace whole-word occurrences of each key (longest first, in one pass: no chains)."""
    if not mapping or not text:
        return text
    alternatives = "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))
    pattern = re.compile(r"(?<!\w)(" + alternatives + r")(?!\w)")
    return pattern.sub(lambda m: mapping[m.group(1)], text)


def _names_swapped(transcript: Transcript, rubric: Rubric, seed: int) -> Perturbed:
    from evaluator.redact import transcript_people

    people = list(transcript_people(transcript))
    swaps = name_swaps(people, seed)
    if not swaps:
        return Perturbed("names_swapped", transcript, rubric, skipped="no speaker names (only role labels)")

    def sub(value: object) -> object:
        if isinstance(value, str):
            return replace_words(value, swaps)
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    turns = [t.model_copy(update={"speaker": replace_words(t.speaker, swaps), "text": replace_words(t.text, swaps)})
             for t in transcript.turns]
    metadata = {k: sub(v) for k, v in transcript.metadata.items()}
    code = [c.model_copy(update={"content": replace_words(c.content, swaps)}) for c in transcript.code_files]
    shown = ", ".join(f"{a} -> {b}" for a, b in swaps.items() if a in people)
    return Perturbed("names_swapped", rebuild(transcript, turns, metadata, code_files=code,
                                              title=sub(transcript.title) if transcript.title else None),
                     rubric, detail=shown)


_BY_NAME = {
    "dimension_order": _dimension_order,
    "anchors_reversed": _anchors_reversed,
    "filler_removed": _filler("remove"),
    "filler_doubled": _filler("double"),
    "names_swapped": _names_swapped,
    "code_removed": _code_removed,
}
