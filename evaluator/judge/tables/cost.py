"""What the cost-awareness scorer (judge/cost.py) looks for: quantities with their kind (big-O, tokens,
calls, latency, money), trade-off wording, bare topic words, and the interviewer's cost questions.

Entries are regexes, matched case-insensitively unless noted. Editing any of them changes
TABLES_HASH (tables/__init__.py) and therefore the baseline's version, i.e. every cache key.
"""

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
