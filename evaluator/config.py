"""Project settings from `evaluate.toml` or `[tool.evaluate]` in `pyproject.toml`.

Precedence: a flag beats the environment (EVALUATOR_MODEL, EVALUATOR_API_BASE, EVALUATOR_DB,
EVALUATOR_RUBRICS_DIR), which beats the config file, which beats the built-in default. The file's
values become click's `default_map` for the commands they apply to, so they go through the same
type and range checks as a flag. An unknown key or a wrong type is an error (exit 2) naming the file.

The file is looked up from the working directory upwards; the first folder with an `evaluate.toml`,
or a `pyproject.toml` with a `[tool.evaluate]` table, wins. `EVALUATOR_CONFIG=FILE` names one
explicitly. Relative paths in it (db, rubrics_dir) are relative to the file's folder.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from evaluator.errors import BadInput

CONFIG_ENV = "EVALUATOR_CONFIG"
RUBRICS_DIR_ENV = "EVALUATOR_RUBRICS_DIR"


class Settings(BaseModel):
    """The keys a config file may set (all optional)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = None  # litellm model; unset: the offline baseline judge
    api_base: str | None = None
    db: Path | None = None
    rubrics_dir: Path | None = None
    concurrency: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    price_in: float | None = None
    price_out: float | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    retries: int | None = None
    retry_wait: float | None = None
    repair_attempts: int | None = None
    context_tokens: int | None = None


JUDGE_KEYS = ("model", "api_base", "temperature", "max_tokens", "timeout", "retries", "retry_wait",
              "repair_attempts", "context_tokens", "price_in", "price_out")
# Which keys reach which command (by name); `db` reaches every command with a --db option.
COMMAND_KEYS = {"judge": JUDGE_KEYS, "cohort": (*JUDGE_KEYS, "concurrency", "rpm", "tpm")}


def find_config(start: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The config file in use and its raw table, or None."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise BadInput(f"{CONFIG_ENV}={explicit}: no such file")
        table = _read(path)
        return path, (table.get("tool", {}).get("evaluate", {}) if path.name == "pyproject.toml" else table)
    folder = (start or Path.cwd()).resolve()
    for d in (folder, *folder.parents):
        if (d / "evaluate.toml").is_file():
            return d / "evaluate.toml", _read(d / "evaluate.toml")
        if (d / "pyproject.toml").is_file():
            tool = _read(d / "pyproject.toml").get("tool", {})
            if isinstance(tool, dict) and "evaluate" in tool:
                return d / "pyproject.toml", tool["evaluate"]
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None


def load_settings(start: Path | None = None) -> tuple[Path | None, Settings]:
    """Read and validate the config file (an empty Settings when there is none)."""
    found = find_config(start)
    if found is None:
        return None, Settings()
    path, table = found
    where = f"{path} [tool.evaluate]" if path.name == "pyproject.toml" else str(path)
    if not isinstance(table, dict):
        raise BadInput(f"{where}: expected a table of settings")
    try:
        settings = Settings.model_validate(table)
    except ValidationError as e:
        raise BadInput(f"{where}: {_explain(e)}") from None
    for key in ("db", "rubrics_dir"):
        value = getattr(settings, key)
        if value is not None and not value.is_absolute():
            setattr(settings, key, path.parent / value)
    return path, settings


def _explain(error: ValidationError) -> str:
    known = list(Settings.model_fields)
    problems = []
    for err in error.errors():
        key = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"
            problems.append(f"unknown key '{key}'{hint}")
        else:
            problems.append(f"'{key}': {err['msg']}")
    return "; ".join(problems)


def default_map(settings: Settings, commands: Mapping[str, Any]) -> dict[str, Any]:
    """Click `default_map` for the command tree `commands` (name -> click command)."""
    values = settings.model_dump(exclude_none=True)
    out: dict[str, Any] = {}
    for name, command in commands.items():
        params = {p.name for p in getattr(command, "params", [])}
        entry = {k: values[k] for k in COMMAND_KEYS.get(name, ()) if k in values and k in params}
        if "db" in values and "db" in params:
            entry["db"] = values["db"]
        if "rubrics_dir" in values and "directory" in params:  # `evaluate rubrics list --dir`
            entry["directory"] = values["rubrics_dir"]
        sub = getattr(command, "commands", None)
        if sub:
            entry.update(default_map(settings, sub))
        if entry:
            out[name] = entry
    return out


def apply_settings(settings: Settings) -> None:
    """The one setting that reaches the library through the environment: the rubrics folder
    (only when the environment does not set it: environment beats config).
    """
    if settings.rubrics_dir is not None and not os.environ.get(RUBRICS_DIR_ENV):
        os.environ[RUBRICS_DIR_ENV] = str(settings.rubrics_dir)
