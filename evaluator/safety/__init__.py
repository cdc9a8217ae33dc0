"""Candidate text is untrusted data: fence it, neutralise look-alike delimiters, flag grader-addressing;
and no secret or terminal escape leaves the process.

One module per responsibility, re-exported here (callers import from `evaluator.safety`):
`fencing` (fences, neutralising, sealing a prompt), `injection` (flags for text that addresses the
grader; its checks in `injection_checks`, scanned by `injection_scan`, other languages in
`injection_foreign`), `hidden` (reading text as a model would: invisible characters, look-alike letters),
`redaction` (secrets out of stored and printed text, terminal escapes out of printed text).
"""

from evaluator.safety.fencing import fence, fence_tag, inline, neutralise, seal
from evaluator.safety.hidden import invisible_payload
from evaluator.safety.injection import detect_injection
from evaluator.safety.redaction import REDACTED, for_terminal, redact, redact_value, redactor, register_secret

__all__ = ["REDACTED", "detect_injection", "fence", "fence_tag", "for_terminal", "inline", "invisible_payload",
           "neutralise", "redact", "redact_value", "redactor", "register_secret", "seal"]
