"""Minimal retrieval-augmented generation pipeline, written during the interview in rag_pipeline.md.

chunk -> embed (batched) -> brute-force top-k by cosine -> prompt assembly -> cited answer.

Two rules hold for every call:
  1. No chunk is longer than `max_tokens` tokens.
  2. Every answer cites at least one chunk id, and only ids that were retrieved for that question.
     If the model's answer breaks this, we return IDK instead of an uncited answer.

The embedder and the model are plain callables so tests can use deterministic fakes.
Run `python rag_pipeline.py` to execute the tests at the bottom.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

IDK = "I don't know based on the provided documents."

Tokenizer = Callable[[str], list[str]]
Embedder = Callable[[Sequence[str]], list[list[float]]]
LLM = Callable[[str], str]

CITATION = re.compile(r"\[([^\[\]\s]+#\d+)\]")


def whitespace_tokenize(text: str) -> list[str]:
    """Stand-in tokenizer. In production this is the embedding model's own tokenizer."""
    return text.split()


@dataclass(frozen=True)
class Chunk:
    id: str  # "<doc_id>#<n>", stable for a given document and chunking config
    doc_id: str
    text: str
    n_tokens: int


@dataclass
class Answer:
    text: str
    citations: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- chunking


def chunk_document(
    doc_id: str,
    text: str,
    max_tokens: int = 200,
    overlap: int = 20,
    tokenize: Tokenizer = whitespace_tokenize,
) -> list[Chunk]:
    """Split one document into windows of at most `max_tokens` tokens, `overlap` tokens shared."""
    if max_tokens <= 0:
        raise ValueError("max_tokens must be positive")
    if not 0 <= overlap < max_tokens:
        raise ValueError("overlap must be in [0, max_tokens)")
    tokens = tokenize(text)
    chunks: list[Chunk] = []
    step = max_tokens - overlap
    for n, start in enumerate(range(0, len(tokens), step)):
        window = tokens[start : start + max_tokens]
        chunks.append(Chunk(f"{doc_id}#{n}", doc_id, " ".join(window), len(window)))
        if start + max_tokens >= len(tokens):
            break
    return chunks


def _fingerprint(text: str) -> str:
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()


def dedupe(chunks: Sequence[Chunk], seen: set[str] | None = None) -> list[Chunk]:
    """Drop chunks whose normalised text was already seen. Keeps the first occurrence."""
    seen = set() if seen is None else seen
    out = []
    for chunk in chunks:
        key = _fingerprint(chunk.text)
        if key in seen:
            continue
        seen.add(key)
        out.append(chunk)
    return out


# --------------------------------------------------------------------------- retrieval


def _normalise(v: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    if norm == 0.0:
        return [0.0] * len(v)  # scores 0 against everything; never divides by zero
    return [x / norm for x in v]


class BruteForceIndex:
    """Exact top-k by cosine. O(n*d) per query; fine up to a few hundred thousand chunks."""

    def __init__(self, embed: Embedder, batch_size: int = 64):
        self.embed = embed
        self.batch_size = batch_size
        self.chunks: list[Chunk] = []
        self.vectors: list[list[float]] = []
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self.chunks)

    def add(self, chunks: Sequence[Chunk]) -> int:
        """Embed and store new chunks in batches. Returns how many were added after dedupe."""
        fresh = dedupe(chunks, self._seen)
        for i in range(0, len(fresh), self.batch_size):
            batch = fresh[i : i + self.batch_size]
            vectors = self.embed([c.text for c in batch])
            if len(vectors) != len(batch):
                raise RuntimeError("embedder returned a different number of vectors than inputs")
            self.chunks.extend(batch)
            self.vectors.extend(_normalise(v) for v in vectors)
        return len(fresh)

    def search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        if k <= 0 or not self.chunks:
            return []  # empty corpus: no embedding call at all
        q = _normalise(self.embed([query])[0])
        scored = ((c, sum(a * b for a, b in zip(q, v))) for c, v in zip(self.chunks, self.vectors))
        return heapq.nlargest(min(k, len(self.chunks)), scored, key=lambda pair: pair[1])


# --------------------------------------------------------------------------- prompt + answer

INSTRUCTIONS = (
    "Answer the question using only the sources below. "
    "Cite every claim with the source id in square brackets, e.g. [doc1#0]. "
    f"If the sources do not contain the answer, reply exactly: {IDK}"
)


def build_prompt(
    question: str,
    hits: Sequence[tuple[Chunk, float]],
    max_context_tokens: int = 1500,
) -> tuple[str, list[Chunk]]:
    """Assemble the prompt, best chunks first, stopping before the context budget is exceeded."""
    used: list[Chunk] = []
    budget = max_context_tokens
    for chunk, _score in hits:
        if chunk.n_tokens > budget:
            break
        used.append(chunk)
        budget -= chunk.n_tokens
    sources = "\n\n".join(f"[{c.id}] {c.text}" for c in used)
    return f"{INSTRUCTIONS}\n\nSources:\n{sources}\n\nQuestion: {question}\nAnswer:", used


def answer(
    question: str,
    index: BruteForceIndex,
    llm: LLM,
    k: int = 4,
    min_score: float = 0.2,
) -> Answer:
    hits = [h for h in index.search(question, k) if h[1] >= min_score]
    if not hits:
        return Answer(IDK)  # nothing relevant: no model call, no tokens spent
    prompt, used = build_prompt(question, hits)
    if not used:
        return Answer(IDK)
    text = llm(prompt).strip()
    cited = CITATION.findall(text)
    allowed = {c.id for c in used}
    if not cited or any(c not in allowed for c in cited):
        return Answer(IDK)  # uncited or cites something we never showed it
    return Answer(text, list(dict.fromkeys(cited)))


# --------------------------------------------------------------------------- test doubles + tests


class HashingEmbedder:
    """Deterministic bag-of-words embedder that also counts calls, for tests and cost checks."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
        out = []
        for text in texts:
            v = [0.0] * self.dim
            for tok in re.findall(r"[a-z0-9]+", text.lower()):
                v[int(hashlib.md5(tok.encode()).hexdigest(), 16) % self.dim] += 1.0
            out.append(v)
        return out


def citing_llm(prompt: str) -> str:
    """Fake model: answers with the first source it was shown."""
    first = CITATION.search(prompt.split("Sources:", 1)[1])
    return f"According to the docs, yes [{first.group(1)}]." if first else IDK


def test_chunks_never_exceed_max_tokens():
    text = " ".join(f"w{i}" for i in range(1037))
    chunks = chunk_document("long", text, max_tokens=50, overlap=10)
    assert chunks and all(c.n_tokens <= 50 for c in chunks)
    assert all(len(whitespace_tokenize(c.text)) <= 50 for c in chunks)
    assert chunks[-1].text.endswith("w1036")  # nothing dropped at the tail


def test_empty_document_and_empty_corpus():
    assert chunk_document("empty", "") == []
    emb = HashingEmbedder()
    index = BruteForceIndex(emb)
    assert answer("anything?", index, citing_llm).text == IDK
    assert emb.calls == 0


def test_duplicate_chunks_are_embedded_once():
    emb = HashingEmbedder()
    index = BruteForceIndex(emb)
    same = "Refunds are processed within 5 business days."
    added = index.add(chunk_document("a", same) + chunk_document("b", same.upper()))
    assert added == 1 and len(index) == 1 and emb.texts == 1


def test_irrelevant_query_says_idk_without_model_call():
    index = BruteForceIndex(HashingEmbedder())
    index.add(chunk_document("faq", "Refunds are processed within 5 business days."))
    calls = []
    llm = lambda p: calls.append(p) or "should not be called"  # noqa: E731
    assert answer("quantum chromodynamics lattice", index, llm).text == IDK
    assert calls == []


def test_answer_cites_only_retrieved_ids():
    index = BruteForceIndex(HashingEmbedder())
    index.add(chunk_document("faq", "Refunds are processed within 5 business days."))
    index.add(chunk_document("ship", "Shipping to Canada takes 10 days."))
    result = answer("how long are refunds processed", index, citing_llm, k=1)
    assert result.citations == ["faq#0"]
    invented = answer("how long are refunds processed", index, lambda p: "Yes [other#9].")
    assert invented.text == IDK
    uncited = answer("how long are refunds processed", index, lambda p: "Five days.")
    assert uncited.text == IDK


def test_k_larger_than_corpus():
    index = BruteForceIndex(HashingEmbedder())
    index.add(chunk_document("faq", "Refunds are processed within 5 business days."))
    assert len(index.search("refunds", k=10)) == 1
    assert index.search("refunds", k=0) == []


def test_prompt_respects_context_budget():
    chunks = chunk_document("big", " ".join(f"t{i}" for i in range(900)), max_tokens=200, overlap=0)
    _prompt, used = build_prompt("q", [(c, 1.0) for c in chunks], max_context_tokens=450)
    assert sum(c.n_tokens for c in used) <= 450 and len(used) == 2


def test_embedding_calls_are_batched():
    emb = HashingEmbedder()
    index = BruteForceIndex(emb, batch_size=64)
    text = " ".join(f"x{i}" for i in range(200 * 130))
    index.add(chunk_document("d", text, max_tokens=200, overlap=0))
    assert len(index) == 130 and emb.calls == 3  # ceil(130 / 64)


if __name__ == "__main__":
    tests = [f for name, f in sorted(globals().items()) if name.startswith("test_")]
    for t in tests:
        t()
        print(f"ok  {t.__name__}")
    print(f"{len(tests)} passed")
