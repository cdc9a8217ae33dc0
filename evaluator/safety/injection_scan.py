"""How the checks of `injection_checks` are run over a text: an index from words to the checks they
can open, a scan that tries each pattern only around its anchors, one line at a time, and the same
scan over the text re-read as an attacker may have written it (base64, ROT13, one instruction split
over the lines of a paragraph).

Its own module because it is the speed-critical part, and knows no phrasing: a check added to the
table is scanned here unchanged.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache

from evaluator.safety.hidden import _view
from evaluator.safety.injection_checks import _CHECKS, _Check, _compiled, _dimension_checks

# ---------------------------------------------------------------------------------------------------
# Speed. Python's regex engine is slow on long alternations scanned over whole texts (up to 1 ms for
# one 900-character line). So every pattern is tried only at or around occurrences of its anchor
# words: the anchors are found with bytes.find on a lower-cased byte copy of the text whose offsets
# equal the text's (non-ASCII characters become '?'), and a check whose words (`gate`) are not among
# the text's word tokens is skipped without any search. Patterns never span lines.
# ---------------------------------------------------------------------------------------------------

_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_WORDS = bytes(b if chr(b).isascii() and chr(b).isalnum() else 32 for b in range(256)).translate(_LOWER)
_WORD_CHAR = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_Index = dict[bytes, tuple[tuple[int, tuple[bytes, ...]], ...]]


@lru_cache(maxsize=64)
def _checks_for(dimension_ids: tuple[str, ...]) -> tuple[tuple[_Check, ...], _Index]:
    checks = _CHECKS + _dimension_checks(dimension_ids)
    return checks, _index(checks)


def _index(checks: tuple[_Check, ...]) -> _Index:
    """Word -> (check number, anchors to look for) for every check that word opens. An anchor belongs
    to a gate word when one of the anchor's own words starts with it or is its prefix ('categor' and
    'categories'); an anchor without words ('@') belongs to every gate word of its check."""
    index: dict[bytes, list[tuple[int, tuple[bytes, ...]]]] = {}
    for n, check in enumerate(checks):
        for word in check.gate:
            mine = tuple(a.encode() for a in check.anchors if not re.findall(r"[a-z0-9]+", a.lower()) or any(
                t.startswith(word) or word.startswith(t) for t in re.findall(r"[a-z0-9]+", a.lower())))
            if mine:
                index.setdefault(word.encode(), []).append((n, mine))
    return {w: tuple(v) for w, v in index.items()}


def _index_words(view: str, index: _Index) -> set[bytes]:
    """The words of `index` that are word tokens of `view`: no check of another word can match."""
    return index.keys() & view.encode("ascii", "replace").translate(_WORDS).split()


def _line_hits(view: str, checks: tuple[_Check, ...], index: _Index, words: set[bytes] | None = None
               ) -> dict[int, list[str]]:
    """Line index -> names of the checks matching that line of `view` (`words`: its `_index_words`)."""
    raw = view.encode("ascii", "replace")  # one byte per character: offsets are the view's
    low = raw.translate(_LOWER)
    todo: dict[int, dict[bytes, None]] = {}
    for word in _index_words(view, index) if words is None else words:
        for n, anchors in index[word]:
            todo.setdefault(n, {}).update(dict.fromkeys(anchors))
    if not todo:
        return {}
    lines: dict[tuple[int, bool], str] = {}  # (line start, cased) -> line text
    hits: dict[int, list[str]] = {}
    for n in sorted(todo):
        check = checks[n]
        buf = raw if check.cased else low
        for a in todo[n]:
            p = buf.find(a)
            while p != -1:
                if p == 0 or buf[p - 1] not in _WORD_CHAR:
                    start = buf.rfind(b"\n", 0, p) + 1
                    end = buf.find(b"\n", p)
                    end = len(buf) if end == -1 else end
                    lo = p if not check.back else max(start, p - check.back)
                    hi = min(end, p + len(a) + check.fwd)
                    line = lines.get((start, check.cased))
                    if line is None:
                        line = view[start:end] if check.cased else view[start:end].lower()
                        lines[(start, check.cased)] = line
                    if (not check.near or any(w in line[lo - start : hi - start] for w in check.near)) and (
                        _compiled(check.source).search(line, lo - start, hi - start) if check.back
                        else _compiled(check.source).match(line, lo - start, hi - start)
                    ):
                        hits.setdefault(low.count(b"\n", 0, start), []).append(check.name)
                        p = buf.find(a, end)  # one finding per line and check
                        continue
                p = buf.find(a, p + 1)
    return hits


# Base64 hiding: runs of 24+ characters of the base64 alphabet are decoded and the decoded text is
# checked like any other. Found with bytes.translate + find, as a regex scan would cost ~0.4 ms.
_B64_MASK = bytes(ord("a") if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "+/") else 32 for b in range(256))
_B64_RUN = b"a" * 24


def _encoded_hits(view: str, checks: tuple[_Check, ...], index: _Index) -> dict[int, list[str]]:
    raw = view.encode("ascii", "replace")
    mask = raw.translate(_B64_MASK)
    hits: dict[int, list[str]] = {}
    i = mask.find(_B64_RUN)
    while i != -1:
        j = mask.find(b" ", i)
        j = len(mask) if j == -1 else j
        token = raw[i:j]
        try:
            decoded = base64.b64decode(token + b"=" * (-len(token) % 4), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            decoded = ""
        if " " in decoded and sum(c.isprintable() or c in "\n\t" for c in decoded) >= 0.95 * len(decoded):
            found = _line_hits(_view(decoded), checks, index)
            if found:
                names = dict.fromkeys(n for ns in found.values() for n in ns)
                hits.setdefault(raw.count(b"\n", 0, i), []).append("base64-encoded " + ", ".join(names))
        i = mask.find(_B64_RUN, j)
    return hits

def _split_hits(view: str, checks: tuple[_Check, ...], index: _Index, line_hits: dict[int, list[str]],
                words: set[bytes]) -> dict[int, list[str]]:
    r"""An instruction split over the lines of one paragraph ("ignore your\nprevious\ninstructions"):
    each paragraph is joined into one line and checked again, in one pass; a finding no single line
    of the paragraph had is reported at the paragraph's first line. Joining makes no new word (lines
    are joined with a space), so a view without any of the index's `words` has nothing to find."""
    if not words or "\n" not in view:
        return {}
    lines = view.split("\n")
    joined, first = [], []  # one joined line per paragraph, and where it starts in `lines`
    start = 0
    while start < len(lines):
        end = start
        while end < len(lines) and lines[end].strip():
            end += 1
        if end - start >= 2 and not any(n in line_hits for n in range(start, end)):
            joined.append(" ".join(line.strip(" \t#/*>-") for line in lines[start:end]))
            first.append((start, end - start))
        start = end + 1
    if not joined:
        return {}
    hits: dict[int, list[str]] = {}
    for n, names in _line_hits("\n".join(joined), checks, index).items():
        line, count = first[n]
        hits[line] = [f"{', '.join(dict.fromkeys(names))} (split over {count} lines)"]
    return hits


_ROT13_HINT = re.compile(r"\brot[\s-]?13\b|\bcaesar\b", re.IGNORECASE)


def _may_hint_rot13(view: str) -> bool:
    """False when `view` cannot hold a `_ROT13_HINT`: it has no "caesar" and no "13" after "rot" (and
    a separator), in any case. The view is NFKC: no other character case-folds to the hint's letters.
    A case-insensitive regex scan of a code file costs ~0.1 ms; these searches a few microseconds."""
    low = view.lower()
    if "caesar" in low or not view.isascii():  # (lower() may change the length of non-ASCII text)
        return "13" in view or "caesar" in low
    q = low.find("13")
    while q != -1:
        if low.endswith("rot", 0, q) or (q > 0 and low[q - 1] in " \t\n\r\f\v-" and low.endswith("rot", 0, q - 1)):
            return True
        q = low.find("13", q + 1)
    return False


def _rot13_hits(view: str, checks: tuple[_Check, ...], index: _Index) -> dict[int, list[str]]:
    """Text that says it is ROT13 (the hint a model needs to decode it) is decoded and checked."""
    if not (_may_hint_rot13(view) and _ROT13_HINT.search(view)):
        return {}
    import codecs

    found = _line_hits(codecs.encode(view, "rot13"), checks, index)
    return {line: ["rot13-encoded " + ", ".join(dict.fromkeys(names))] for line, names in found.items()}

