"""Secret redaction and terminal-safe output: what leaves the process carries no key and no escape."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# ---------------------------------------------------------------------------------------------------
# Secrets
#
# A provider's error body may echo the API key it refused ("Incorrect API key provided: sk-..."), and
# that text becomes a stored reason, an exchange's error, a flag, a printed message. `redact` is applied
# where text leaves the process (the store's writes, printed judgments, error messages), so no caller
# has to remember it. It removes every configured secret (environment variables whose names say KEY,
# TOKEN, SECRET or PASSWORD, and values passed to `register_secret`) and anything shaped like a
# provider key or a bearer token.
# ---------------------------------------------------------------------------------------------------

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_CHARS = 8
_registered: set[str] = set()
_KEY_CHARS = r"[A-Za-z0-9_*-]"
# (words that start a secret, lower case; the pattern matched where one of them occurs). Only the
# places where a start word occurs are tried: a regex scan of a whole stored prompt costs ~0.5 ms
# per KB, and every string written to the store goes through here.
_SECRET_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (starts, re.compile(pattern, re.IGNORECASE)) for starts, pattern in (
        # OpenAI, Anthropic
        (("sk-", "rk-", "pk-"), r"(?<![\w-])[srp]k-(?:[A-Za-z0-9]{2,12}-){0,3}" + _KEY_CHARS + "{16,}"),
        (("akia", "asia"), r"(?<![\w-])(?-i:AKIA|ASIA)(?-i:[A-Z0-9]){16}(?![\w-])"),  # AWS access key ids
        (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), r"(?<![\w-])(?:gh[pousr]_|github_pat_)\w{20,}"),
        (("xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"), r"(?<![\w-])xox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
        (("aiza",), r"(?<![\w-])(?-i:AIza)[0-9A-Za-z_-]{30,}"),  # Google
        (("hf_", "gsk_", "glpat-", "r8_"), r"(?<![\w-])(?:hf_|gsk_|glpat-|r8_)" + _KEY_CHARS + "{20,}"),
        (("eyj",), r"(?<![\w-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWTs
        (("bearer", "basic"), r"(?<![\w-])(?P<keep>(?:bearer|basic)\s+)[A-Za-z0-9._~+/=*-]{8,}"),
        (("api_key", "api-key", "apikey", "access_token", "access-token", "auth_token", "auth-token", "secret_key",
          "secret-key", "client_secret", "client-secret", "password", "authorization"),
         r"(?P<keep>[\w-]+[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)(?=[^\s\"',;}{)]*[0-9])[^\s\"',;}{)]{8,}"),
    )
)


# Start words sharing a rare piece are found with one search for the piece, then compared in place:
# 20 searches of the text instead of 37 (each costs ~15 us on a 30 KB prompt; a regex alternation of
# the words costs more than all of them, as `re` tries the branches at every candidate letter). A
# piece must be rare in prompts ("gh": ~15 in 30 KB), as each occurrence is compared in Python.
_SHARED_PIECES = ("k-", "gh", "xox", "api", "ecret", "_token", "-token")


def _shape_searches() -> dict[bytes, tuple[tuple[bytes, int, re.Pattern[str]], ...]]:
    """Each piece -> (start word, offset of the piece in it, pattern): every occurrence of a word is one of
    its piece, at the word's offset."""
    found: dict[bytes, list[tuple[bytes, int, re.Pattern[str]]]] = {}
    for starts, pattern in _SECRET_SHAPES:
        for first in starts:
            piece = next((p for p in _SHARED_PIECES if p in first), first)
            found.setdefault(piece.encode(), []).append((first.encode(), first.index(piece), pattern))
    return {piece: tuple(words) for piece, words in found.items()}


_SHAPE_SEARCHES = _shape_searches()


def _redact_shapes(text: str) -> str:
    low = text.encode("ascii", "replace").lower()  # one byte per character: offsets are the text's
    spans: list[tuple[int, int, str]] = []
    for piece, words in _SHAPE_SEARCHES.items():
        q = low.find(piece)
        while q != -1:
            for word, offset, pattern in words:
                p = q - offset
                if p >= 0 and low.startswith(word, p):
                    m = pattern.match(text, p)
                    if m:
                        spans.append((m.start(), m.end(), (m.groupdict().get("keep") or "") + REDACTED))
            q = low.find(piece, q + 1)
    if not spans:
        return text
    out, pos = [], 0
    for start, end, replacement in sorted(spans):
        if start < pos:  # overlaps one already replaced
            continue
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def register_secret(value: str | None) -> None:
    """Treat `value` as a secret from now on (a key given some other way than the environment)."""
    if value and len(value) >= _MIN_SECRET_CHARS:
        _registered.add(value)


def _configured_secrets() -> list[str]:
    import os

    found = set(_registered)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and len(value.strip()) >= _MIN_SECRET_CHARS:
            found.add(value.strip())
    return sorted(found, key=len, reverse=True)


def _redact_text(secrets: tuple[str, ...], text: str) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _redact_shapes(text)


# A long text is often written again unchanged (the same request in every sample of an ensemble, a
# transcript's turns judged against another rubric): its redaction is kept for the same secrets. A
# string hashes once (~10 us for 30 KB) and a repeat then costs nothing; 32 entries hold ~2 MB.
_CACHE_MIN_CHARS = 2048
_redact_long = lru_cache(maxsize=32)(_redact_text)


def redactor() -> Callable[[str], str]:
    """`redact` with the configured secrets looked up once: for redacting many strings at a time."""
    secrets = tuple(_configured_secrets())

    def redact_one(text: str) -> str:
        if not text:
            return text
        return (_redact_long if len(text) >= _CACHE_MIN_CHARS else _redact_text)(secrets, text)

    return redact_one


def redact(text: str) -> str:
    """`text` without any configured secret or anything shaped like a key or bearer token."""
    return redactor()(text) if text else text


def redact_value(value: object, _redact: Callable[[str], str] | None = None) -> object:
    """`redact` over every string inside JSON-like data (dicts, lists), other values unchanged."""
    one = _redact or redactor()
    if isinstance(value, str):
        return one(value)
    if isinstance(value, dict):
        return {k: redact_value(v, one) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, one) for v in value]
    return value


# A whole escape sequence (CSI incl. the 8-bit form, OSC up to BEL/ST, other two-byte ESC forms), then
# any other control character: C0 but tab and newline, DEL, C1, and bidi overrides that reorder what
# a terminal shows.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?|\x1b.?"
    "|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
    re.DOTALL,
)


def for_terminal(text: str) -> str:
    """`text` safe to print: no escape sequence or control character from a transcript, a file name or
    a model's reply can move the cursor, recolour, retitle or clear the user's terminal."""
    return _ESCAPES.sub("", text) if text else text
