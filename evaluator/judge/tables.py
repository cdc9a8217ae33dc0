"""The pattern tables of the offline baseline judge: what it looks for, as plain data.

Each table is a list of regexes (or labelled tuples of them) that `signals.py` compiles and the scorers
in `baseline.py` and `recovery.py` weigh. Keeping them apart from the code lets a reader see exactly
what the baseline reacts to, and makes their content hash (part of the cache key) cover all of them.
"""

from __future__ import annotations

import hashlib
import json

# --------------------------------------------------------------------------------------------
# Signal tables. Entries are regexes, matched case-insensitively unless noted. Editing any of them changes
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
# A guarantee needs no special word: it is universally quantified over calls, paths, inputs or time.
INVARIANT_QUANTIFIED = [
    r"\balways\b", r"\bis (ever|never)\b",
    r"\b(every|each|all|any) \w+( \w+)? (is|are|has|have|stays?|remains?|gets?|appears?|returns?|sits?|comes?)\b",
    r"\bthe (\w+ )?(property|rule|contract) (is|here|:)", r"\b(at most|exactly) once\b",
    r"\bat any (moment|time|point|instant)\b",
    r"\b(after|before|at the end of|on) (each|every|any) (\w+ )?(call|operation|put|get|push|pop|step|iteration|"
    r"transfer|update|write|insert|request|event|change|mutation|run|loop|round|batch|return|append)s?\b",
    r"\bbefore and after (each|every|any)\b", r"\bwhatever (happens|the input|the order|sequence|it is|we do)\b",
    r"\bno matter (what|how|which|when)\b", r"\b(every|each|any) (exit )?(path|branch)\b|\bevery return\b",
    r"\bfor (any|every|all|each) (input|sequence|order|call|key|value|list|document|request|n|k)s?\b",
    r"\bin (any|every) (\d+[- ]\w+ )?(window|span|interval|order|sequence|state)\b",
    r"\b(should|has to|have to|needs? to|must|will) (always )?(hold|be true|stay true|remain true)\b",
    r"\bwhat (has|needs|must) to be true\b", r"\b(contract|promises?)\b",
    r"\bnever (more|less|fewer|greater|larger|smaller|below|above|over|under|negative|empty|outside|out of|twice|"
    r"double|leaks?|skips?|repeats?)\b", r"\beverything (left|right|before|after|from|up to|below|above)\b",
    r"\b(stays?|remains?|kept|is kept) (sorted|unique|bounded|in sync|in step|balanced|non-?negative|within|below|"
    r"under|at most|in order)\b", r"\bnothing (is )?(lost|duplicated|dropped|leaked)\b",
    r"\b(each|every) \w+ (comes out|appears|is (emitted|returned|processed|seen|counted|released|delivered|sent))"
    r"( \w+)? (once|exactly once|at most once)\b", r"\bno duplicates\b",
    r"\bfor (every|all) \w+\b", r"\b(at|after|before|on) (each|every) \w+\b",
    r"\b(each|every) (step|iteration|pass|loop)\b", r"\b(stays?|remains?|holds?|is always) true\b",
    r"\b(is|are) never \w+(ed|en)\b", r"\bat no (moment|point|time)\b",
    r"\b(whichever|whatever|every|any) (way|path|branch|exit)\b", r"\bwhatever \w+ (returns|does|is)\b",
    r"\b(on|at) every (way|return|exit)\b",
]
# ...and is concrete: it states a relation...
RELATIONS = [
    r"<=|>=|==|!=|≤|≥|(?<![-=])[<>](?!=)", r"\b(less|more|fewer|greater|larger|smaller) than\b",
    r"\bequal(s| to)?\b", r"\b(at most|at least|no more than|exactly)\b", r"\bexceeds?\b", r"\bthe same\b",
    r"\b(sorted|increasing|decreasing|unique|distinct|subset|in sync|in step|consistent with|cites?|cited|"
    r"non-?negative|bounded by)\b", r"\bnever (returns?|has|holds?|contains?|loses?|evicts?|drops?)\b",
    r"\b(is|are|appears?|stays?) (also |always )?in (the|both)\b", r"\bonly (ids|keys|items|entries|chunks)\b",
    r"\b(within|below|above|under|unchanged|permutation|once|agrees?|match(es)?|lost|duplicated|dropped|skipped|"
    r"released|given back|paired|non-?empty|balanced|same)\b", r"\bin (\w+ )?order\b",
    r"\b(returns?|yields?|emits?|raises?|releases?|closes?|contains?|includes?) (either|only|exactly|both|one|`)",
    r"\beither\b.{1,60}\bor\b",
]
# ...between named things: a quantity, a field, a structure, a code identifier.
ENTITIES = [
    r"\d", r"`[^`]+`", r"\b\w+_\w+\b", r"\b[a-z_]\w+\.\w{2,}", r"\b(one|two|zero|k|n)\b",
    r"\b(capacity|size|len(gth)?|count|limit|budget|tokens?|window|timestamps?|keys?|entries|entry|queue|stack|"
    r"list|dict|map|head|tail|balance|steps?|calls?|requests?|results|items|documents|docs|chunks?|ids?|"
    r"sources|answers?|nodes?|messages|citations?|elements?|values?|heap|index|indices|scores?)\b",
    r"\b(output|outputs|input|result|sum|total|balances?|slots?|frames?|buffer|records?|events?|rows?|lines?|"
    r"array|intervals?|cache|deque|pointers?|paths?|attempts?|retries|chunks?|offsets?|prefix|suffix)\b",
]
# The strongest quantifiers: a claim with one of these that ties two of the code's names together is concrete.
UNIVERSAL = [r"\b(always|never|whatever|whichever)\b", r"\bfor (every|all|each)\b", r"\bat no (moment|point|time)\b",
             r"\b(every|any|each) (way|path|exit|return|branch)\b",
             r"\bat (any|every) (moment|time|point|step)\b"]
# A habit the candidate claims about themselves ("I always write tests") is not a property of the code.
SELF_CLAIM = r"\b(I|I'?m|I'?ve) (always|never|usually)\b|\balways (think|start|write|try|like)\b"
# Mentions of invariants that say nothing concrete (used only to explain a low score).
INVARIANT_HOLLOW = [r"\binvariants?\b", r"\bcorrectness\b", r"\bcorrect by construction\b",
                    r"\b(work|works|correct|behaves? correctly) for (all|any|every) (inputs?|cases?)\b",
                    r"\b(keep|keeps|stay|stays|remain|remains) (things |it |everything )?(consistent|correct|robust)\b",
                    r"\bbehaves? correctly\b", r"\bnever (does|do) (the )?wrong thing\b"]
# An interviewer question that asks for the guarantee: a statement right after it is "prompted".
INVARIANT_PROMPT = [r"\bwhat (does|do|will|must|should|can|is) .{0,60}\b(guarantee|promise|hold|always|never|true)\b",
                    r"\b(invariant|guarantee[sd]?|promise[sd]?|postcondition|always true|must hold)\b"]
# Prose that *uses* a stated invariant while reasoning.
INVARIANT_USE = [
    r"\bstill holds\b", r"\bpreserv\w+ (the|that|this|our) (invariant|property|rule)\b", r"\bmaintains? the\b",
    r"\bby the invariant\b", r"\bthe invariant (says|tells|means|gives|lets|guarantees|implies)\b",
    r"\bviolat\w+\b", r"\bbreaks? (the )?(invariant|rule|property)\b", r"\bre-?establish\w*\b",
    r"\bcheck(s|ing)? the invariant\b", r"\b(rule|invariant|property) (one|two|three|\d)\b",
    r"\b(check|checks|test|tests|assert|asserts|verify|verifies|enforce|enforces|keep|keeps|preserve|preserves|"
    r"maintain|maintains|guard|guards|break|breaks|broke|violates?) (the|that|this|our|both|all|each|these|those|my) "
    r"(\w+ )?(invariants?|propert(y|ies)|rules?|contract|guarantees?|promises?|postconditions?|conditions?)\b",
    r"\b(that|this|the) (rule|property|contract|guarantee|promise|postcondition) (says|means|tells|gives|lets|is what)\b",
    r"\bkeeps? (that|this|it|both) (true|holding)\b",
    r"\b(what|which) (keeps|preserves|maintains|guarantees|enforces)\b",
    r"\b(half|part) of (that|the|this|our) (postcondition|invariant|property|guarantee|contract|rule)\b",
    r"\b(audit|check|assert|property test)\w* (caught|catches|flagged)\b",
    r"\bif (that|this|it|the \w+ one|one of (them|those)) (slips|breaks|is violated|doesn'?t hold|is broken)\b",
    r"\b(that|this|the|my|our)( \w+)? (rule|property|invariant|guarantee|promise|fact|point) (is|would be|becomes) "
    r"(false|broken|violated)\b", r"\bbreaks? the (\w+ )?(point|fact|promise)\b", r"\bkeeps? (that|the|this) promise\b",
    r"\bof my (rule|invariant|property|guarantee|promise)\b", r"\bthe (property|promise|guarantee) I (said|stated|gave)\b",
]
# A sentence right after a stated guarantee that draws a design consequence from it.
INVARIANT_DESIGN = [r"^because of (this|that)\b", r"\b(that'?s|this is) (what|why|how) (makes|lets|gives|I|we|it)\b",
                    r"\bgives me the check\b",
                    r"^(so|that means|this means|which means|that'?s why|hence|therefore|to (get|keep|guarantee|"
                    r"ensure) (there|that|this))\b", r"\bfor free\b", r"\b(keep|keeps) that by\b",
                    r"\bgives me (that|this|the) .{0,40}\b(on every|for free|guarantee|rule|property|release)"]

# Boundary categories: (label, how it is named in prose or a test name, how it is handled in code).
EDGE_CATEGORIES = [
    ("empty input", r"\bempty\b|\bno (documents|docs|results|items|chunks|input|matches|hits)\b|\bblank\b|"
     r"\bzero[- ]length\b|\bnothing (retrieved|found|comes back)\b|\bbefore any (add|put|push|insert|call|data|"
     r"input)\w*\b|\bno (numbers|data|values|elements|events|messages) yet\b",
     r"\bif not \w+|len\([^)]*\)\s*==\s*0|==\s*(\"\"|''|\[\]|\{\})|\bif not\b"),
    ("zero / capacity 0", r"\b(capacity|size|limit|k|n|rate|ttl|max\w*|budget|amount|count|step|norm)\s*"
     r"(of|=|==|<=|<|is|equals|is zero or)?\s*(0|zero)\b|\bzero (capacity|size|limit|tokens|requests|norm)\b|"
     r"\ball zeros?\b|\bzero vectors?\b|\b(divide|division) by zero\b|\bzero or (less|negative)\b",
     r"(<=|==|<)\s*0\b|<\s*1\b"),
    ("None / missing key", r"\bNone (input|value|key|query|argument)s?\b|\b(input|value|key|argument) (is|of) None\b|"
     r"\bnull\b|\bmissing (key|field|value|id)s?\b|\bkey ?error\b|\bnon-?existent\b|\bunknown (key|tool|id)s?\b|"
     r"\bcache miss\b|\b(key|tool|id) (is )?not (found|present)\b|\bunknown (account|user|player)s?\b|"
     r"\b(key|id) that was never (put|inserted|added|seen)\b|\bunknown (unit|field|name|command|type|model)s?\b|\b(tool|key|account) that doesn'?t exist\b",
     r"\bis None\b|\bis not None\b|\.get\(|\bKeyError\b|\bnot in\b"),
    ("negative values", r"\bnegatives?\b|\bnon[- ]?positive\b", r"<\s*0\b|<=\s*0\b"),
    ("k larger than n", r"\bk\s*(>|is (larger|bigger|greater) than|exceeds)\s*(n|the number|len|the corpus)|"
     r"\bmore (results|items|documents) than (exist|available|we have)|\bfewer (than k|documents than)\b|"
     r"\bk (larger|bigger|greater) than\b",
     r"\bmin\(\s*k\b|\bmin\([^)]*,\s*k\)|\[:\s*k\]"),
    ("duplicates / existing key", r"\bduplicat\w*|\bsame key\b|\b(updat\w*|overwrit\w*|re-?insert\w*|put\w*) "
     r"(an |the )?existing\b|\bre-?put\w*\b|\bidempoten\w*|\balready (exists|present|in the cache|there|in)\b|\brepeated (\w+ )?(unit|key|item|id|value|entry|word)s?\b|\ball[- ](equal|the same)\b|"
     r"\bsame (head|value|score|id)s?\b|\bties?\b",
     r"\bif \w+ in\b|\bset\(|\bdedup\w*|\bmove_to_end\(|\bis not None\b"),
    ("expiry / TTL boundary", r"\bexpir\w*|\bttl\b|\bstale\b|\b(exactly )?at the (boundary|deadline)\b|"
     r"\bwindow (boundary|edge)\b|\btime ?to ?live\b",
     r"\bexpir\w*|\bmonotonic\(|\btime\.time\(|\bnow\s*(>=|>|-)|\bttl\b"),
    ("timeouts", r"\btime ?outs?\b|\bdeadlines?\b|\btimed out\b|\bhangs?\b|\bslow (model|call|api|tool)\b",
     r"\btimeout\s*=|\bTimeoutError\b|\bwait_for\(|\btimeout\b"),
    ("failures / errors", r"\b(api|model|tool|network|llm|provider|embedder|call) "
     r"(errors?|failures?|fails|is down|raises)\b|\brate[- ]limited\b|\b429\b|\b5\d\d (errors?|responses?)\b|"
     r"\b(4|5)xx\b|\bpartial failure\b|\b(a|an) [45]\d\d\b|\b(one|a|some) (call|request|task|tool|job)s? "
     r"(fails|raises|errors|throws)\b|\b[45]\d\d (is|are|then|gets?|errors?|responses?|status)\b|\b(success, )?exception,? or cancell?ation\b",
     r"\bexcept\b|\bretr(y|ies)\b|\bbackoff\b|\bstatus(_code)?\s*(==|in|>=)"),
    ("malformed input", r"\bmalformed\b|\binvalid (json|input|format|arguments?|response|output)\b|"
     r"\bunparse?able\b|\bbad (input|json|arguments?)\b|\bgarbage\b|\bwrong type\b|\bschema\b",
     r"\bJSONDecodeError\b|\bValueError\b|\bisinstance\(|\bValidationError\b"),
    ("whitespace / case", r"\bwhitespace\b|\b(leading|trailing) spaces?\b|\b(upper|lower)[- ]?case\b|"
     r"\bcase[- ]insensitiv\w*", r"\.strip\(|\.lower\(|\.casefold\(|\.upper\("),
    ("unicode / encoding", r"\bunicode\b|\bnon-?ascii\b|\bemojis?\b|\butf-?8\b|\bencoding\b",
     r"\.encode\(|\.decode\(|\bnormalize\(|\bunicodedata\b"),
    ("out-of-order / clock", r"\bout[- ]of[- ]order\b|\bclock (skew|goes? backwards?|jumps?)\b|"
     r"\bnon-?monotonic\b|\bunsorted\b|\btimestamps? (in the past|backwards)\b|\bjump backwards\b",
     r"\bsorted\(|\bmonotonic\b|\bbisect\b"),
    ("concurrency", r"\bconcurren\w*|\brace conditions?\b|\bthread[- ]safe\w*|\bsimultaneous\w*|"
     r"\bparallel (requests|calls|writers)\b|\b(two|multiple|several) (threads|workers|processes|callers)\b|"
     r"\bat the same time\b", r"\bLock\(|\bwith self\._?lock\b|\bSemaphore\("),
    ("oversized input", r"\b(very |too )?(large|huge|long) (input|document|context|prompt|file)s?\b|"
     r"\boverflow\w*|\b(exceeds?|over) the (context|token) (window|limit|budget)\b|\btoo (long|many tokens)\b|"
     r"\b(context|token) budget\b|\btruncat\w*|\bcut off\b|\bhits? max_tokens\b",
     r"\btruncat\w*|\[:\s*max\w*\]|\bmax_tokens\b|\bbudget\b"),
    ("at capacity / full", r"\b(exactly )?at (the )?(capacity|limit)\b|"
     r"\bwhen (it'?s |the \w+ is )?full\b|\bfull (cache|bucket|queue)\b|"
     r"\bexactly (equal to )?(the )?(capacity|limit)\b|\bevict\w*",
     r"(>=|>|==)\s*self\.\w*(capacity|limit|max)\w*|\bpopitem\(|\bevict\w*"),
    ("single element", r"\bcapacity (of |= ?)?1\b|\bsingle[- ](item|element|document|entry|chunk|number|value|word|key)\b|"
     r"^(a |just )?(one|single) (number|element|item|value|word|entry|key)s?\b|"
     r"\b(only|just) (one|a single) (item|element|document|entry|chunk)\b|\bshorter than (one|a single|the|`?\w+`?)\b",
     r"==\s*1\b"),
    ("out of range", r"\bout of (range|bounds)\b|\b(larger|smaller|bigger|greater|less) than (every|all|any) "
     r"(element|item|value|entry)s?\b|\b(past|beyond|off) the (end|last)\b|\bindex ?error\b",
     r"\bIndexError\b|\blen\(\w+\)(?!\s*-)|\bbisect"),
    ("mutating the input", r"\bmutat\w+ (the|your|my)? ?(caller'?s|input|argument)|"
     r"\b(sorts?|modif\w+|mutat\w+|changes?) (the )?(input|list|array|argument)s? in[- ]place\b|"
     r"\bcaller'?s (list|dict|input|data)\b|\bside[- ]effects?\b",
     r"\bsorted\(|\.copy\(\)|\bdeepcopy\(|=\s*list\(\w+\)"),
    ("retries exhausted", r"\b(retries|attempts) (are )?(exhausted|run out)\b|\bexhaust\w*\b|\bgives? up\b|"
     r"\bout of (retries|attempts)\b",
     r"\bExhausted\b|\braise\b.*\blast\b|\bmax_(attempts|retries)\b"),
    ("non-terminating loop", r"\binfinite loops?\b|\bnever (terminat|finish|stop|advance|progress)\w*|\bmax(imum)? "
     r"(steps|iterations|turns)\b|\bloops? forever\b|\bstep (limit|budget)\b",
     r"\bmax_(steps|iter\w*|turns)\b|\bfor \w+ in range\("),
]
# Implementation lines that decide something (a branch, a guard, an early exit, a clamp): a case named in
# prose is handled when such a line shares a content word with the sentence that named it.
GUARD_LINE = r"^(if|elif|while|except|raise|assert)\b|\b(min|max)\("
# An interviewer sentence that puts a case to the candidate without a question mark ("Try a target larger
# than every element."): with a question, it marks the case as raised by the interviewer.
EDGE_PROBE = [r"^((now|also|please|can you|could you|and)\s+)*(try|consider|test|handle|add|make sure|check|guard|support|"
              r"cover|run it with|feed it|pass it|what about|and what about)\b",
              r"\b(you should|you need to|don'?t forget to|remember to) (also )?(handle|check|guard|test|cover)\b"]
# Test data that exercises a case whatever the test is called: `top_k([], 3)`, `LRU(0)`, `f(-1)`.
EDGE_TEST_DATA = {
    "empty input": r"\((\"\"|''|\[\]|\{\})\s*[,)]|[\[(,]\s*(\"\"|'')\s*[,\])]",
    "zero / capacity 0": r"\(\s*0\s*[,)]|\w=0\s*[,)]",
    "negative values": r"[(,=]\s*-\d",
}
# A line that feeds data to a test from outside its body.
TEST_PARAM = r"^@(pytest\.mark\.parametrize|given|hypothesis\.given)\b"
# A guard that exits early: `if <cond>:` (or `if <cond>: <exit>` on one line) ...
EXIT_GUARD = [r"^(if|elif)\b(?!\s+__name__)"]
# ... whose exit rejects the input or answers it with a fixed value, not the algorithm's normal result.
EXIT_LINE = [r"^(raise\b|return\s*$|return\s+(None|-1|\[\]|\{\}|\(\)|\"\"|'')\s*$)"]
# A test body that feeds a boundary input: it expects a rejection or an empty/sentinel answer.
EDGE_TEST = [r"\bpytest\.raises\(|\bassertRaises\(", r"(==|is)\s*(\[\]|\{\}|\(\)|\"\"|''|None|False|-1|0)\s*$",
             r"\(\s*(\[\]|\"\"|''|\{\})\s*[,)]"]
# A question that asks for tests (or anything else): not a boundary case put to the candidate.
TEST_REQUEST = [r"\btests?\b|\banything else\b|\bquestions?\b"]
# An interviewer question about the code's behaviour on some input ("What if one fetch raises?").
EDGE_QUESTION = [r"^(and |so |now )?(what (if|about|happens)|and if|how about|what does it do (if|when|with))\b.*\?$"]
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
    ("abstraction layers", r"\bABC\b|@abstractmethod|\bclass \w*(Factory|Registry|Plugin|Strategy|Manager|"
     r"Base|Interface|Observer|Backend)\b|\bmetaclass\s*=|\bregister_plugin\b|\braise NotImplementedError\b",
     r"extensib|plugin|pluggable|swap|"
     r"interface|abstract|multiple (backends|providers|stores)"),
]
PREMATURE_PROSE = [
    r"\b(distributed|microservices?|kubernetes|sharded|horizontally scal\w+|production[- ]ready|"
    r"enterprise[- ]grade|plugin (system|architecture)|fully generic|framework|extensible design|pluggable)\b",
    r"\b(add|use|build|set up) (a |an )?(cache|caching layer|message queue|thread pool|worker pool|factory|"
    r"registry|abstract base class)\b.{0,30}\b(up ?front|from the start|right away|first)\b",
    r"\bfrom the start\b", r"\b(we'?ll|we will) probably (want|need)\b",
]
LARGE_FIRST_BLOCK = 60  # non-blank lines in the first code block before it looks like a big-bang design
SMALL_FIRST_BLOCK = 30  # a first block this small, followed by more blocks, counts as building in steps

# Mistakes: candidate admissions, failing output, and interviewer challenges.
MISTAKE_CANDIDATE = [
    r"\b(a|the|that'?s a|there'?s a|found a|my|this is a|have a) bug\b", r"\b(is|was|that'?s|it'?s|i'?m|i was|"
    r"got (it|that)|had (it|that)) wrong\b", r"\b(my )?mistake\b", r"\b(oops|whoops)\b",
    r"\b(that|this|it|the test|test|the assert\w*) (fails|failed|breaks|broke|errors?|crashes|crashed)"
    r"(?=[.!,;:]|$| (now|again|here|too|with|on line)\b)", r"\bthat'?s (bad|not (right|fine|good))\b",
    r"\bgood catch\b", r"\byou'?re right\b", r"\bI (missed|forgot|overlooked|mixed up)\b", r"\bmy bad\b",
    r"\bdoesn'?t (work|pass)\b", r"\b(oh|ah),? (wait|no)\b", r"\bI never (append|add|delete|remove|call|check)\w*\b",
    r"\btest_?\w*`? (fails|failed|is failing|errors)\b", r"\b(fails|failed)\b.{0,20}\bError\b",
    r"\b(returns?|gives?|got|prints?) `?[\w\[\]().,' -]{1,30}`?[.,;]? (but )?(it|that|which) should (be|return|give)\b",
    r"\bexpected `?[^.?]{1,30}\b(but )?got\b", r"\bstill (failing|fails|broken|the same error)\b",
    r"\b(I|we) (get|got) [^.]{1,30}\binstead of\b", r"\bnot what I expected\b",
    r"\b(tests?|it|CI) (is|are|went|goes|turned) red\b",
    r"\b(is|are|was|were) (now )?(off by \w+|broken|violated)\b", r"\bI said (that|it|this) wrong\b",
    r"\bI (conflated|mixed up|confused)\b",
]
# An admission about something the candidate *said* (a complexity, a size, a claim), not about code: the
# corrected statement is the fix.
CLAIM_MISTAKE = [r"\b(claim|estimate|I said|I stated|I claimed)\b", r"\bO\("]
# Failing output pasted into the round (case-sensitive; shaped like output, so `except ValueError:` is not).
MISTAKE_OUTPUT = [r"Traceback \(most recent call last\)", r"\bFAILED\b", r"\b\d+ failed\b",
                  r"^\s*E\s+\w*(Error|assert)\b", r"^`?\s*\w+(Error|Exception): \S", r"`\w+(Error|Exception): "]
# A "failure" the candidate caused on purpose, to check a test or a claim, is not a mistake.
INTENTIONAL = [r"\bsanity check\b", r"\bon purpose\b", r"\bdeliberately\b", r"\bas expected\b",
               r"\bwhich is (the|what|exactly) .{0,40}\b(described|expected|predicted|wanted)\b",
               r"\bto (check|prove|show) (that )?the test\b", r"\b(and|which) (it|that) (does|did)\b",
               r"\bworks as (expected|intended)\b", r"\b(already|by design)\b"]
MISTAKE_INTERVIEWER = [r"\bthere'?s a bug\b", r"\bthat'?s (not right|wrong|incorrect)\b",
                       r"\b(that|this|it) (doesn'?t|does not|won'?t|will not) work\b",
                       r"\b(the|your|one|a) test (fails|failed|is failing|errors|crashes|hangs)\b",
                       r"\b(there'?s|you have|it'?s|that'?s) an? off[- ]by[- ]one\b",
                       r"\b(isn'?t|is not) (right|correct|quite right)\b",
                       r"\b(returns?|gives?|prints?) [^.?]{1,30}\b(but|instead of)\b.{0,30}\bshould\b",
                       r"\b(for|on|with) [^.?]{1,40}\byou (return|get|print|output|produce)\b",
                       r"\b(got|get|raises?|throws?|hit|hits) (a|an) `?\w+(Error|Exception)\b",
                       r"\b(tests?|it|CI) (is|are|went|goes|turned) red\b"]
# Nudges toward a mistake. Like the hints below, they count only once the candidate has said or written
# something to correct: in the task statement "think carefully about ..." is advice, not a correction.
NUDGE_INTERVIEWER = [r"\blook (again|closely) at\b", r"\bnot quite\b",
                     r"\b(count|check|look at|read|trace)\b.{0,30}\bcarefully\b",
                     r"\bdouble[- ]check (your|the|that|this)\b",
                     r"\bcheck (your|the) (loop|condition|bounds|index|indices|math|logic|base case|return|order)\b"]
# The corrections that give the answer away: a fix after one of these is "only after a direct hint".
DIRECT_HINT = [r"\blook at (what|how|where|which|the|your|line)\b", r"\bthink about what happens (to|when|if)\b",
               r"\byou (never|forgot|don'?t|didn'?t|aren'?t)\b(?! need)", r"\bthe (problem|bug|issue) is\b",
               r"\bline \d+\b", r"\b(the|that) (role|name|type|index|key|order) (isn'?t|is not|should be)\b"]
# Interviewer probes only count as a mistake when the candidate's next turn acknowledges one.
PROBE_INTERVIEWER = [r"\bwhat happens (if|when|to|with|for|on)\b", r"\bis that right\b", r"\bare you sure\b",
                     r"\bwhat about\b", r"\bwhat if\b", r"\bwalk me through\b", r"\bdoes it\?", r"\bwhat does\b",
                     r"^(now )?(try|run|print|trace|count|check|call)\b", r"\bwhat do you get\b"]
ACKNOWLEDGE = [r"\bgood catch\b", r"\byou'?re right\b", r"\bI (missed|forgot|overlooked)\b", r"\bmy bad\b",
               r"\b(a|that'?s a|there'?s a) bug\b", r"\b(oops|whoops)\b", r"\bthat'?s wrong\b",
               r"\b(ah|oh),? (no|wait|I see|right)\b", r"\bit (would|will) (break|fail|crash)\b", r"\bI never\b",
               r"\bI didn'?t think (about|of) that\b",
               r"^(ah|oh|argh|hmm|right)\b.{0,80}\b(wrong|bug|mistake|should|never|forgot|missed|too (early|late)|"
               r"instead of|doesn'?t|don'?t|isn'?t|not)\b",
               r"\bit should (be|return|give) (?!(fine|ok|okay|good|correct|right|handled|safe|the same)\b)\S",
               r"\b(raises?|throws?|gives?|get|hits?) (an? )?`?\w*(Error|Exception)\b", r"\bcrash(es|ed)?\b",
               r"\bblows? up\b", r"\b(is|are|was) (off by \w+|broken)\b", r"\bI (said|stated|claimed) (that|it) wrong\b",
               r"\bI (mixed up|conflated|confused)\b",
               r"\bmy (loop|code|function|condition|check|index|bound|key|test|base case)\b.{0,40}\b(too early|too late|"
               r"wrong|never|skips?|misses|stops)\b"]
# An admission phrased as a reply to someone else's finding: the mistake was not self-noticed.
HINTED = [r"\bgood catch\b", r"\byou'?re right\b", r"\bfair point\b", r"\bas you (said|say|pointed out)\b"]
# Words that make a "that fails" sentence hypothetical rather than an admission.
HYPOTHETICAL = [r"\b(if|when|where|whether|in case|unless|could|might|would|avoid|prevent|otherwise|so that)\b"]
# A sentence opening like this makes the next one hypothetical too ("If I pick 10... That breaks it.").
SUPPOSITION = r"^(if|suppose|say|imagine|assume|had)\b"
RECOVERY_CAUSE = [r"\bbecause\b", r"\bthe (\w+ )?(problem|issue|bug|cause|mistake) (is|was)\b", r"\broot cause\b",
                  r"\bI (read|wrote|write|used|use|call|check|compare|start|set|insert|append|return|only)\w* "
                  r".{0,60}\b(so|which|but|before|instead|never)\b",
                  r"\bI (?!think|guess|hope|believe|suppose|will|can|could|would|should|might)\w+ [^.]{0,60}\b(so|which "
                  r"means|instead of|rather than)\b", r"\bI'?m \w+ing\b.{0,60}\b(so|which|instead|rather than)\b",
                  r"\b(one|an?) (element|step|iteration|index|item) too (early|late|far|soon|many|few)\b",
                  r"`[^`]+` (removes|returns|raises|overwrites|skips|drops|appends|deletes|empties|resets|ignores|"
                  r"compares|mutates|shadows)\b", r"\b(falls?|fell) through\b",
                  r"\bwould (throw|raise|crash|fail|blow up|divide)\b", r"\bso when\b",
                  r"\bthat'?s (a|an|the) [\w ]{0,20}(by zero|error|overflow|off[- ]by[- ]one|race|leak|typo|bug)\b",
                  r"\b(never|forgot to|didn'?t) (wrote|write|remove|removed|reset|update|updated|append|appended|"
                  r"check|checked|handle|handled|clear|cleared)\b",
                  r"\bI see (it|the (problem|issue|bug))\b", r"\bthat'?s (why|because)\b", r"\bwhich (means|is why)\b",
                  r"\bmy `?\w+`?( \w+)? (is|was|does|doesn'?t|didn'?t|stops|only|starts|begins|uses|reads|returns|"
                  r"checks|never|has|keeps)\b",
                  r"\bI (forgot|missed|didn'?t|never)\b", r"\bthe reason\b", r"\bcaused by\b",
                  r"\bso the\b.{0,60}\bdisagree", r"\b(mistake|bug|problem|issue)( here)?:",
                  r"\bwhat I (want|need|meant) (is|was)\b", r"\bI (mixed up|conflated|confused)\b"]
# A sentence that explains a failure by what a named piece of the candidate's code does (with a name the
# candidate wrote: "the pop on an empty list throws", "`history[:KEEP]` is the first four"): a diagnosis
# in the candidate's own terms, however it is phrased.
MECHANISM = [r"\b(throws?|crash(es)?|can'?t|cannot|doesn'?t|never|instead of|skips?|misses|runs? out|"
             r"overwrites?|ambiguous|wrong|broken|off by|too (early|late)|the (first|last)|not the|twice|"
             r"falls? (off|through)|empty|zero|breaks?)\b"]
# What fails, said in a reply that concedes a flaw: the exception, a crash, a loop that never ends.
FAILURE_DESCRIBED = [r"\b\w+(Error|Exception)\b", r"\bcrash\w*\b", r"\b(loops?|runs?|spins?) forever\b",
                     r"\binfinite loop\b", r"\bdivision by zero\b", r"\boff by (one|\w+)\b"]
# Trying a change is not explaining one ("I change X to Y", "let me try >=", "put back None").
ATTEMPT = [r"^((ok|okay|so|now|hmm)[,.]? )*((i|we) |let me |let'?s |i'?ll )?(just )?(try|change|put|remove|add|swap|"
           r"set|flip|re-?run|run|revert|undo|delete)\b"]
# A scenario put to the candidate ("Say search times out."): a probe, which needs a concession to be a mistake.
SCENARIO = [r"^(say|suppose|imagine|assume|let'?s say)\b"]
# An interviewer turn asking for more, not correcting: code rewritten after it is an extension.
EXTENSION_REQUEST = [r"\b(now|next|also|additionally)\b.{0,30}\b(add|extend|support|make|allow|implement|generali[sz]e)\b",
                     r"\b(can|could) you (also )?(add|extend|support|make it|implement|generali[sz]e)\b",
                     r"\bextend\b", r"\bnew requirement\b", r"\bwhat if we (also )?(need|want)\b",
                     r"\b(also|additionally)\b.{0,20}\b(handle|accept|cover)\b",
                     r"^((and|now|also|please|next),? )*(make sure|add|support|allow|handle|implement)\b",
                     r"\blet'?s (now )?(relax|add|extend|support|generali[sz]e|make)\b", r"\brelax\b"]
RECOVERY_RESET = [r"\bstep back\b", r"\b(smaller|simpler|minimal) (version|case|example|input)\b",
                  r"\blet me (re-?think|reconsider|slow down)\b",
                  r"\b(go|going|went|step|get) back to (a |the |my )?(simpler|smaller|basic|working|last|first)\b"]
RECOVERY_FIX = [r"\bfix(ed|ing)?\b", r"\bchang(e|ed|ing) .{1,40}\bto\b", r"\bswap(ped)?\b", r"\bcorrect(ed)?\b",
                r"\bbecomes\b", r"\bI'?ll (add|append|make|move|use)\b"]
RECOVERY_VERIFIED = [r"\btests? (now |all |both )?(pass|passes|passed|passing)\b",
                     r"\b(now|all|both)( \w+)? (tests )?(pass|passes|passing)\b", r"\bnow (it )?works\b",
                     r"\bgreen\b", r"\b\d+ passed\b", r"\bworks now\b", r"\brunning (it )?again\b",
                     r"\bpass(es|ed)? now\b", r"\blet me (trace|walk through|re-?read)\b", r"\bby hand\b",
                     r"\btrac(e|ing) (it|this|through)\b", r"\bre-?trac\w+\b", r"\btrac(e|ing) [^.]{0,30}\bagain\b",
                     r"\b(that|it|this one) passes\b", r"\b(tests|ones|cases) (now )?pass\b",
                     r"\bre-?run(ning)?\b.{0,15}\bpass(es|ed)?\b", r"\bre-?(run|check|do)\w* (my|the) (example|trace)\b",
                     r"\b(matches|agrees with) (the )?(brute|expected|sum|trace)"]
# A cause offered as a guess is not a diagnosis ("maybe that's it", "probably flaky").
HEDGE = [r"\b(maybe|probably|perhaps|I guess|I think|might be|could be|not sure|no idea|somehow|I suppose|must be)\b",
         r"\bbecause (the |that |it |this |my )?(test )?(fails|failed|failing|didn'?t pass|is red|errors?|broke)\b"]
# Trial and error: changing things, or rerunning, without a diagnosis.
FLAIL = [r"\blet me (just )?try\b", r"\b(several|a few|a couple of|multiple) (things|changes|tweaks)\b",
         r"\b(let'?s|I'?ll) (just )?try\b", r"\btry(ing)? (adding|removing|changing|swapping|"
         r"flipping|another|something)\b", r"^maybe (it'?s|I|we|that|the)\b", r"\bstill (failing|fails|broken|"
         r"the same)\b", r"\bsame error\b", r"\b(just )?re-?run(ning)? (it|the tests?|that)\b", r"\bflaky\b",
         r"\b(weird|strange)\b", r"\bnot (exactly|sure why)\b", r"\b(doesn'?t|didn'?t) (help|change anything)\b",
         r"\bactually let me also\b", r"\bfor some reason\b", r"\blet me (just )?re-?run\b",
         r"\b(tweak|fiddle with|play with|poke at)\b", r"\band see\b", r"\bsee (if|whether) (it|that|this) "
         r"(works|passes|helps)\b"]
PANIC = [("lost", r"\bI'?m (so |completely |totally )?(lost|confused|stuck)\b|\bno idea\b|"
          r"\bnot sure what'?s (going on|happening|wrong)\b|\bI don'?t know what'?s (wrong|happening)\b"),
         ("distress", r"\bnervous\b|\bflustered\b|\boh no\b|\bpanick?\w*\b|\bfreaking out\b"),
         ("rewrite everything", r"\b(rewrite|redo|scrap|throw away|start over)\b.{0,20}\b(everything|it all|"
          r"the whole thing|from scratch)\b"),
         ("giving up", r"\bI give up\b|\blet'?s (just )?move on\b|\b(let'?s|let me|we can|I'?ll) (just )?skip (it|this)"
          r"( one| part| question| bit)?[.!]?$"),
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
                 r"\bonly if\b", r"\bamortiz\w*\b", r"\bbatch(ed|ing|es)?\b",
                 r"\bcache (the )?(embeddings|results|responses)\b",
                 r"\bskip(s|ping)? the (model|llm|call)\b", r"\b(avoid|save) (a|the|an extra) (model |llm )?call\b"]
COST_TOPIC = [r"\b(cost|costs|latency|tokens?|expensive|cheap|budget|throughput|performance|efficien\w*|"
              r"scal\w+|fast|slow)\b"]
# An interviewer turn that asks about cost: answers to it are "prompted".
COST_PROMPT = [r"\bhow (many|much|often|long|big|large|fast|slow)\b|\broughly\b|\b(quadratic|linear|logarithmic)\b",
               r"\b(cost|costs|complexity|expensive|latency|tokens?|numbers|"
               r"memory|how fast|big-?o)\b|\bO\("]

# A test body line that checks a property over many inputs rather than one example.
PROPERTY_TEST = [r"\bfor _ in range\(", r"\brandom\.\w+\(", r"^assert all\(", r"\bhypothesis\b|@given\b"]
# Words ignored when matching an invariant's terms against assert lines; synonyms folded together.
INVARIANT_STOPWORDS = sorted(set("""the and must always never hold holds that this with every should will have has than
more less equal equals invariant exceed exceeds are for from our its into only each all any least most not which
when after before self true false none need want make sure guarantee guaranteed stay stays remain
remains""".split()))
INVARIANT_SYNONYMS = {"size": "len", "length": "len", "count": "len", "number": "len"}
CHECK_LINE = r"^(assert\b|if\b.*:\s*raise\b|raise\b)"  # an assert, or a guard that raises
NEGATION = r"\b(don'?t|do not|no need|not|without|never|avoid|instead of)\b"  # "we don't need sharding"

TABLES = {
    "invariant": [INVARIANT_CUES, INVARIANT_QUANTIFIED, SELF_CLAIM, RELATIONS, ENTITIES, INVARIANT_HOLLOW,
                  INVARIANT_USE, INVARIANT_STOPWORDS, INVARIANT_SYNONYMS, CHECK_LINE, INVARIANT_PROMPT,
                  INVARIANT_DESIGN, PROPERTY_TEST, UNIVERSAL],
    "edge_cases": [EDGE_CATEGORIES, EDGE_HOLLOW, GUARD_LINE, EDGE_PROBE, EDGE_TEST_DATA, TEST_PARAM, EXIT_GUARD,
                   EXIT_LINE, EDGE_TEST, EDGE_QUESTION, TEST_REQUEST],
    "restraint": [RESTRAINT_SCOPE, RESTRAINT_DEFER, PREMATURE_CODE, PREMATURE_PROSE, NEGATION,
                  LARGE_FIRST_BLOCK, SMALL_FIRST_BLOCK],
    "recovery": [MISTAKE_CANDIDATE, MISTAKE_OUTPUT, INTENTIONAL, MISTAKE_INTERVIEWER, NUDGE_INTERVIEWER,
                 DIRECT_HINT, HEDGE, FLAIL, PROBE_INTERVIEWER, ACKNOWLEDGE, HINTED, HYPOTHETICAL, SUPPOSITION,
                 RECOVERY_CAUSE, RECOVERY_RESET, RECOVERY_FIX, RECOVERY_VERIFIED, PANIC, CLAIM_MISTAKE, MECHANISM,
                 ATTEMPT, EXTENSION_REQUEST, FAILURE_DESCRIBED, SCENARIO],
    "cost_awareness": [COST_QUANTITIES, COST_TRADEOFF, COST_TOPIC, COST_PROMPT],
}


def tables_hash(tables: dict = TABLES) -> str:
    """Short content hash of the signal tables: part of the baseline's prompt_version (cache key)."""
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()[:10]


TABLES_HASH = tables_hash()
