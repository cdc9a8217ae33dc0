"""Rubrics: YAML files validated by pydantic, versioned by content hash, extendable per exercise.

A rubric's version is the hash of its *resolved* definition (after `extends` is applied), so editing
either the base or the extension changes the version of every rubric that depends on it; stored
judgments and calibrations are tied to that version.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaluator.errors import BadInput
from evaluator.files import read_text

DEFAULT_RUBRIC_ID = "default"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID = r"^[a-z][a-z0-9_]*$"


class Scale(BaseModel):
    """The integer score range of a rubric; the judge's output schema is limited to it."""

    model_config = ConfigDict(extra="forbid")
    min: int = 1
    max: int = 5

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale.max ({self.max}) must be greater than scale.min ({self.min})")
        if self.max - self.min > 20:
            raise ValueError("scale spans more than 21 levels; use a coarser scale")
        return self

    @property
    def levels(self) -> list[int]:
        return list(range(self.min, self.max + 1))


class Dimension(BaseModel):
    """One thing the rubric scores, with anchors that say what each level means."""

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
        description="regexes the offline baseline judge looks for in candidate turns, "
                    "for dimensions it has no built-in signals for",
    )

    @field_validator("baseline_signals")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"bad regex {pattern!r}: {e}") from None
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
    extends_builtin: bool = Field(
        False, exclude=True, description="the base named by `extends` is a built-in rubric, not one in the same folder"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
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


def builtin_rubrics_dir() -> Path | None:
    """The rubrics that ship with evaluator: the source checkout's rubrics/, else the copy bundled in the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "rubrics", here / "_bundled" / "rubrics"):
        if candidate.is_dir() and any(candidate.glob("*.y*ml")):
            return candidate
    return None


def rubrics_dir() -> Path:
    """Where rubrics live: $EVALUATOR_RUBRICS_DIR, ./rubrics, the source checkout's, or the bundled copy.

    A folder other than the built-in one (`builtin_rubrics_dir()`) may still extend the built-in rubrics."""
    env = os.environ.get("EVALUATOR_RUBRICS_DIR")
    if env:
        return Path(env)
    cwd = Path.cwd() / "rubrics"
    if cwd.is_dir() and any(cwd.glob("*.y*ml")):
        return cwd
    return builtin_rubrics_dir() or Path(__file__).resolve().parent.parent / "rubrics"


def _is_builtin_dir(directory: Path) -> bool:
    builtin = builtin_rubrics_dir()
    if builtin is None:
        return False
    try:
        return directory.resolve() == builtin.resolve()
    except OSError:
        return False


def _clean_msg(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _loc(loc: tuple[Any, ...], dims: Any) -> str:
    """A pydantic error location, naming a dimension by its id (`dimensions['recovery'].anchors.3`) rather
    than by its index, which in an extending rubric points into the merged list the user never wrote."""
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "dimensions" and isinstance(loc[1], int) and isinstance(dims, list):
        i = loc[1]
        if 0 <= i < len(dims) and isinstance(dims[i], dict) and isinstance(dims[i].get("id"), str):
            parts = [f"dimensions['{dims[i]['id']}']"] + parts[2:]
    return ".".join(parts)


def _format_validation_error(path: Path, err: ValidationError, dims: Any = None) -> str:
    lines = [f"{path}: invalid rubric"]
    for e in err.errors():
        loc = _loc(tuple(e["loc"]), dims)
        lines.append(f"  - {loc}: {_clean_msg(e['msg'])}" if loc else f"  - {_clean_msg(e['msg'])}")
    return "\n".join(lines)


def read_rubric_file(path: Path) -> RubricFile:
    """A rubric file parsed and checked (safe YAML, capped size), or BadInput naming the file."""
    text = read_text(path, 1_000_000, "rubric file")  # regular files only: never a FIFO or /dev/zero
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as e:
        raise BadInput(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a rubric must be a YAML mapping with id, title and dimensions")
    try:
        return RubricFile.model_validate(data)
    except ValidationError as e:
        raise BadInput(_format_validation_error(path, e, data.get("dimensions"))) from None


Files = dict[str, tuple[Path, RubricFile]]


class _Layers:
    """Rubric files in lookup order: the file or folder in use first, the built-in rubrics last.

    Each layer is read only when a lookup reaches it. A rubric's base is looked up from the rubric's own
    layer onwards, so a user's file wins over a built-in with the same id, a built-in rubric always means
    what it means in the built-in folder, and a file that extends its own id (`id: default`,
    `extends: default`) extends the next layer's rubric of that id.
    """

    def __init__(self) -> None:
        self._sources: list[tuple[Callable[[], Files], bool]] = []
        self._loaded: dict[int, Files] = {}

    def add(self, files: Files | Callable[[], Files], builtin: bool = False) -> _Layers:
        self._sources.append(((lambda: files) if isinstance(files, dict) else files, builtin))
        return self

    def __len__(self) -> int:
        return len(self._sources)

    def files(self, i: int) -> Files:
        if i not in self._loaded:
            self._loaded[i] = self._sources[i][0]()
        return self._loaded[i]

    def builtin(self, i: int) -> bool:
        return self._sources[i][1]

    def find(self, rid: str, start: int = 0) -> tuple[int, Path, RubricFile] | None:
        for i in range(start, len(self)):
            files = self.files(i)
            if rid in files:
                return (i, *files[rid])
        return None

    def known(self, start: int = 0) -> tuple[list[str], list[str]]:
        """(ids in the user's layers, ids only in built-in layers) from `start` on, for error messages."""
        own: list[str] = []
        builtin: list[str] = []
        for i in range(start, len(self)):
            try:
                ids = list(self.files(i))
            except BadInput:
                continue
            (builtin if self.builtin(i) else own).extend(r for r in ids if r not in own and r not in builtin)
        return sorted(own), sorted(builtin)


def _layers(directory: Path | None, files: Files | None = None, layers: _Layers | None = None) -> _Layers:
    """The folder's rubrics (`files`, if already read), then the built-in ones unless the folder is the built-in one."""
    directory = directory or rubrics_dir()
    layers = layers or _Layers()
    is_builtin = _is_builtin_dir(directory)
    layers.add(files if files is not None else (lambda: load_rubric_files(directory)), builtin=is_builtin)
    builtin = builtin_rubrics_dir()
    if builtin is not None and not is_builtin:
        layers.add(lambda: load_rubric_files(builtin), builtin=True)
    return layers


def _did_you_mean(word: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean '{match[0]}'?" if match else ""


def _known_text(own: list[str], builtin: list[str]) -> str:
    """The ids one could have meant: the folder's own, then the built-in ones (with no rubrics folder of
    one's own, only the built-in ones: "known: none" beside a list would read as if none existed)."""
    if not own:
        return f"known (built-in): {', '.join(builtin)}" if builtin else "known: none"
    return f"known: {', '.join(own)}" + (f"; built-in: {', '.join(builtin)}" if builtin else "")


def _unknown_base(path: Path, rf: RubricFile, layers: _Layers, start: int) -> str:
    if rf.extends == rf.id:
        return (f"{path}: extends: '{rf.id}' is this rubric's own id, and there is no built-in rubric "
                f"'{rf.id}' for it to extend")
    own, builtin = layers.known(start)
    return (f"{path}: extends: unknown rubric id '{rf.extends}' ({_known_text(own, builtin)})"
            + _did_you_mean(rf.extends or "", own + builtin))


def _new_dimension_error(path: Path, rf: RubricFile, did: str, missing: list[str], base: Rubric | None) -> str:
    if base is None:
        return f"{path}: dimension '{did}' needs name, question and anchors (missing: {', '.join(missing)})"
    return (f"{path}: dimension '{did}' is not in the base rubric '{rf.extends}', so it needs name, question and "
            f"anchors" + _did_you_mean(did, base.dimension_ids))


def _resolve(layers: _Layers, rid: str, start: int = 0, chain: tuple[tuple[int, str], ...] = ()) -> Rubric:
    hit = layers.find(rid, start)
    if hit is None:
        raise BadInput(f"unknown rubric '{rid}' ({_known_text(*layers.known(start))})")
    layer, path, rf = hit
    if (layer, rid) in chain:
        raise BadInput(f"{path}: extends: circular chain {' -> '.join([c[1] for c in chain] + [rid])}")
    dims: list[dict] = []
    base: Rubric | None = None
    base_builtin = False
    if rf.extends:
        base_start = layer + 1 if rf.extends == rid else layer
        base_hit = layers.find(rf.extends, base_start)
        if base_hit is None:
            raise BadInput(_unknown_base(path, rf, layers, base_start))
        base = _resolve(layers, rf.extends, base_start, chain + ((layer, rid),))
        base_builtin = layers.builtin(base_hit[0]) and not layers.builtin(layer)
        dims = [d.model_dump() for d in base.dimensions]
    by_id = {d["id"]: d for d in dims}
    own = [p.id for p in rf.dimensions]
    for dup in sorted({i for i in own if own.count(i) > 1}):
        raise BadInput(f"{path}: dimensions: id '{dup}' appears more than once")
    problems: list[str] = []
    for patch in rf.dimensions:
        given = patch.model_dump(exclude_unset=True)
        if patch.id in by_id:
            target = by_id[patch.id]
            anchors = {**target["anchors"], **given.pop("anchors", {})}
            target.update({k: v for k, v in given.items() if v is not None})
            target["anchors"] = anchors
        else:
            new = {k: v for k, v in given.items() if v is not None}
            missing = [f for f in ("name", "question", "anchors") if not new.get(f)]
            if missing:
                problems.append(_new_dimension_error(path, rf, patch.id, missing, base))
            dims.append(new)
            by_id[patch.id] = new
    if len(problems) == 1:
        raise BadInput(problems[0])
    if problems:
        prefix = f"{path}: "
        raise BadInput(f"{path}: invalid rubric\n" + "\n".join(f"  - {p.removeprefix(prefix)}" for p in problems))
    try:
        # validated from plain data: the merged dimensions are dicts, checked (and located in errors) here
        return Rubric.model_validate({
            "id": rf.id,
            "title": rf.title,
            "description": rf.description,
            "exercises": rf.exercises,
            "scale": rf.scale or (base.scale if base else Scale()),
            "judge_mode": rf.judge_mode or (base.judge_mode if base else "single"),
            "guidance": "\n\n".join(g for g in ((base.guidance if base else ""), rf.guidance) if g),
            "dimensions": dims,
            "extends": rf.extends,
            "source": str(path),
            "extends_builtin": base_builtin,
        })
    except ValidationError as e:
        raise BadInput(_format_validation_error(path, e, dims)) from None


def load_rubric_files(directory: Path | None = None) -> Files:
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
    files: Files = {}
    for name, _, _ in signature:
        path = Path(name)
        rf = read_rubric_file(path)
        if rf.id in files:
            raise BadInput(f"{path}: rubric id '{rf.id}' is already defined in {files[rf.id][0]}")
        files[rf.id] = (path, rf)
    return tuple(files.items())


def _normalise_exercise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _exercise_claims(files: Files) -> dict[str, list[str]]:
    """Normalised exercise name -> ids of the rubrics that select it (a rubric's own id counts), in file order."""
    claims: dict[str, list[str]] = {}
    for rid, (_, rf) in files.items():
        for key in dict.fromkeys([rid, *(_normalise_exercise(e) for e in rf.exercises)]):
            if key:
                claims.setdefault(key, []).append(rid)
    return claims


def _ambiguous(exercise: str, owners: list[str], files: Files) -> str:
    named = " and ".join(f"'{rid}' ({files[rid][0]})" for rid in owners)
    return (f"exercise '{exercise}' is claimed by more than one rubric: {named}; "
            f"an exercise must select one rubric, so remove it from all but one file's exercises")


def _claim_conflicts(files: Files) -> list[tuple[Path, str]]:
    """(file, error) for every rubric that claims an exercise an earlier file already claims."""
    conflicts: list[tuple[Path, str]] = []
    for key, owners in _exercise_claims(files).items():
        for later in owners[1:]:
            path = files[later][0]
            conflicts.append((path, f"{path}: " + _ambiguous(key, [owners[0], later], files)))
    return conflicts


def load_all(directory: Path | None = None) -> list[Rubric]:
    """Every rubric in the directory, resolved. Raises BadInput naming the first bad file and field.

    A base named by `extends` that is not in the folder is looked up among the built-in rubrics."""
    files = load_rubric_files(directory)
    layers = _layers(directory, files)
    rubrics = [_resolve(layers, rid) for rid in files]
    conflicts = _claim_conflicts(files)
    if conflicts:
        raise BadInput(conflicts[0][1])
    return rubrics


def check_all(directory: Path | None = None) -> list[tuple[str, str | None]]:
    """Validate every file independently: (path, error or None) per file, so one bad file hides no other."""
    directory = directory or rubrics_dir()
    errors: dict[str, list[str]] = {}
    files: Files = {}
    if not directory.is_dir():
        raise BadInput(f"rubrics directory not found: {directory}")
    for path in sorted(directory.glob("*.y*ml")):
        errors[str(path)] = []
        try:
            rf = read_rubric_file(path)
            if rf.id in files:
                raise BadInput(f"{path}: rubric id '{rf.id}' is already defined in {files[rf.id][0]}")
            files[rf.id] = (path, rf)
        except BadInput as e:
            errors[str(path)].append(str(e))
    layers = _layers(directory, files)
    for rid, (path, _) in files.items():
        try:
            _resolve(layers, rid)
        except BadInput as e:
            errors[str(path)].append(str(e))
    for path, error in _claim_conflicts(files):
        errors[str(path)].append(error)
    return sorted((path, "\n".join(errs) or None) for path, errs in errors.items())


def _closest_exercise(wanted: str, known: list[str]) -> str:
    """` (did you mean X?)` for the known exercise nearest `wanted`: a close spelling (difflib), else
    one that contains it or is contained in it (`ttl` -> `ttl_cache`); else the list of known ones."""
    guess = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    if not guess:
        guess = sorted((k for k in known if wanted and (wanted in k or k in wanted)), key=len)[:1]
    if guess:
        return f" (did you mean {guess[0]}?)"
    return f" (known exercises: {', '.join(sorted(known))})" if known else ""


def select_rubric_with_warnings(
    rubric: str | None, exercise: str | None, directory: Path | None = None
) -> tuple[Rubric, list[str]]:
    """Like `select_rubric`, plus warnings worth showing the user: an exercise that matches no rubric
    (with the closest exercise name, if any) and so falls back to the default."""
    if rubric and (rubric.endswith((".yaml", ".yml")) or os.sep in rubric):
        path = Path(rubric)
        rf = read_rubric_file(path)
        layers = _layers(directory, layers=_Layers().add({rf.id: (path, rf)}))
        return _resolve(layers, rf.id), []
    files = load_rubric_files(directory)
    layers = _layers(directory, files)
    if rubric:
        if rubric not in files:
            own, builtin = layers.known()
            message = f"unknown rubric '{rubric}' ({_known_text(own, builtin)})"
            hit = layers.find(rubric)
            if hit is not None:  # only a built-in layer can hold it
                raise BadInput(f"{message}; '{rubric}' is a built-in rubric but {directory or rubrics_dir()} is the "
                               f"rubrics folder in use: select it by path ({hit[1]}), or add a file there that "
                               f"extends it")
            raise BadInput(message + _did_you_mean(rubric, own + builtin))
        return _resolve(layers, rubric), []
    warnings: list[str] = []
    wanted = _normalise_exercise(exercise) if exercise else ""
    if exercise and exercise.strip():
        claims = _exercise_claims(files)
        owners = claims.get(wanted, [])
        if len(owners) > 1:
            raise BadInput(_ambiguous(exercise, owners, files))
        if owners:
            return _resolve(layers, owners[0]), []
        hint = _closest_exercise(wanted, [k for k in claims if k != DEFAULT_RUBRIC_ID])
        warnings.append(f"exercise '{exercise}' matches no rubric{hint}; using '{DEFAULT_RUBRIC_ID}'")
    if DEFAULT_RUBRIC_ID not in files:
        folder = directory or rubrics_dir()
        message = f"no '{DEFAULT_RUBRIC_ID}' rubric in {folder}"
        if DEFAULT_RUBRIC_ID in layers.known()[1]:
            message += (f"; to use the built-in one, add {Path(folder) / (DEFAULT_RUBRIC_ID + '.yaml')} with "
                        f"`id: {DEFAULT_RUBRIC_ID}`, a `title` and `extends: {DEFAULT_RUBRIC_ID}`")
        raise BadInput(message)
    return _resolve(layers, DEFAULT_RUBRIC_ID), warnings


def select_rubric(rubric: str | None, exercise: str | None, directory: Path | None = None) -> Rubric:
    """`rubric` may be an id or a YAML path; otherwise the exercise picks one; otherwise the default.

    See `select_rubric_with_warnings` for the warnings this drops (an exercise that matches no rubric)."""
    return select_rubric_with_warnings(rubric, exercise, directory)[0]
