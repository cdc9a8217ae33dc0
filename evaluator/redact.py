"""PII redaction before a prompt leaves the machine (`--redact`, on by default for hosted providers).

Why here and not in the prompt: the judge, the evidence check and the repair loop all work on the
transcript object, so the judge is handed a *redacted transcript* and never sees the originals.
Names (front matter and speaker labels), e-mail addresses, phone numbers, URLs with personal paths
and company names from a list become stable placeholders: [CANDIDATE], [INTERVIEWER], [PERSON_1],
[EMAIL_1], [PHONE_1], [URL_1], [COMPANY_1] (the same value gets the same placeholder everywhere in
one transcript). Quotes are verified against the redacted text (what the model saw); afterwards
their spans are mapped back onto the original text and the rationale's placeholders are replaced by
the original values, so the store and the reports read the real text. The reverse map lives only
in memory; the stored exchanges hold the redacted prompt, i.e. exactly what was sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evaluator.errors import BadInput
from evaluator.judge.base import Judge, JudgeOutput
from evaluator.models import DimensionResult, Evidence, Flag, JudgeInfo, Transcript
from evaluator.rubrics import Rubric
from evaluator.speakers import CANDIDATE_WORDS, INTERVIEWER_WORDS

# Front matter keys that name people (value: a name or a list of names) and companies.
PERSON_KEYS = {"candidate": "candidate", "interviewer": "interviewer", "interviewers": "interviewer",
               "name": "candidate", "author": "unknown", "panel": "interviewer", "panelists": "interviewer"}
COMPANY_KEYS = ("company", "companies", "employer", "organisation", "organization")
# litellm providers that run on this machine even without --api-base.
LOCAL_PROVIDERS = ("ollama/", "ollama_chat/", "lm_studio/", "llamafile/")
# Hosts whose URL paths name a person (a profile, a personal repository or page).
PROFILE_HOSTS = {"github.com", "gitlab.com", "bitbucket.org", "linkedin.com", "twitter.com", "x.com",
                 "medium.com", "dev.to", "kaggle.com", "stackoverflow.com", "huggingface.co", "facebook.com",
                 "instagram.com", "leetcode.com", "hackerrank.com", "codepen.io", "gist.github.com",
                 "substack.com", "about.me", "calendly.com"}
# Speaker labels that are roles, not names ("Interviewer", "Q", "A", ...), as ingest reads them.
_ROLE_WORDS = INTERVIEWER_WORDS | CANDIDATE_WORDS | {"you", "me", "speaker", "user", "assistant", "unknown"}

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]{}\"'`]+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d[\d \t().-]{6,}\d"  # international: +44 20 7946 0958, +1 (415) 555-0100
    r"|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}"  # North American: 415-555-0100, (415) 555 0100
    r"|0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4})(?![\w])"  # national trunk prefix: 020 7946 0958
)


def is_hosted(model: str | None, api_base: str | None) -> bool:
    """Whether prompts leave this machine/network: a provider's cloud (no --api-base, except the
    local providers) or an --api-base whose host is not loopback, private or link-local."""
    if not api_base:
        return not (model or "").startswith(LOCAL_PROVIDERS)
    host = (urlsplit(api_base).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return True  # a public name: we cannot know where it resolves, so treat it as hosted
    return not (ip.is_loopback or ip.is_private or ip.is_link_local)


def load_terms(path: Path | None) -> tuple[str, ...]:
    """Company (or any other) names to redact, one per line; blank lines and # comments ignored."""
    if path is None:
        return ()
    from evaluator.files import read_text

    try:  # only a regular file, capped: a FIFO or /dev/zero given by mistake must not hang the run
        text = read_text(path, 5_000_000, "--redact-list")
    except OSError as e:
        raise BadInput(f"--redact-list {path}: cannot read it ({e})") from None
    return tuple(dict.fromkeys(line.strip() for line in text.splitlines()
                               if line.strip() and not line.lstrip().startswith("#")))


def _names(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in values if isinstance(v, str | int) and str(v).strip()]


def transcript_people(transcript: Transcript) -> dict[str, str]:
    """Every person a transcript names, in order of first mention, with their role: the front
    matter's people keys, then the speaker labels that are names (not "Interviewer", "Q", ...)."""
    people: dict[str, str] = {}
    for key, role in PERSON_KEYS.items():
        for name in _names(transcript.metadata.get(key)):
            people.setdefault(name, role)
    for t in transcript.turns:
        speaker = t.speaker.strip()
        if speaker and speaker.lower() not in _ROLE_WORDS and not any(
                w in speaker.lower() for w in ("interviewer", "candidate", "interviewee")):
            people.setdefault(speaker, t.role)
    return people


@dataclass
class _Span:
    o_start: int
    o_end: int
    r_start: int
    r_end: int


@dataclass
class RedactedText:
    """A text with its placeholders and where each replaced piece was, to map spans back."""

    original: str
    text: str
    spans: list[_Span] = field(default_factory=list)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that [start, end) of the redacted text covers (a span
        touching a placeholder takes in the whole value it replaced)."""
        def conv(pos: int, end_side: bool) -> int:
            shift = 0
            for s in self.spans:
                if pos <= s.r_start:
                    break
                if pos < s.r_end:
                    return s.o_end if end_side else s.o_start
                shift = s.o_end - s.r_end
            return pos + shift

        return conv(start, False), conv(end, True)


class Redactor:
    """Replaces personal values with stable placeholders; one per transcript (numbering is by first
    occurrence, so the same transcript always gets the same placeholders)."""

    def __init__(self, people: dict[str, str], terms: tuple[str, ...] = ()) -> None:
        self.restore_map: dict[str, str] = {}  # placeholder -> original value (in memory only)
        self._person: dict[str, str] = {}  # name or name part -> placeholder
        self._counts: dict[str, int] = {}
        self.found: dict[str, set[str]] = {}  # kind -> placeholders used (for the summary)
        role_seen: dict[str, int] = {}
        for name, role in people.items():
            known = next((self._person[p] for p in [name, *name.split()] if p in self._person), None)
            if known is not None:  # "Dana" in a label, "Dana Smith" in the front matter: one person
                self._person.setdefault(name, known)
                continue
            kind = {"candidate": "CANDIDATE", "interviewer": "INTERVIEWER"}.get(role, "PERSON")
            role_seen[kind] = role_seen.get(kind, 0) + 1
            n = role_seen[kind]
            placeholder = f"[{kind}_{n}]" if kind == "PERSON" or n > 1 else f"[{kind}]"
            self.restore_map.setdefault(placeholder, name)
            self._person.setdefault(name, placeholder)
            for part in name.split():
                if len(part) >= 2 and part.lower() not in _ROLE_WORDS:
                    self._person.setdefault(part, placeholder)
        self._names = (re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(self._person, key=len, reverse=True)))
                                  + r")(?!\w)") if self._person else None)
        self._terms = (re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(terms, key=len, reverse=True)))
                                  + r")(?!\w)", re.IGNORECASE) if terms else None)
        self._values: dict[tuple[str, str], str] = {}  # (kind, value) -> placeholder
        self._url_words = {p.lower() for n in people for p in re.split(r"\W+", n) if len(p) >= 3}

    def _numbered(self, kind: str, value: str) -> str:
        key = (kind, value.lower() if kind in ("EMAIL", "COMPANY", "URL") else value)
        if key not in self._values:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            placeholder = f"[{kind}_{self._counts[kind]}]"
            self._values[key] = placeholder
            self.restore_map[placeholder] = value
        return self._values[key]

    def _personal_url(self, url: str) -> bool:
        parts = urlsplit(url if "://" in url else "http://" + url)
        host = (parts.hostname or "").lower().removeprefix("www.")
        path = parts.path.strip("/")
        if host.endswith((".github.io", ".gitlab.io", ".netlify.app", ".vercel.app")):
            return True
        if path and (host in PROFILE_HOSTS or any(host.endswith("." + h) for h in PROFILE_HOSTS)):
            return True
        return any(w in url.lower() for w in self._url_words)

    def redact(self, text: str) -> RedactedText:
        """Replace every personal value in `text` (e-mails and URLs first: they contain names)."""
        hits: list[tuple[int, int, str]] = []

        def add(start: int, end: int, placeholder: str) -> None:
            if all(end <= s or start >= e for s, e, _ in hits):
                hits.append((start, end, placeholder))

        for m in _EMAIL.finditer(text):
            add(m.start(), m.end(), self._numbered("EMAIL", m.group()))
        for m in _URL.finditer(text):
            url = m.group().rstrip(".,;:!?")
            if self._personal_url(url):
                add(m.start(), m.start() + len(url), self._numbered("URL", url))
        for m in _PHONE.finditer(text):
            if 8 <= sum(c.isdigit() for c in m.group()) <= 15:
                add(m.start(), m.end(), self._numbered("PHONE", m.group()))
        if self._names:
            for m in self._names.finditer(text):
                add(m.start(), m.end(), self._person[m.group()])
        if self._terms:
            for m in self._terms.finditer(text):
                add(m.start(), m.end(), self._numbered("COMPANY", m.group()))
        hits.sort()
        out: list[str] = []
        spans: list[_Span] = []
        pos = 0
        length = 0
        for start, end, placeholder in hits:
            out.append(text[pos:start])
            length += start - pos
            spans.append(_Span(start, end, length, length + len(placeholder)))
            out.append(placeholder)
            length += len(placeholder)
            pos = end
            self.found.setdefault(placeholder.strip("[]").rstrip("_0123456789"), set()).add(placeholder)
        out.append(text[pos:])
        return RedactedText(text, "".join(out), spans)

    def restore(self, text: str | None) -> str:
        """Placeholders back to the original values (rationales, reasons, unlocated quotes)."""
        if not text or "[" not in text:
            return text or ""
        return re.sub(r"\[(?:CANDIDATE|INTERVIEWER|PERSON|EMAIL|PHONE|URL|COMPANY)(?:_\d+)?\]",
                      lambda m: self.restore_map.get(m.group(), m.group()), text)

    def summary(self) -> str:
        labels = {"CANDIDATE": "candidate name", "INTERVIEWER": "interviewer name", "PERSON": "other name",
                  "EMAIL": "e-mail address", "PHONE": "phone number", "URL": "personal URL", "COMPANY": "company name"}
        parts = [f"{len(v)} {labels[k]}{'s' if len(v) > 1 else ''}" for k, v in self.found.items() if k in labels]
        return ("replaced " + ", ".join(parts) if parts else "nothing personal found") + \
            " with placeholders before the prompt was sent"


@dataclass
class Redaction:
    """A transcript's redaction: its redactor (the in-memory reverse map) and each place's text."""

    redactor: Redactor
    places: dict[str, RedactedText]  # turn id or (redacted) code file name -> its redacted text
    file_names: dict[str, str]  # redacted code file name -> original

    def restore_evidence(self, e: Evidence) -> Evidence:
        source = self.file_names.get(e.source or "", e.source)
        place = self.places.get(e.source or "")
        if place is not None and e.start is not None and e.end is not None:
            start, end = place.to_original(e.start, e.end)
            quote = place.original[start:end] if e.match == 100 else self.redactor.restore(e.quote)
            return e.model_copy(update={"quote": quote, "source": source, "start": start, "end": end})
        return e.model_copy(update={"quote": self.redactor.restore(e.quote), "source": source})

    def restore_dimension(self, d: DimensionResult) -> DimensionResult:
        r = self.redactor.restore
        return d.model_copy(update={
            "rationale": r(d.rationale), "reason": r(d.reason) if d.reason else d.reason,
            "evidence": [self.restore_evidence(e) for e in d.evidence],
            "dropped_evidence": [r(q) for q in d.dropped_evidence],
        })


def transcript_terms(transcript: Transcript, terms: tuple[str, ...]) -> tuple[str, ...]:
    """The list's terms plus the companies the front matter names."""
    own = [n for key in COMPANY_KEYS for n in _names(transcript.metadata.get(key))]
    return tuple(dict.fromkeys([*terms, *own]))


def redact_transcript(transcript: Transcript, terms: tuple[str, ...] = ()) -> tuple[Transcript, Redaction]:
    """The transcript as the judge may see it, and how to map its answers back."""
    redactor = Redactor(transcript_people(transcript), transcript_terms(transcript, terms))
    places: dict[str, RedactedText] = {}
    turns = []
    for t in transcript.turns:
        rt = places[t.id] = redactor.redact(t.text)
        speaker = redactor.redact(t.speaker).text
        turns.append(t.model_copy(update={"text": rt.text, "speaker": speaker}))
    files, file_names = [], {}
    for cf in transcript.code_files:
        name = redactor.redact(cf.name).text
        file_names[name] = cf.name
        rt = places[name] = redactor.redact(cf.content)
        files.append(cf.model_copy(update={"name": name, "content": rt.text, "path": name}))
    suffix = Path(transcript.source).suffix or ".md"

    def meta(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.redact(value).text
        if isinstance(value, list):
            return [meta(v) for v in value]
        return value

    redacted = transcript.model_copy(update={
        "turns": turns, "code_files": files, "source": f"transcript{suffix}",
        "metadata": {k: meta(v) for k, v in transcript.metadata.items()},
        "title": meta(transcript.title), "raw_text": redactor.redact(transcript.raw_text).text,
    })
    return redacted, Redaction(redactor, places, file_names)


def terms_digest(terms: tuple[str, ...]) -> str:
    """What goes into the cache key for redaction: on, and which term list (hashed, not listed)."""
    if not terms:
        return "on"
    return "on:" + hashlib.sha256("\n".join(sorted(terms)).encode()).hexdigest()[:12]


class RedactingJudge:
    """A judge wrapper: judges the redacted transcript, then restores originals in what it keeps."""

    def __init__(self, inner: Judge, terms: tuple[str, ...] = ()) -> None:
        self.inner = inner
        self.terms = terms

    def info(self) -> JudgeInfo:
        info = self.inner.info()
        # a redacted prompt is a different prompt: its judgments are cached apart from unredacted ones
        return info.model_copy(update={"params": {**info.params, "redact": terms_digest(self.terms)}})

    async def judge(self, transcript: Transcript, rubric: Rubric) -> JudgeOutput:
        redacted, redaction = redact_transcript(transcript, self.terms)
        out = await self.inner.judge(redacted, rubric)
        out.dimensions = [redaction.restore_dimension(d) for d in out.dimensions]
        restore = redaction.redactor.restore
        out.reason = restore(out.reason) if out.reason else out.reason
        out.flags = [f.model_copy(update={"detail": restore(f.detail)}) for f in out.flags]
        if out.truncation and out.truncation.get("code_files_cut"):
            out.truncation = {**out.truncation, "code_files_cut": [redaction.file_names.get(n, n)
                                                                   for n in out.truncation["code_files_cut"]]}
        out.flags.append(Flag(kind="redacted", detail=redaction.redactor.summary()))
        return out


def maybe_redact(judge: Judge, model: str | None, api_base: str | None, redact: bool | None,
                 terms: tuple[str, ...] = ()) -> Judge:
    """Wrap an LLM judge in redaction when asked (`redact`), or by default when the model is hosted."""
    on = is_hosted(model, api_base) if redact is None else redact
    return RedactingJudge(judge, terms) if on and judge.info().kind == "llm" else judge
