"""What the recovery scorer (judge/recovery.py) looks for: mistakes (admitted, shown by failing output, or
pointed out), hints and nudges, how the candidate diagnoses, fixes and verifies, and signs of flailing.

Entries are regexes, matched case-insensitively unless noted. Editing any of them changes
TABLES_HASH (tables/__init__.py) and therefore the baseline's version, i.e. every cache key.
"""

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
