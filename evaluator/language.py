"""A cheap "is this English?" check, for the baseline judge, which reads English signals only.

No language model: the share of very common English function words among the words of the text
(outside code blocks), and the share of ASCII letters among its letters. English prose runs at
30-50 % function words; other languages written in Latin script stay under 10 %, and other
scripts fail the ASCII test. Too short a text (under MIN_WORDS words) is not judged, unless it has
MIN_LETTERS letters: Chinese and Japanese put no spaces between words, so a whole round can be a few
dozen "words" by the pattern below while plainly failing the ASCII test.
"""

from __future__ import annotations

import re

MIN_WORDS = 40
MIN_LETTERS = 120
MIN_FUNCTION_WORD_SHARE = 0.15
MIN_ASCII_LETTER_SHARE = 0.7

_FUNCTION_WORDS = frozenset("""
a about after all also an and any are as at be because been but by can could did do does for from had has
have how i if in into is it its just let me my no not now of ok okay on one or our so some than that the
their them then there these they this to up us was we were what when where which while who why will with
would yes you your i'm it's that's don't we'll i'll let's
""".split())
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def english_warning(text: str) -> str | None:
    """A warning when `text` does not look like English, else None (also for short texts)."""
    prose = _CODE_BLOCK.sub(" ", text)
    words = [w.lower() for w in _WORD.findall(prose)]
    letters = [c for c in prose if c.isalpha()]
    if len(words) < MIN_WORDS and len(letters) < MIN_LETTERS:
        return None
    ascii_share = sum(c.isascii() for c in letters) / len(letters)
    function_share = sum(w in _FUNCTION_WORDS for w in words) / len(words)
    enough_words = len(words) >= MIN_WORDS
    if ascii_share >= MIN_ASCII_LETTER_SHARE and (function_share >= MIN_FUNCTION_WORD_SHARE or not enough_words):
        return None
    return (f"the transcript does not look like English ({function_share:.0%} common English words, "
            f"{ascii_share:.0%} ASCII letters): the baseline judge reads English signals only, so its scores "
            "mean little here; judge it with a model (--model)")
