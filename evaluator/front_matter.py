"""Front matter: the YAML block at the top of a transcript (candidate, exercise, date, interviewer).

Why a module of its own: the block is written by hand or by note-taking tools, so it is untrusted
input of its own kind. Broken YAML, a key of the wrong type or a date YAML would parse into an
exception become warnings (the round is still judged), while a block too big to be metadata, or a
YAML alias bomb that a few hundred bytes expand into billions of nodes, is refused before anything
is built. `ingest.py` reads the rest of the file.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from evaluator.errors import BadInput

_YAML_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~20x faster when present


class _YAML_LOADER(_YAML_BASE):  # type: ignore[misc,valid-type]
    """Safe YAML that leaves dates as text: `date: 2026-02-30` is then a warning (session_date),
    not a ValueError from YAML's own date constructor."""


_YAML_LOADER.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _YAML_BASE.yaml_implicit_resolvers.items()
}

MAX_FRONT_MATTER_CHARS = 65_536
MAX_FRONT_MATTER_NODES = 10_000
MAX_FRONT_MATTER_DEPTH = 32


def split_front_matter(text: str) -> tuple[dict, str, int, list[str]]:
    """Return (metadata, body, body_start_line, warnings). Broken YAML is dropped with a warning."""
    if not text.startswith("---\n"):
        return {}, text, 1, []
    end = re.search(r"^(---|\.\.\.)\s*$", text[4:], flags=re.MULTILINE)
    if not end:
        return {}, text, 1, ["front matter opened with '---' but never closed; read as text"]
    raw = text[4 : 4 + end.start()]
    body = text[4 + end.end() :].lstrip("\n")
    start_line = text[: len(text) - len(body)].count("\n") + 1
    _check_front_matter_size(raw)
    # A broken block is still front matter, not speech: drop it from the body (so `candidate: X` is
    # never read as a turn) and say so.
    try:
        meta = yaml.load(raw, Loader=_YAML_LOADER) or {}
    except (yaml.YAMLError, ValueError, TypeError) as e:  # constructors raise plain errors too
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        return {}, body, start_line, [f"front matter is not valid YAML{where}; its metadata was ignored"]
    if not isinstance(meta, dict):
        return {}, body, start_line, ["front matter is not a YAML mapping; its metadata was ignored"]
    warnings: list[str] = []
    clean: dict[str, Any] = {}
    for k, v in meta.items():
        key, value = str(k), _plain(v)
        expected = _SCALAR_KEYS.get(key)
        if expected and not _is_scalar(value) and not (
                expected == "names" and isinstance(value, list) and all(map(_is_scalar, value))):
            kind = "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "empty"
            wanted = "a name or a list of names" if expected == "names" else "text"
            warnings.append(f"front matter `{key}` should be {wanted}, got {kind}: ignored")
            continue
        clean[key] = value
    return clean, body, start_line, warnings


# Front-matter keys the tool reads, and what each must be: anything else is a warning, not a crash.
_SCALAR_KEYS = {"candidate": "text", "exercise": "text", "title": "text", "round": "text", "date": "text",
                "interviewer": "names"}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) or value is True or value is False


def _plain(value: Any) -> Any:
    """JSON-safe metadata: YAML's !!binary, !!set and non-finite floats have no JSON form."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _plainly_small(raw: str) -> bool:
    """Front matter that cannot break either limit, seen without parsing it (the check's YAML pass
    cost as much as the load itself): with no `&` there is no anchor, so no alias expands; every
    collection opens with one of `[{-?:` of its own, so they bound the depth; and a short text holds
    few values (fewer than three nodes per character: `?` alone is a mapping, a null key and its value)."""
    return ("&" not in raw and 3 * len(raw) + 3 <= MAX_FRONT_MATTER_NODES
            and sum(map(raw.count, "[{-?:")) < MAX_FRONT_MATTER_DEPTH)


def _check_front_matter_size(raw: str) -> None:
    """Refuse front matter too big to be metadata, and YAML alias bombs ("billion laughs"): a few
    hundred bytes of nested aliases expand to billions of nodes. The expanded size is counted on the
    parser's events, before anything is built, so the check costs one pass over at most 64 KB; front
    matter that plainly cannot break the limits (most: a few plain fields) skips it."""
    if len(raw) > MAX_FRONT_MATTER_CHARS:
        raise BadInput(f"front matter is {len(raw):,} characters, over the {MAX_FRONT_MATTER_CHARS:,}-character "
                       "limit: it should hold a few metadata fields")
    if not _plainly_small(raw):
        _count_front_matter(raw)


def _count_front_matter(raw: str) -> None:
    """The expanded size and depth, counted on the parser's events (BadInput past a limit)."""
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[0, None]]  # [expanded nodes so far, anchor] per open collection
    total = 0
    try:
        for event in yaml.parse(raw, Loader=_YAML_LOADER):
            if isinstance(event, yaml.AliasEvent):
                grow = sizes.get(event.anchor or "", 1)
            elif isinstance(event, yaml.ScalarEvent):
                grow = 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                stack.append([0, event.anchor])
                grow = 1
                if len(stack) > MAX_FRONT_MATTER_DEPTH:
                    raise BadInput(f"front matter is nested over {MAX_FRONT_MATTER_DEPTH} levels deep: refused")
            elif isinstance(event, yaml.CollectionEndEvent) and len(stack) > 1:
                n, anchor = stack.pop()
                if anchor:
                    sizes[anchor] = n
                stack[-1][0] += n
                continue
            else:
                continue
            stack[-1][0] += grow
            total += grow
            if total > MAX_FRONT_MATTER_NODES:
                raise BadInput(
                    f"front matter expands to over {MAX_FRONT_MATTER_NODES:,} values (YAML aliases, *name, "
                    "repeat what they name): refused as an alias bomb")
    except yaml.YAMLError:
        return  # the real load reports it as a warning

