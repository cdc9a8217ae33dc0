"""Text signals for the offline baseline judge: how a transcript is cut into quotable pieces, and
the pattern tables the baseline scores with.

Everything here is plain data or small pure functions so that a reader can see exactly what the
baseline looks for. Every quote the baseline emits is a slice of a turn's text or of a code line,
so it survives the quote verifier unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from evaluator.models import Transcript

MAX_QUOTE = 200
_I = re.IGNORECASE

# --------------------------------------------------------------------------------------------
# Signal tables. Every entry is a regex (matched case-insensitively). Editing any of them changes
# TABLES_HASH and therefore the baseline's prompt_version, i.e. the cache key.
# --------------------------------------------------------------------------------------------

# A sentence that claims something must hold...
INVARIANT_CUES = [
    r"\bmust (always|never|be|stay|remain|hold)\b", r"\bnever (exceeds?|goes? (above|below|over|under)|"
    r"drops?|returns?|loses?|evicts?|has|holds?|contains?|becomes?|gets?|be)\b", r"\bat all times\b",
    r"\balways (holds?|be|stays?|remains?|has|have|contains?|returns?|equals?|is|are|cites?|matches)\b",
    r"\bguarantee[sd]?\b", r"\binvariants?\b", r"\b(still )?holds\b", r"\bstrictly (increasing|decreasing)\b",
    r"\bmonotonic(ally)?\b", r"\bevery (answer|response|item|entry|key|request|call|chunk|node|citation|step)\b",
    r"\b(at most|at least|no more than|no fewer than|exactly one)\b", r"\bpostcondition\b|\bprecondition\b",
]
# ...and is concrete: it states a relation...
RELATIONS = [
    r"<=|>=|==|!=|≤|≥|(?<![-=])[<>](?!=)", r"\b(less|more|fewer|greater|larger|smaller) than\b",
    r"\bequal(s| to)?\b", r"\b(at most|at least|no more than|exactly)\b", r"\bexceeds?\b", r"\bthe same\b",
    r"\b(sorted|increasing|decreasing|unique|distinct|subset|in sync|in step|consistent with|cites?|cited|"
    r"non-?negative|bounded by)\b", r"\bnever (returns?|has|holds?|contains?|loses?|evicts?|drops?)\b",
    r"\b(is|are|appears?|stays?) (also |always )?in (the|both)\b", r"\bonly (ids|keys|items|entries|chunks)\b",
]
# ...between named things: a quantity, a field, a structure, a code identifier.
ENTITIES = [
    r"\d", r"`[^`]+`", r"\b\w+_\w+\b", r"\b[a-z_]\w+\.\w{2,}", r"\b(one|two|zero|k|n)\b",
    r"\b(capacity|size|len(gth)?|count|limit|budget|tokens?|window|timestamps?|keys?|entries|entry|queue|stack|"
    r"list|dict|map|head|tail|balance|steps?|calls?|requests?|results|items|documents|docs|chunks?|ids?|"
    r"sources|answers?|nodes?|messages|citations?|elements?|values?|heap|index|indices|scores?)\b",
]
# Mentions of invariants that say nothing concrete (used only to explain a low score).
INVARIANT_HOLLOW = [r"\binvariants?\b", r"\bcorrectness\b", r"\bcorrect by construction\b"]
# Prose that *uses* a stated invariant while reasoning.
INVARIANT_USE = [
    r"\bstill holds\b", r"\bpreserv\w+ (the|that|this|our) (invariant|property|rule)\b", r"\bmaintains? the\b",
    r"\bby the invariant\b", r"\bthe invariant (says|tells|means|gives|lets|guarantees|implies)\b",
    r"\bviolat\w+\b", r"\bbreaks? (the )?(invariant|rule|property)\b", r"\bre-?establish\w*\b",
    r"\bcheck(s|ing)? the invariant\b", r"\b(rule|invariant|property) (one|two|three|\d)\b",
]

# Boundary categories: (label, how it is named in prose or a test name, how it is handled in code).
EDGE_CATEGORIES = [
    ("empty input", r"\bempty\b|\bno (documents|docs|results|items|chunks|input|matches|hits)\b|\bblank\b|"
     r"\bzero[- ]length\b|\bnothing (retrieved|found|comes back)\b",
     r"\bif not \w+|len\([^)]*\)\s*==\s*0|==\s*(\"\"|''|\[\]|\{\})|\bif not\b"),
    ("zero / capacity 0", r"\b(capacity|size|limit|k|n|rate|ttl|max\w*|budget)\s*(of|=|==|is|equals)?\s*(0|zero)\b|"
     r"\bzero (capacity|size|limit|tokens|requests)\b",
     r"(<=|==|<)\s*0\b|<\s*1\b"),
    ("None / missing key", r"\bNone (input|value|key|query|argument)s?\b|\b(input|value|key|argument) (is|of) None\b|"
     r"\bnull\b|\bmissing (key|field|value|id)s?\b|\bkey ?error\b|\bnon-?existent\b|\bunknown (key|tool|id)s?\b|"
     r"\bcache miss\b|\b(key|tool|id) (is )?not (found|present)\b",
     r"\bis None\b|\bis not None\b|\.get\(|\bKeyError\b|\bnot in\b"),
    ("negative values", r"\bnegative\b", r"<\s*0\b|<=\s*0\b"),
    ("k larger than n", r"\bk\s*(>|is (larger|bigger|greater) than|exceeds)\s*(n|the number|len|the corpus)|"
     r"\bmore (results|items|documents) than (exist|available|we have)|\bfewer (than k|documents than)\b|"
     r"\bk (larger|bigger|greater) than\b",
     r"\bmin\(\s*k\b|\bmin\([^)]*,\s*k\)|\[:\s*k\]"),
    ("duplicates / existing key", r"\bduplicat\w*|\bsame key\b|\b(updat\w*|overwrit\w*|re-?insert\w*|put\w*) "
     r"(an |the )?existing\b|\bre-?put\w*\b|\bidempoten\w*|\balready (exists|present|in the cache)\b",
     r"\bif \w+ in\b|\bset\(|\bdedup\w*|\bmove_to_end\(|\bis not None\b"),
    ("expiry / TTL boundary", r"\bexpir\w*|\bttl\b|\bstale\b|\b(exactly )?at the (boundary|deadline)\b|"
     r"\bwindow (boundary|edge)\b|\btime ?to ?live\b",
     r"\bexpir\w*|\bmonotonic\(|\btime\.time\(|\bnow\s*(>=|>|-)|\bttl\b"),
    ("timeouts", r"\btime ?outs?\b|\btimed out\b|\bhangs?\b|\bslow (model|call|api|tool)\b",
     r"\btimeout\s*=|\bTimeoutError\b|\bwait_for\(|\btimeout\b"),
    ("failures / errors", r"\b(api|model|tool|network|llm|provider|embedder|call) (errors?|failures?|fails|is down|raises)\b|"
     r"\brate[- ]limited\b|\b429\b|\b5\d\d (errors?|responses?)\b|\b(4|5)xx\b|\bpartial failure\b",
     r"\bexcept\b|\bretr(y|ies)\b|\bbackoff\b|\bstatus(_code)?\s*(==|in|>=)"),
    ("malformed input", r"\bmalformed\b|\binvalid (json|input|format|arguments?|response|output)\b|"
     r"\bunparse?able\b|\bbad (input|json|arguments?)\b|\bgarbage\b|\bwrong type\b|\bschema\b",
     r"\bJSONDecodeError\b|\bValueError\b|\bisinstance\(|\bValidationError\b"),
    ("unicode / encoding", r"\bunicode\b|\bnon-?ascii\b|\bemojis?\b|\butf-?8\b|\bencoding\b",
     r"\.encode\(|\.decode\(|\bnormalize\(|\bunicodedata\b"),
    ("out-of-order / clock", r"\bout[- ]of[- ]order\b|\bclock (skew|goes? backwards?|jumps?)\b|"
     r"\bnon-?monotonic\b|\bunsorted\b|\btimestamps? (in the past|backwards)\b|\bjump backwards\b",
     r"\bsorted\(|\bmonotonic\b|\bbisect\b"),
    ("concurrency", r"\bconcurren\w*|\brace conditions?\b|\bthread[- ]safe\w*|\bsimultaneous\w*|"
     r"\bparallel (requests|calls|writers)\b", r"\bLock\(|\bwith self\._?lock\b|\bSemaphore\("),
    ("oversized input", r"\b(very |too )?(large|huge|long) (input|document|context|prompt|file)s?\b|"
     r"\boverflow\w*|\b(exceeds?|over) the (context|token) (window|limit|budget)\b|\btoo (long|many tokens)\b|"
     r"\b(context|token) budget\b",
     r"\btruncat\w*|\[:\s*max\w*\]|\bmax_tokens\b|\bbudget\b"),
    ("at capacity / full", r"\boff[- ]by[- ]one\b|\b(exactly )?at (the )?(capacity|limit)\b|\bwhen (it'?s |the \w+ is )?"
     r"full\b|\bfull (cache|bucket|queue)\b|\bexactly (equal to )?(the )?(capacity|limit)\b|\bevict\w*",
     r"(>=|>|==)\s*self\.\w*(capacity|limit|max)\w*|\bpopitem\(|\bevict\w*"),
    ("single element", r"\b(only )?(one|a single) (item|element|document|entry|chunk|request)\b|\bcapacity (of )?1\b",
     r"==\s*1\b"),
    ("non-terminating loop", r"\binfinite loops?\b|\bnever (terminat|finish|stop)\w*|\bmax(imum)? "
     r"(steps|iterations|turns)\b|\bloops? forever\b|\bstep (limit|budget)\b",
     r"\bmax_(steps|iter\w*|turns)\b|\bfor \w+ in range\("),
]
EDGE_HOLLOW = [r"\bedge[- ]?cases?\b", r"\bcorner[- ]cases?\b", r"\bboundary (cases?|conditions?)\b"]

# Restraint, positive: scoping down out loud...
RESTRAINT_SCOPE = [
    r"\b(simplest|simple|smallest|minimal|naive|basic|brute[- ]force|straightforward|dumbest)( \w+)? "
    r"(version|thing|approach|implementation|solution|loop|case)\b", r"\bsimplest is\b",
    r"\bstart (with|by) (a |an |the |just )?(simple|plain|single|basic|naive|dict|list|loop|brute|one|"
    r"in-memory|synchronous|smallest|minimal)",
    r"\b(make it|get it) (work|correct|right)\w*\b.{0,40}\b(then|before|first)\b",
    r"\bcorrect(ness)? first\b", r"\bthen (optimi[sz]e|extend|add|generali[sz]e)\b",
    r"\bkeep (it|this|things) simple\b", r"\bone step at a time\b", r"\bless code\b",
]
# ...and deferring named extensions until they are needed.
RESTRAINT_DEFER = [
    r"\b(add|handle|worry about|introduce|bring in|consider) .{0,40}\blater\b",
    r"\bif (we|it|that) (turns out to be |really |ever )?(need|needed|required|becomes a problem|matters|mattered)\b",
    r"\byagni\b", r"\b(don'?t|do not) need (that|it|this|\w+) (yet|now|for this)\b", r"\bnot yet\b",
    r"\bpremature\w*\b", r"\boverkill\b", r"\b(isn'?t|is not|not|neither is) worth it\b",
    r"\b(won'?t|will not|wouldn'?t|not going to) add (it|that|this|a \w+|the \w+) (now|yet)\b",
    r"\bwithout (the |any )?(lock|threads?|async|cache|caching|abstraction)s?\b",
    r"\b(accept|keep|leave) (that|it|this) for now\b", r"\bmeasure (it|first|before)\b",
]
# Premature complexity in code: (label, code regex, interviewer words that would justify it).
PREMATURE_CODE = [
    ("threads/locks", r"\bimport threading\b|\bthreading\.|\bLock\(|\bRLock\(|\bmultiprocessing\b|"
     r"\bconcurrent\.futures\b|\bThreadPool\w*", r"thread|concurren|parallel|lock|race|multiple (workers|processes)"),
    ("asyncio", r"\bimport asyncio\b|\basyncio\.|\basync def\b", r"async|concurren|parallel|await|non-?blocking"),
    ("caching layer", r"@(functools\.)?(lru_cache|cache|cached)\b|\bredis\b|\bmemcache", r"cach|memo|redis"),
    ("abstraction layers", r"\bABC\b|@abstractmethod|\bclass \w*(Factory|Registry|Plugin|Strategy|Manager"
     r"Base|Interface|Observer)\b|\bmetaclass\s*=|\bregister_plugin\b", r"extensib|plugin|pluggable|swap|"
     r"interface|abstract|multiple (backends|providers|stores)"),
]
PREMATURE_PROSE = [
    r"\b(distributed|microservices?|kubernetes|sharded|horizontally scal\w+|production[- ]ready|"
    r"enterprise[- ]grade|plugin (system|architecture)|fully generic|framework|extensible design|pluggable)\b",
    r"\b(add|use|build|set up) (a |an )?(cache|caching layer|message queue|thread pool|worker pool|factory|"
    r"registry|abstract base class)\b.{0,30}\b(up ?front|from the start|right away|first)\b",
    r"\bfrom the start\b",
]
LARGE_FIRST_BLOCK = 60  # non-blank lines in the first code block before it looks like a big-bang design
SMALL_FIRST_BLOCK = 30  # a first block this small, followed by more blocks, counts as building in steps

# Mistakes: candidate admissions, failing output, and interviewer challenges.
MISTAKE_CANDIDATE = [
    r"\b(a|the|that'?s a|there'?s a|found a|my|this is a|have a) bug\b", r"\b(is|was|that'?s|it'?s|i'?m|i was|"
    r"got (it|that)|had (it|that)) wrong\b", r"\b(my )?mistake\b", r"\b(oops|whoops)\b",
    r"\b(that|this|it|the test|test|the assert\w*) (fails|failed|breaks|broke|errors?|crashes|crashed)\b",
    r"\bgood catch\b", r"\byou'?re right\b", r"\bI (missed|forgot|overlooked|mixed up)\b", r"\bmy bad\b",
    r"\bdoesn'?t (work|pass)\b", r"\b(oh|ah),? (wait|no)\b", r"\bI never (append|add|delete|remove|call|check)\w*\b",
    r"\btest_\w+` (fails|failed)\b", r"\b(fails|failed)\b.{0,20}\bError\b",
]
MISTAKE_OUTPUT = [r"Traceback \(most recent call last\)", r"\bAssertionError\b", r"\bFAILED\b",
                  r"\b\d+ failed\b", r"^\s*E\s+\w+Error\b", r"\b(Key|Type|Index|Attribute|Value|Name)Error\b:"]
MISTAKE_INTERVIEWER = [r"\bthere'?s a bug\b", r"\bthat'?s (not right|wrong|incorrect)\b",
                       r"\b(that|this|it) (doesn'?t|does not|won'?t|will not) work\b",
                       r"\bthe test (fails|failed|is failing)\b", r"\blook (again|closely) at\b"]
# Interviewer probes only count as a mistake when the candidate's next turn acknowledges one.
PROBE_INTERVIEWER = [r"\bwhat happens (if|when|to)\b", r"\bis that right\b", r"\bare you sure\b",
                     r"\bwhat about\b", r"\bwhat if\b", r"\bwalk me through\b", r"\bdoes it\?", r"\bwhat does\b"]
ACKNOWLEDGE = [r"\bgood catch\b", r"\byou'?re right\b", r"\bI (missed|forgot|overlooked)\b", r"\bmy bad\b",
               r"\b(a|that'?s a|there'?s a) bug\b", r"\b(oops|whoops)\b", r"\bthat'?s wrong\b",
               r"\b(ah|oh),? (no|wait|I see)\b", r"\bit (would|will) (break|fail|crash)\b", r"\bI never\b"]
# Words that make a "that fails" sentence hypothetical rather than an admission.
HYPOTHETICAL = [r"\b(if|when|whether|in case|unless|could|might|would|avoid|prevent|otherwise|so that)\b"]
RECOVERY_CAUSE = [r"\bbecause\b", r"\bthe (problem|issue|bug|cause|mistake) (is|was)\b",
                  r"\bI (forgot|missed|didn'?t|never)\b", r"\bthe reason\b", r"\bcaused by\b", r"\bso the\b.{0,60}\bdisagree"]
RECOVERY_RESET = [r"\bstep back\b", r"\b(smaller|simpler|minimal) (version|case|example|input)\b",
                  r"\blet me (re-?think|reconsider|slow down|trace|walk through|re-?read|check)\b",
                  r"\bback to\b", r"\bby hand\b", r"\btrace (it|this|through)\b"]
RECOVERY_FIX = [r"\bfix(ed|ing)?\b", r"\bchang(e|ed|ing) .{1,40}\bto\b", r"\bswap(ped)?\b", r"\bcorrect(ed)?\b",
                r"\bbecomes\b", r"\bI'?ll (add|append|make|move|use)\b"]
RECOVERY_VERIFIED = [r"\btests? (now |all |both )?(pass|passes|passed|passing)\b",
                     r"\b(now|all|both)( \w+)? (tests )?(pass|passes|passing)\b", r"\bnow (it )?works\b",
                     r"\bgreen\b", r"\b\d+ passed\b", r"\bworks now\b", r"\brunning (it )?again\b"]
PANIC = [("lost", r"\bI'?m (so |completely |totally )?(lost|confused|stuck)\b|\bno idea\b|"
          r"\bnot sure what'?s (going on|happening|wrong)\b|\bI don'?t know what'?s (wrong|happening)\b"),
         ("distress", r"\bnervous\b|\boh no\b|\bpanick?\w*\b|\bfreaking out\b"),
         ("rewrite everything", r"\b(rewrite|redo|scrap|throw away|start over)\b.{0,20}\b(everything|it all|"
          r"the whole thing|from scratch)\b"),
         ("giving up", r"\bI give up\b|\blet'?s (just )?move on\b|\bskip (it|this)\b"),
         ("apologising", r"\bsorry\b|\bapologi[sz]e\b")]

# Cost awareness: quantities (with a kind label), trade-off wording, and bare topic words.
COST_QUANTITIES = [
    ("big-O", r"\bO\(\s*[^()]{1,20}(\([^()]*\))?[^()]{0,10}\)"),
    ("time", r"\b\d[\d,.]*\s?(k\s?)?(ms|milliseconds?|seconds?|secs?|s|minutes?)\b|"
     r"\b(one|two|a few|several) (to (two|three|five|ten) )?(milli)?seconds\b"),
    ("tokens", r"\b\d[\d,.]*\s?(k|K|M)?\s?(tokens?|toks?)\b|\btokens? per\b"),
    ("calls", r"\b\d[\d,.]*\s?(model |LLM |API |embedding |tool )?(calls?|requests?|round[- ]trips?|queries)\b|"
     r"\b(one|a single|two|three|N|n|k|\d+) (model |LLM |API |embedding |tool )?(calls?|requests?|round[- ]trips?) "
     r"per\b|\b(calls?|requests?|round[- ]trips?) per (query|question|request|user|answer|step|turn|document)\b|"
     r"\b(one|a single|two|three|an extra|one extra|no) (extra |more |fewer )?(model|LLM|API|embedding) calls?\b"),
    ("money", r"\$\s?\d|\b\d[\d,.]*\s?(dollars?|cents?|usd)\b|\b(fraction of a|a few) cents?\b"),
    ("rate", r"\b\d[\d,.]*\s?(k\s?)?(rps|qps|tps|/s|/min|per (second|minute|hour|day|request|query|user))\b"),
    ("memory", r"\b\d[\d,.]*\s?(kb|mb|gb|bytes)\b|\b(few|\d+) million (entries|vectors|items|chunks)\b"),
]
COST_TRADEOFF = [r"\binstead of\b", r"\btrade-?offs?\b", r"\bcheaper\b", r"\bat the cost of\b",
                 r"\bin exchange for\b", r"\bworth (it|the)\b", r"\b(versus|vs\.?)\b", r"\bsaves?\b",
                 r"\bonly if\b", r"\bamortiz\w*\b", r"\bbatch(ed|ing|es)?\b", r"\bcache (the )?(embeddings|results|responses)\b",
                 r"\bskip(s|ping)? the (model|llm|call)\b", r"\b(avoid|save) (a|the|an extra) (model |llm )?call\b"]
COST_TOPIC = [r"\b(cost|costs|latency|tokens?|expensive|cheap|budget|throughput|performance|efficien\w*|"
              r"scal\w+|fast|slow)\b"]
# An interviewer turn that asks about cost: answers to it are "prompted".
COST_PROMPT = [r"\b(cost|costs|complexity|expensive|latency|tokens?|how many (calls|requests|tokens)|numbers|"
               r"memory|how fast|big-?o)\b|\bO\("]

TABLES = {
    "invariant": [INVARIANT_CUES, RELATIONS, ENTITIES, INVARIANT_HOLLOW, INVARIANT_USE],
    "edge_cases": [EDGE_CATEGORIES, EDGE_HOLLOW],
    "restraint": [RESTRAINT_SCOPE, RESTRAINT_DEFER, PREMATURE_CODE, PREMATURE_PROSE, LARGE_FIRST_BLOCK,
                  SMALL_FIRST_BLOCK],
    "recovery": [MISTAKE_CANDIDATE, MISTAKE_OUTPUT, MISTAKE_INTERVIEWER, PROBE_INTERVIEWER, ACKNOWLEDGE,
                 HYPOTHETICAL, RECOVERY_CAUSE, RECOVERY_RESET, RECOVERY_FIX, RECOVERY_VERIFIED, PANIC],
    "cost_awareness": [COST_QUANTITIES, COST_TRADEOFF, COST_TOPIC, COST_PROMPT],
}
TABLES_HASH = hashlib.sha256(json.dumps(TABLES, sort_keys=True).encode()).hexdigest()[:10]


def compile_all(patterns: list[str]) -> list[re.Pattern[str]]:
    """One case-insensitive alternation per table: a single scan per sentence keeps the judge fast.
    (Rubric-supplied regexes are compiled one by one instead, as they may use group references.)"""
    return [re.compile("|".join(f"(?:{p})" for p in patterns), _I | re.MULTILINE)] if patterns else []


# --------------------------------------------------------------------------------------------
# Cutting a transcript into quotable pieces.
# --------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(^[ \t]*\1[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[`A-Z0-9])")
_LEAD = re.compile(r"^(\s*([-*+>]|\d+[.)])\s+)+")


@dataclass(frozen=True)
class Piece:
    """A quotable unit: a sentence of prose or one line of code. `pos` orders pieces in time:
    (turn position, character offset); attached code files sort after every turn."""

    source: str
    text: str
    pos: tuple[int, int]
    role: str  # "candidate" | "interviewer"
    kind: str  # "prose" | "code" | "comment"
    context: str = ""  # for code: "impl", "test" or "module"


@dataclass
class View:
    """The transcript as the baseline sees it: candidate and interviewer prose, and code lines."""

    candidate: list[Piece]
    interviewer: list[Piece]
    code: list[Piece]
    first_code_pos: tuple[int, int] | None
    turn_count: int
    block_sizes: list[int] = field(default_factory=list)  # non-blank lines per candidate code block


def _sentences(text: str, start: int) -> list[tuple[int, str]]:
    """Split a prose span into (offset, sentence) pairs; every sentence is a slice of `text`."""
    out: list[tuple[int, str]] = []
    for line_match in re.finditer(r"[^\n]+", text):
        line, base = line_match.group(), start + line_match.start()
        cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(line)] + [len(line)]
        for a, b in zip(cuts, cuts[1:]):
            raw = line[a:b]
            lead = _LEAD.match(raw)
            skip = lead.end() if lead else 0
            sentence = raw[skip:].strip()
            if len(re.sub(r"\W", "", sentence)) >= 3:
                out.append((base + a + skip, sentence))
    return out


def _code_lines(code: str, source: str, pos: tuple[int, int]) -> list[Piece]:
    """Lines of a code block, tagged with whether they sit in a test function, another function,
    or at module level (module-level asserts behave like a test script)."""
    pieces: list[Piece] = []
    scope, scope_indent = "module", -1
    for i, line in enumerate(code.splitlines()):
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if scope != "module" and indent <= scope_indent and not stripped.startswith(("@", ")", "]")):
            scope, scope_indent = "module", -1
        m = re.match(r"(async\s+)?def\s+(\w+)", stripped)
        if m and scope == "module":
            scope = "test" if m.group(2).startswith("test") else "impl"
            scope_indent = indent
        elif re.match(r"class\s+Test", stripped) and scope == "module":
            scope, scope_indent = "test", indent
        kind = "comment" if stripped.startswith("#") else "code"
        pieces.append(Piece(source, stripped[:MAX_QUOTE], (pos[0], pos[1] + i), "candidate", kind, scope))
        if kind == "code" and "#" in stripped and not re.search(r"[\"'][^\"']*#", stripped):
            comment = stripped[stripped.index("#"):].strip()
            pieces.append(Piece(source, comment[:MAX_QUOTE], (pos[0], pos[1] + i), "candidate", "comment", scope))
    return pieces


def build_view(transcript: Transcript) -> View:
    """Cut the transcript into candidate prose, interviewer prose and candidate code lines.

    If the speakers were not recognised (one "unknown" block), or no turn is marked as the
    candidate's, every non-interviewer turn is treated as the candidate's."""
    turns = sorted(transcript.turns, key=lambda t: t.index)
    has_candidate = any(t.role == "candidate" for t in turns)
    cand_roles = {"candidate"} if transcript.speakers_recognised and has_candidate else {"candidate", "unknown"}
    view = View([], [], [], None, len(turns))
    for n, turn in enumerate(turns):
        role = "candidate" if turn.role in cand_roles else "interviewer" if turn.role == "interviewer" else None
        if role is None:
            continue
        fences = list(_FENCE.finditer(turn.text))
        cursor = 0
        spans = [(f.start(), f.end()) for f in fences] + [(len(turn.text), len(turn.text))]
        for a, b in spans:
            for off, sentence in _sentences(turn.text[cursor:a], cursor):
                (view.candidate if role == "candidate" else view.interviewer).append(
                    Piece(turn.id, sentence, (n, off), role, "prose"))
            cursor = b
        if role != "candidate":
            continue
        blocks = [b.code for b in turn.code_blocks]
        if not blocks:  # fall back to the fences themselves when ingest did not extract blocks
            blocks = [re.sub(r"\A[^\n]*\n|\n?[ \t]*(```|~~~)[ \t]*\Z", "", f.group()) for f in fences]
        for k, code in enumerate(blocks):
            off = fences[k].start() if k < len(fences) else len(turn.text)
            if view.first_code_pos is None:
                view.first_code_pos = (n, off)
            view.block_sizes.append(sum(1 for ln in code.splitlines() if ln.strip()))
            view.code.extend(_code_lines(code, turn.id, (n, off)))
    for k, f in enumerate(transcript.code_files):
        view.code.extend(_code_lines(f.content, f.name, (len(turns) + k, 0)))
    return view


def clip(text: str, start: int = 0, end: int = 0) -> str:
    """A verbatim slice of `text` of at most MAX_QUOTE characters, centred on [start, end)."""
    if len(text) <= MAX_QUOTE:
        return text
    a = max(0, min(start - 60, len(text) - MAX_QUOTE))
    b = min(len(text), a + MAX_QUOTE)
    if a > 0 and " " in text[a:a + 30]:
        a = text.index(" ", a) + 1
    if b < len(text) and " " in text[b - 30:b]:
        b = text.rindex(" ", a, b)
    return text[a:b].strip()


def first_hit(patterns: list[re.Pattern[str]], text: str) -> re.Match[str] | None:
    for p in patterns:
        m = p.search(text)
        if m:
            return m
    return None


def quote_of(piece: Piece, patterns: list[re.Pattern[str]] | None = None) -> str:
    """The quotable part of a piece, centred on the first matching pattern when it is long."""
    m = first_hit(patterns, piece.text) if patterns else None
    return clip(piece.text, m.start(), m.end()) if m else clip(piece.text)
