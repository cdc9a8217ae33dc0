"""Hidden text: what a model may read in candidate text that a person does not see.

The injection checks read a `_view` of the text (NFKC, invisible characters dropped, look-alike
letters of other scripts read as Latin, letter-by-letter spacing closed up), and `neutralise` drops
the same invisible characters before fencing.
"""

from __future__ import annotations

import re
import unicodedata

# controls, word joiners, BOM, the U+E0000 tag block...) and the supplementary variation selectors,
# which can carry a hidden byte each ("emoji smuggling"). The model may read what a person cannot see.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
                        "\U000e0000-\U000e007f\U000e0100-\U000e01ef\U0001d173-\U0001d17a]")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_VARIATION = re.compile("[\U000e0100-\U000e01ef]")

# Letters of other scripts that look like Latin letters and survive NFKC (from Unicode's confusables
# table, single-letter entries for Cyrillic, Greek, Armenian and Latin extensions): "grаder" with a
# Cyrillic а reads as "grader" to a model and must read so to the checks too.
_CONFUSABLES = str.maketrans({
    **dict(zip("аеіјоросухѕԁԛԝһӏɡьԍ", "aeijopocyxsdqwhlgbG", strict=True)),
    **dict(zip("АВЕЅІЈКМНОРСТХУҮԚԜҺԌ", "ABESIJKMHOPCTXYYQWHG", strict=True)),
    **dict(zip("αοιкνρυχκτϲϳ", "aoikvpuxktcj", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧϹ", "ABEZHIKMNOPTYXC", strict=True)),
    **dict(zip("օսոհցզ", "ounhgq", strict=True)),
    **dict(zip("ıɑɩʏʟɴʀꜱ", "iaiylnrs", strict=True)),
})
# Letter-by-letter spacing ("I g n o r e", "N-o-t-e", "i.g.n.o.r.e"): runs of single letters joined
# by one separator, collapsed when a line has a run of at least four (so "a b" and "e.g." stay).
_SPACED = re.compile(r"(?<![^\W_])[^\W_](?:(?P<sep>[ .\-·*_])[^\W_])(?:(?P=sep)[^\W_])*(?![^\W_])")
# The middle of a run of four ("s L s L s" of "L s L s L s L"): every line `_unspace` changes holds
# one, and a pattern opening with a character class is scanned for in C, ~5x faster than `_SPACED`.
_SPACED_CORE = re.compile(r"(?P<sep>[ .\-·*_])[^\W_](?P=sep)[^\W_](?P=sep)")


def _unspace(line: str) -> str:
    runs = list(_SPACED.finditer(line))
    if not any(len(m.group(0)) >= 7 for m in runs):  # 4 letters and 3 separators
        return line
    out, pos = [], 0
    for m in runs:
        out.append(line[pos : m.start()])
        out.append(m.group(0).replace(m.group("sep"), ""))
        pos = m.end()
    out.append(line[pos:])
    return re.sub(r"[ \t]{2,}", " ", "".join(out))


def _visible(text: str) -> str:
    """NFKC ('５／５' is '5/5'), tag characters read as the ASCII they encode, other invisible
    characters dropped. Never adds or removes a newline, so line i is line i of the text."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    if _TAGS.search(text):
        text = _TAGS.sub(lambda m: "".join(chr(ord(c) - 0xE0000) if 0x20 <= ord(c) - 0xE0000 < 0x7F else ""
                                           for c in m.group(0)).replace("\n", " "), text)
    return _INVISIBLE.sub("", text) if _INVISIBLE.search(text) else text


def _view(text: str) -> str:
    """What the checks read: `_visible`, look-alike letters of other scripts read as Latin, and
    letter-by-letter spacing closed up. Line i of the view is line i of the text."""
    text = _visible(text)
    if not text.isascii():
        text = text.translate(_CONFUSABLES)
    if _SPACED_CORE.search(text):
        text = "\n".join(_unspace(line) if _SPACED_CORE.search(line) else line for line in text.split("\n"))
    return text


def invisible_payload(text: str) -> str | None:
    """Why `text` may say something a reader cannot see (tag characters, bidi controls, variation
    selectors carrying data), or None. Zero-width spaces alone are common in pasted text: they are
    not flagged, only removed before the other checks."""
    reasons = []
    tags = "".join(_TAGS.findall(text))
    if tags:
        hidden = "".join(chr(ord(c) - 0xE0000) for c in tags if 0x20 <= ord(c) - 0xE0000 < 0x7F)
        reasons.append(f"invisible Unicode tag characters spelling {hidden[:120]!r}")
    if _BIDI.search(text):
        reasons.append("bidirectional control characters (the text displays in another order than it is read)")
    if len(_VARIATION.findall(text)) >= 4:
        reasons.append("a run of invisible variation selectors (data hidden in them)")
    return "; ".join(reasons) or None
