"""Text signals for the offline baseline judge: the tables of `tables/` compiled, and the small
detectors that find those signals in a transcript view (see `segment.py` for how the view is cut).

Everything here is small pure functions so that a reader can see exactly what the baseline looks for;
the scoring policy itself lives in one module per dimension (`invariant.py`, `edge_cases.py`,
`restraint.py`, `recovery.py`, `cost.py`), wired into the judge by `baseline.py`.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

from evaluator.judge import tables as T
from evaluator.judge.segment import Piece, View

_I = re.IGNORECASE
# Re-exported: the scorers and the judge's prompt_version read these through this module.
TABLES, TABLES_HASH, tables_hash = T.TABLES, T.TABLES_HASH, T.tables_hash
LARGE_FIRST_BLOCK, SMALL_FIRST_BLOCK = T.LARGE_FIRST_BLOCK, T.SMALL_FIRST_BLOCK



# --------------------------------------------------------------------------------------------
# The tables compiled, and cached matchers over them.
# --------------------------------------------------------------------------------------------

def compile_all(patterns: list[str]) -> list[re.Pattern[str]]:
    """One case-insensitive alternation per table: a single scan per sentence keeps the judge fast.
    (Rubric-supplied regexes are compiled one by one instead, as they may use group references.)"""
    return [re.compile("|".join(f"(?:{p})" for p in patterns), _I | re.MULTILINE)] if patterns else []


# Each table as one combined regex; the few tables whose parts carry labels are also kept apart.
P = {name: compile_all(table) for name, table in {
    "cues": T.INVARIANT_CUES, "quantified": T.INVARIANT_QUANTIFIED, "self_claim": [T.SELF_CLAIM],
    "relations": T.RELATIONS, "entities": T.ENTITIES, "inv_hollow": T.INVARIANT_HOLLOW,
    "inv_use": T.INVARIANT_USE, "inv_prompt": T.INVARIANT_PROMPT, "inv_design": T.INVARIANT_DESIGN,
    "edge_hollow": T.EDGE_HOLLOW, "edge_probe": T.EDGE_PROBE, "test_param": [T.TEST_PARAM],
    "scope": T.RESTRAINT_SCOPE, "defer": T.RESTRAINT_DEFER,
    "prem_prose": T.PREMATURE_PROSE, "mistake_c": T.MISTAKE_CANDIDATE, "mistake_i": T.MISTAKE_INTERVIEWER,
    "direct": T.DIRECT_HINT, "nudge": T.NUDGE_INTERVIEWER,
    "hedge": T.HEDGE, "flail": T.FLAIL,
    "probe": T.PROBE_INTERVIEWER, "ack": T.ACKNOWLEDGE, "hypo": T.HYPOTHETICAL, "cause": T.RECOVERY_CAUSE,
    "intentional": T.INTENTIONAL, "supposition": [T.SUPPOSITION], "hinted": T.HINTED,
    "reset": T.RECOVERY_RESET, "fix": T.RECOVERY_FIX, "verified": T.RECOVERY_VERIFIED,
    "claim": T.CLAIM_MISTAKE, "mechanism": T.MECHANISM, "attempt": T.ATTEMPT, "extension": T.EXTENSION_REQUEST,
    "exit_guard": T.EXIT_GUARD, "exit_line": T.EXIT_LINE, "edge_test": T.EDGE_TEST,
    "edge_question": T.EDGE_QUESTION, "property_test": T.PROPERTY_TEST, "universal": T.UNIVERSAL,
    "test_request": T.TEST_REQUEST,
    "failure": T.FAILURE_DESCRIBED, "scenario": T.SCENARIO,
    "tradeoff": T.COST_TRADEOFF, "topic": T.COST_TOPIC, "cost_prompt": T.COST_PROMPT,
    "quant": [p for _, p in T.COST_QUANTITIES], "edge_prose": [p for _, p, _ in T.EDGE_CATEGORIES]}.items()}
P["output"] = [re.compile("|".join(T.MISTAKE_OUTPUT), re.MULTILINE)]  # case matters: FAILED, KeyError:
EDGE = [(label, re.compile(prose, _I), re.compile(code, _I)) for label, prose, code in T.EDGE_CATEGORIES]
# Code patterns are case-sensitive (`ABC` the class, not the string "abc").
PREMATURE = [(label, re.compile(code), re.compile(why, _I)) for label, code, why in T.PREMATURE_CODE]
PANIC_RX = [(label, re.compile(p, _I)) for label, p in T.PANIC]
QUANT = [(label, re.compile(p, _I)) for label, p in T.COST_QUANTITIES]
STOPWORDS = set(T.INVARIANT_STOPWORDS)
CHECK_RX = re.compile(T.CHECK_LINE)
GUARD_RX = re.compile(T.GUARD_LINE)
EDGE_DATA = {label: re.compile(rx) for label, rx in T.EDGE_TEST_DATA.items()}
_LITERAL = re.compile(r"`([^`]{2,40})`|\"([^\"]{2,40})\"|(?<!\w)'([^']{2,40})'(?!\w)")
TEST_DEF = re.compile(r"(async\s+)?def\s+test")
NEGATED = re.compile(T.NEGATION, _I)


@lru_cache(maxsize=1 << 16)
def find(table: str, text: str) -> re.Match[str] | None:
    """First match of a signal table in a text. Cached: pure, and several scorers ask the same thing."""
    return P[table][0].search(text)


@lru_cache(maxsize=1 << 14)
def labels(text: str) -> tuple[str, ...]:
    """Edge-case categories a sentence (or a test's name) mentions."""
    return tuple(label for label, prose_rx, _ in EDGE if prose_rx.search(text))


@lru_cache(maxsize=1 << 14)
def kinds(text: str) -> frozenset[str]:
    """Kinds of quantity (big-O, tokens, calls, ...) in a text; one combined scan gates the rest."""
    return frozenset(label for label, rx in QUANT if rx.search(text)) if find("quant", text) else frozenset()


def literals(text: str) -> set[str]:
    """Example inputs quoted in a sentence ("like "30m1h"", "`[]`"): quoted strings with a digit or a
    symbol in them, not plain words, which would match any code line."""
    found = {next(g for g in m.groups() if g) for m in _LITERAL.finditer(text)}
    return {x for x in found if re.search(r"[\d\W]", x) and not re.fullmatch(r"[A-Za-z_.]+(\(\))?", x)}


_IDENT = re.compile(r"[A-Za-z_]\w{2,}")
_TICKED = re.compile(r"`([^`]{1,60})`")


def names(text: str) -> set[str]:
    """Words of a sentence that could be code names: any word of three or more characters (`history`,
    `pop`), and every name inside backticks however short (`r`, `q[0]`)."""
    ticked = {n for span in _TICKED.findall(text) for n in re.findall(r"[A-Za-z_]\w*", span)}
    return set(_IDENT.findall(text)) | ticked


def distinct(pieces: list[Piece]) -> list[Piece]:
    """Drop repeats of the same sentence (compared without case and punctuation), keeping the first."""
    seen: set[str] = set()
    out = []
    for p in pieces:
        key = re.sub(r"\W+", " ", p.text.lower()).strip()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def hits(pieces: list[Piece], table: str) -> list[Piece]:
    """Pieces matching a table, without repeats of the same sentence."""
    return distinct([p for p in pieces if find(table, p.text)])


# --------------------------------------------------------------------------------------------
# Detectors: the signals each scorer weighs, found in a transcript view.
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=1 << 16)
def terms(text: str) -> frozenset[str]:
    """Content words of a statement or code line (4-letter stems, `size`/`len` folded), used to tell
    whether an assert checks the property an invariant talks about."""
    words = re.findall(r"[a-z]+", text.lower().replace("_", " ").replace(".", " "))
    return frozenset(T.INVARIANT_SYNONYMS.get(w, w)[:4] for w in words if len(w) >= 3 and w not in STOPWORDS)


def checks(code: list[Piece]) -> list[Piece]:
    """Assert lines and `if ...: raise` guards (an `if` line directly followed by a raise)."""
    out = []
    # The shifted copy is one longer than `code`; the pair list ends with `code`.
    for prev, cur in zip([None, *code], code, strict=False):
        if cur.kind != "code":
            continue
        if CHECK_RX.match(cur.text) and not cur.text.startswith("raise"):
            out.append(cur)
        elif cur.text.startswith("raise") and prev is not None and prev.text.startswith(("if ", "elif ")):
            out.append(prev)
    return out


def before_code(piece: Piece, view: View) -> bool:
    """Whether a prose statement came before the candidate's first code block. A comment at the top of
    the first block (before any code line of it) counts too: it is written before the code it governs."""
    if piece.kind == "comment" and view.first_code_pos is not None and piece.pos[0] == view.first_code_pos[0]:
        first_block = [p for p in view.code if p.pos[0] == piece.pos[0] and p.kind == "code"]
        return bool(first_block) and len([p for p in first_block if p.pos < piece.pos]) <= 3
    if piece.kind != "prose":
        return False
    if view.first_code_pos is not None:
        return piece.pos < view.first_code_pos
    # Only attached files: timing is unknown, so credit statements in the first third of the talk.
    return bool(view.code) and piece.pos[0] < max(1, view.turn_count // 3)


def premature(view: View) -> list[tuple[str, Piece, bool]]:
    """Unrequested concurrency, caching or abstraction layers: (label, line, in the first code?).
    Justified when the interviewer mentioned the need before the line appears."""
    first_turn = view.first_code_pos[0] if view.first_code_pos else None
    found = []
    for label, code_re, why_re in PREMATURE:
        line = next((p for p in view.code if p.kind == "code" and code_re.search(p.text)), None)
        asked = line is not None and any(i.pos < line.pos and why_re.search(i.text) for i in view.interviewer)
        if line is not None and not asked:
            found.append((label, line, first_turn is None or line.pos[0] == first_turn))
    return found


def big_talk(view: View) -> list[Piece]:
    """Heavyweight designs proposed in prose, unless negated just before ("we don't need sharding")
    or explicitly deferred ("a plugin system later, if we need it")."""
    out = []
    for p in hits(view.candidate, "prem_prose"):
        m = find("prem_prose", p.text)
        if m and not NEGATED.search(p.text[max(0, m.start() - 25):m.start()]) and not find("defer", p.text):
            out.append(p)
    return out


def prompted_turns(view: View) -> dict[int, bool]:
    """For each turn position: was the latest interviewer turn before it a question about cost
    (a cost word and a question mark in the same turn; "both operations should be O(1)" is a spec)?"""
    asks: dict[int, list[bool]] = {}
    for p in view.interviewer:
        flags = asks.setdefault(p.pos[0], [False, False])
        flags[0] |= bool(find("cost_prompt", p.text))
        flags[1] |= p.text.rstrip().endswith("?")
    out, last = {}, False
    for n in range(view.turn_count):
        out[n] = last
        last = all(asks[n]) if n in asks else last
    return out


def bodies_of_tests(view: View) -> list[tuple[Piece, list[Piece]]]:
    """Each test function's `def` line with the lines of its body (up to the next test in the block)."""
    out = []
    for t in (p for p in view.code if p.context == "test" and TEST_DEF.match(p.text)):
        block = [p for p in view.code if p.context == "test" and p.pos[0] == t.pos[0] and p.pos > t.pos]
        out.append((t, list(itertools.takewhile(lambda p: not TEST_DEF.match(p.text), block))))
    return out
