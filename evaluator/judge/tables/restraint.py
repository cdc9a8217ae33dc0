"""What the restraint scorer (judge/restraint.py) looks for: scoping down and deferring out loud, premature
machinery in code or talk (and the interviewer words that would justify it), the size of the first code.

Entries are regexes, matched case-insensitively unless noted. Editing any of them changes
TABLES_HASH (tables/__init__.py) and therefore the baseline's version, i.e. every cache key.
"""

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
NEGATION = r"\b(don'?t|do not|no need|not|without|never|avoid|instead of)\b"  # "we don't need sharding"
