"""What the edge-case scorer (judge/edge_cases.py) looks for: boundary categories (how each is named and
how code handles it), guards and early exits, tests that feed a boundary input, and the interviewer's
questions or prompts that raise a case.

Entries are regexes, matched case-insensitively unless noted. Editing any of them changes
TABLES_HASH (tables/__init__.py) and therefore the baseline's version, i.e. every cache key.
"""

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
