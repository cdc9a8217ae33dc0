"""Fixed probe inputs that judge versions are computed from (package data in `probes/`).

A judge's version must change exactly when what it produces changes. Hashing source files gets that
wrong both ways (a docstring edit changes it; a change in a module it imports does not), so instead
each judge is run on these fixed inputs and its output is hashed: the LLM judge's rendered prompts
(prompt.prompt_version), the baseline judge's scores (baseline.baseline_version). The inputs go
through the real ingest code, so a parser change that alters what a judge reads alters its version.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from evaluator.models import CodeFile, Transcript
from evaluator.rubrics import Rubric


def text(name: str) -> str:
    """Probe files ship as package data, so versions are computed the same from a wheel as from a checkout."""
    return resources.files("evaluator.judge").joinpath("probes", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def rubric() -> Rubric:
    """Every built-in baseline dimension, one rubric-defined one with signals, one "not observed"."""
    import yaml

    return Rubric.model_validate(yaml.safe_load(text("rubric.yaml")))


def code_file(name: str, shown_as: str | None = None) -> CodeFile:
    """A probe code file; `shown_as` lets a probe use a hostile file name without shipping a file by that name."""
    return CodeFile(name=shown_as or name, path=f"probes/{name}", content=text(name), language="python")


def transcript(name: str, code: tuple[CodeFile, ...] = ()) -> Transcript:
    """A probe transcript read and parsed the way `evaluate` reads a file."""
    from evaluator.front_matter import split_front_matter
    from evaluator.ingest import Source, content_hash, parse_source

    raw = text(name)
    meta, body, body_line, warnings = split_front_matter(raw)
    files = list(code)
    return parse_source(Source(Path("probes") / name, raw, meta, body, body_line, files, warnings,
                               content_hash(raw, files)))
