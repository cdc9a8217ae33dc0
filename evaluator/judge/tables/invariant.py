"""What the invariant scorer (judge/invariant.py) looks for: a claim that something must hold, what makes it
concrete (a relation between named things), how it is asked for, used, or drawn on for the design, and
the assert lines and tests that check it.

Entries are regexes, matched case-insensitively unless noted. Editing any of them changes
TABLES_HASH (tables/__init__.py) and therefore the baseline's version, i.e. every cache key.
"""

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

# A test body line that checks a property over many inputs rather than one example.
PROPERTY_TEST = [r"\bfor _ in range\(", r"\brandom\.\w+\(", r"^assert all\(", r"\bhypothesis\b|@given\b"]
# Words ignored when matching an invariant's terms against assert lines; synonyms folded together.
INVARIANT_STOPWORDS = sorted(set("""the and must always never hold holds that this with every should will have has than
more less equal equals invariant exceed exceeds are for from our its into only each all any least most not which
when after before self true false none need want make sure guarantee guaranteed stay stays remain
remains""".split()))
INVARIANT_SYNONYMS = {"size": "len", "length": "len", "count": "len", "number": "len"}
CHECK_LINE = r"^(assert\b|if\b.*:\s*raise\b|raise\b)"  # an assert, or a guard that raises
