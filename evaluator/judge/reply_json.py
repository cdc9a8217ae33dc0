"""Find the JSON object in a model's reply: chatter, a markdown fence, broken syntax and keys given
twice are all handled here, before any schema is looked at.

Its own module because it knows nothing of rubrics or transcripts: it turns text into a dict (or a
reason there is none), and `parse` validates that dict. A key given twice with different values is
kept as a `Conflict`, not silently resolved, so that validation can re-ask that one dimension.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class Conflict(list):
    """The different values a reply gave one key (`"invariant": {...}, "invariant": {...}`). JSON
    parsers keep the last silently; here the key's dimension fails validation and is asked again."""


def merge_values(a: Any, b: Any) -> Any:
    """One value for a key given twice: identical values are one, two objects merge key by key
    (only the keys they disagree on conflict), anything else is a Conflict."""
    if a == b and type(a) is type(b):
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        merged = dict(a)
        for k, v in b.items():
            merged[k] = merge_values(merged[k], v) if k in merged else v
        return merged
    return Conflict([*(a if isinstance(a, Conflict) else [a]), *(b if isinstance(b, Conflict) else [b])])


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        out[k] = merge_values(out[k], v) if k in out else v
    return out


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_pairs)


def extract_json(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Find the JSON object in a reply that may carry chatter, a markdown fence or broken syntax.
    A key given twice with different values becomes a `Conflict` (in repaired JSON too)."""
    if text is None or not text.strip():
        return None, "the reply was empty"
    candidates: list[str] = [m.group(1) for m in _FENCED.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1:
        candidates.append(text[start : end + 1] if end > start else text[start:])
    if not candidates:
        return None, "the reply contains no JSON object (it looks like prose)"
    for chunk in candidates:
        try:
            value = _loads(chunk)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value, None
    # a whole object followed by prose that has braces of its own ("... a strong candidate {really}"):
    # the first complete object from the first brace is the answer, the rest is chatter
    if start != -1:
        try:
            value, _ = json.JSONDecoder(object_pairs_hook=_pairs).raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value, None
    import json_repair

    for chunk in candidates:
        try:
            value = json_repair.loads(chunk)
        except Exception:  # json_repair raises assorted errors on hopeless input
            continue
        if isinstance(value, dict) and value:
            for path, values in _raw_duplicates(chunk):
                _mark_conflict(value, path, values)
            return value, None
    return None, "the reply's JSON could not be parsed or repaired"


def _raw_duplicates(text: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Keys given more than once with different raw values in one object of (possibly broken) JSON,
    as (key path, raw values). json-repair keeps the last value of a duplicate key, so the raw text
    is walked once: strings are skipped, braces and brackets tracked, each value's text compared."""
    frames: list[dict[str, Any]] = [{"path": (), "obj": False, "keys": {}}]
    found: list[tuple[tuple[str, ...], list[str]]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            token = text[i + 1 : j]
            k = j + 1
            while k < n and text[k] in " \t\r\n":
                k += 1
            frame = frames[-1]
            if frame["obj"] and frame.get("at") is None and k < n and text[k] == ":":
                frame["at"] = (token, k + 1)
                i = k + 1
                continue
            i = j + 1
            continue
        if c in "{[":
            frame = frames[-1]
            key = frame["at"][0] if frame["obj"] and frame.get("at") else None
            path = frame["path"] + ((key,) if key is not None else ())
            frames.append({"path": path, "obj": c == "{", "keys": {}})
        elif c in "}]" or c == ",":
            frame = frames[-1]
            if frame["obj"] and frame.get("at"):
                key, at = frame.pop("at")
                raw = " ".join(text[at:i].split())
                frame["keys"].setdefault(key, []).append(raw)
            if c in "}]" and len(frames) > 1:
                done = frames.pop()
                for key, raws in done["keys"].items():
                    if len(set(raws)) > 1:
                        found.append((done["path"] + (key,), raws))
        i += 1
    return found


def _mark_conflict(obj: dict[str, Any], path: tuple[str, ...], raws: list[str]) -> None:
    """Replace the value at `path` (keys only; lists are not entered) with a Conflict."""
    node: Any = obj
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return
        node = node[key]
    if isinstance(node, dict) and path and path[-1] in node:
        node[path[-1]] = Conflict(raws)

