"""Rubrics: YAML files validated by pydantic, versioned by content hash, extendable per exercise.

A rubric's version is the hash of its *resolved* definition (after `extends` is applied), so editing
either the base or the extension changes the version of every rubric that depends on it; stored
judgments and calibrations are tied to that version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaluator.errors import BadInput

DEFAULT_RUBRIC_ID = "default"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID = r"^[a-z][a-z0-9_]*$"


class Scale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int = 1
    max: int = 5

    @model_validator(mode="after")
    def _ordered(self) -> "Scale":
        if self.max <= self.min:
            raise ValueError(f"scale.max ({self.max}) must be greater than scale.min ({self.min})")
        if self.max - self.min > 20:
            raise ValueError("scale spans more than 21 levels; use a coarser scale")
        return self

    @property
    def levels(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    question: str = Field(min_length=1)
    anchors: dict[int, str]
    allow_not_observed: bool = False
    not_observed_when: str | None = Field(
        None, description="when 'not observed' is the right answer (e.g. no mistake happened)"
    )
    baseline_signals: list[str] = Field(
        default_factory=list,
        description="regexes the offline baseline judge looks for in candidate turns, for dimensions it has no built-in signals for",
    )

    @field_validator("baseline_signals")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"baseline_signals: bad regex {pattern!r}: {e}") from None
        return v

    @field_validator("anchors")
    @classmethod
    def _anchor_text(cls, v: dict[int, str]) -> dict[int, str]:
        for level, text in v.items():
            if not str(text).strip():
                raise ValueError(f"anchor for level {level} is empty")
        return dict(sorted(v.items()))


class DimensionPatch(BaseModel):
    """A dimension in an extending rubric: any field given replaces the base's (anchors merge)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID)
    name: str | None = None
    question: str | None = None
    anchors: dict[int, str] = Field(default_factory=dict)
    allow_not_observed: bool | None = None
    not_observed_when: str | None = None
    baseline_signals: list[str] | None = None


class RubricFile(BaseModel):
    """The YAML file as written. `extends` names another rubric id whose dimensions it starts from."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    description: str = ""
    extends: str | None = None
    exercises: list[str] = Field(default_factory=list)
    scale: Scale | None = None
    judge_mode: Literal["single", "per_dimension"] | None = None
    guidance: str = ""
    dimensions: list[DimensionPatch] = Field(default_factory=list)


class Rubric(BaseModel):
    """A resolved rubric, ready to judge with."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    description: str = ""
    exercises: list[str] = Field(default_factory=list)
    scale: Scale = Field(default_factory=Scale)
    judge_mode: Literal["single", "per_dimension"] = "single"
    guidance: str = ""
    dimensions: list[Dimension]
    extends: str | None = None
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "Rubric":
        if not self.dimensions:
            raise ValueError("a rubric needs at least one dimension")
        seen: set[str] = set()
        for d in self.dimensions:
            if d.id in seen:
                raise ValueError(f"dimension id '{d.id}' appears twice")
            seen.add(d.id)
            levels = set(self.scale.levels)
            if set(d.anchors) != levels:
                missing = sorted(levels - set(d.anchors))
                extra = sorted(set(d.anchors) - levels)
                parts = []
                if missing:
                    parts.append(f"missing anchors for levels {missing}")
                if extra:
                    parts.append(f"anchors outside the scale {self.scale.min}-{self.scale.max}: {extra}")
                raise ValueError(f"dimension '{d.id}': " + "; ".join(parts))
        return self

    @cached_property
    def version(self) -> str:
        """Content hash of the resolved definition: any edit that changes judging changes it."""
        payload = self.model_dump(mode="json", exclude={"source"})
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        return f"{self.id}@{digest[:12]}"

    def dimension(self, dim_id: str) -> Dimension:
        for d in self.dimensions:
            if d.id == dim_id:
                return d
        raise KeyError(dim_id)

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]


def rubrics_dir() -> Path:
    """Where rubrics live: $EVALUATOR_RUBRICS_DIR, ./rubrics, the source checkout's, or the bundled copy."""
    env = os.environ.get("EVALUATOR_RUBRICS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (Path.cwd() / "rubrics", here.parent / "rubrics", here / "_bundled" / "rubrics"):
        if candidate.is_dir() and any(candidate.glob("*.y*ml")):
            return candidate
    return here.parent / "rubrics"


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid rubric"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {loc}: {e['msg']}")
    return "\n".join(lines)


def read_rubric_file(path: Path) -> RubricFile:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except FileNotFoundError:
        raise BadInput(f"{path}: rubric file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a rubric must be a YAML mapping with id, title and dimensions")
    try:
        return RubricFile.model_validate(data)
    except ValidationError as e:
        raise BadInput(_format_validation_error(path, e)) from None


def _resolve(files: dict[str, tuple[Path, RubricFile]], rid: str, chain: tuple[str, ...] = ()) -> Rubric:
    path, rf = files[rid]
    if rid in chain:
        raise BadInput(f"{path}: extends: circular chain {' -> '.join(chain + (rid,))}")
    dims: list[dict] = []
    base: Rubric | None = None
    if rf.extends:
        if rf.extends not in files:
            raise BadInput(f"{path}: extends: unknown rubric id '{rf.extends}' (known: {', '.join(sorted(files))})")
        base = _resolve(files, rf.extends, chain + (rid,))
        dims = [d.model_dump() for d in base.dimensions]
    by_id = {d["id"]: d for d in dims}
    own = [p.id for p in rf.dimensions]
    for dup in sorted({i for i in own if own.count(i) > 1}):
        raise BadInput(f"{path}: dimensions: id '{dup}' appears more than once")
    for patch in rf.dimensions:
        given = patch.model_dump(exclude_unset=True)
        if patch.id in by_id:
            target = by_id[patch.id]
            anchors = {**target["anchors"], **given.pop("anchors", {})}
            target.update({k: v for k, v in given.items() if v is not None})
            target["anchors"] = anchors
        else:
            new = {k: v for k, v in given.items() if v is not None}
            dims.append(new)
            by_id[patch.id] = new
    try:
        return Rubric(
            id=rf.id,
            title=rf.title,
            description=rf.description,
            exercises=rf.exercises,
            scale=rf.scale or (base.scale if base else Scale()),
            judge_mode=rf.judge_mode or (base.judge_mode if base else "single"),
            guidance="\n\n".join(g for g in ((base.guidance if base else ""), rf.guidance) if g),
            dimensions=dims,
            extends=rf.extends,
            source=str(path),
        )
    except ValidationError as e:
        raise BadInput(_format_validation_error(path, e)) from None


def load_rubric_files(directory: Path | None = None) -> dict[str, tuple[Path, RubricFile]]:
    """Every rubric file in the folder, read once per change (keyed on names, sizes and mtimes):
    a cohort selects a rubric per transcript and must not re-parse YAML each time."""
    directory = directory or rubrics_dir()
    if not directory.is_dir():
        raise BadInput(f"rubrics directory not found: {directory}")
    paths = sorted(directory.glob("*.y*ml"))
    signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return dict(_read_files(signature))


@lru_cache(maxsize=16)
def _read_files(signature: tuple[tuple[str, int, int], ...]) -> tuple[tuple[str, tuple[Path, RubricFile]], ...]:
    files: dict[str, tuple[Path, RubricFile]] = {}
    for name, _, _ in signature:
        path = Path(name)
        rf = read_rubric_file(path)
        if rf.id in files:
            raise BadInput(f"{path}: rubric id '{rf.id}' is already defined in {files[rf.id][0]}")
        files[rf.id] = (path, rf)
    return tuple(files.items())


def load_all(directory: Path | None = None) -> list[Rubric]:
    """Every rubric in the directory, resolved. Raises BadInput naming the first bad file and field."""
    files = load_rubric_files(directory)
    return [_resolve(files, rid) for rid in files]


def check_all(directory: Path | None = None) -> list[tuple[str, str | None]]:
    """Validate every file independently: (path, error or None) per file, so one bad file hides no other."""
    directory = directory or rubrics_dir()
    results: list[tuple[str, str | None]] = []
    files: dict[str, tuple[Path, RubricFile]] = {}
    if not directory.is_dir():
        raise BadInput(f"rubrics directory not found: {directory}")
    for path in sorted(directory.glob("*.y*ml")):
        try:
            rf = read_rubric_file(path)
            if rf.id in files:
                raise BadInput(f"{path}: rubric id '{rf.id}' is already defined in {files[rf.id][0]}")
            files[rf.id] = (path, rf)
        except BadInput as e:
            results.append((str(path), str(e)))
    for rid, (path, _) in files.items():
        try:
            _resolve(files, rid)
            results.append((str(path), None))
        except BadInput as e:
            results.append((str(path), str(e)))
    return sorted(results)


def _normalise_exercise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def select_rubric(rubric: str | None, exercise: str | None, directory: Path | None = None) -> Rubric:
    """`rubric` may be an id or a YAML path; otherwise the exercise picks one; otherwise the default."""
    if rubric and (rubric.endswith((".yaml", ".yml")) or os.sep in rubric):
        path = Path(rubric)
        rf = read_rubric_file(path)
        files = load_rubric_files(directory) if rf.extends else {}
        files[rf.id] = (path, rf)
        return _resolve(files, rf.id)
    files = load_rubric_files(directory)
    if rubric:
        if rubric not in files:
            raise BadInput(f"unknown rubric '{rubric}' (known: {', '.join(sorted(files))})")
        return _resolve(files, rubric)
    if exercise:
        wanted = _normalise_exercise(exercise)
        for rid, (_, rf) in files.items():
            if wanted == rid or wanted in {_normalise_exercise(e) for e in rf.exercises}:
                return _resolve(files, rid)
    if DEFAULT_RUBRIC_ID not in files:
        raise BadInput(f"no '{DEFAULT_RUBRIC_ID}' rubric in {directory or rubrics_dir()}")
    return _resolve(files, DEFAULT_RUBRIC_ID)
