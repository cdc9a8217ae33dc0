"""What the judge layer keeps on disk between processes, so a re-run whose judgments are all cached
pays for none of the work that only serves to name the judge.

Two things are kept, both under `cache_dir()`:
- litellm's facts about a model (capabilities.py), per litellm version;
- the judge versions (prompt.prompt_version, baseline.baseline_version). Each is computed by
  running the judge on fixed probes (probe.py): exact, but ~0.1 s of CPU plus the jinja2 import and
  the schema building a cached run otherwise never needs. They are kept under a fingerprint of
  everything that computation can read: every file of the evaluator package (code, templates,
  probes), the Python version, and the installed distributions with their versions. Any edit to
  any of them, a comment included, changes the fingerprint, so the version is computed again (and
  comes out the same when the edit changes nothing the judge produces): a stale version is never
  read back, and a changed template or fencing still misses every cache key built on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

VERSIONS_FILE = "judge-versions.json"
KEPT_FINGERPRINTS = 8  # several checkouts or environments may share one cache directory


def cache_dir() -> Path:
    """$EVALUATOR_CACHE_DIR, else the user's cache directory ($XDG_CACHE_HOME or ~/.cache)/evaluator."""
    return Path(os.environ.get("EVALUATOR_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "evaluator"))


def read_json(path: Path) -> dict[str, Any]:
    """A kept JSON object, or {} when it is missing or unreadable (then it is computed again)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return kept if isinstance(kept, dict) else {}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Replace the file whole (a reader never sees half of it); best effort: a read-only home only
    means the work is done again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


def _site_dirs() -> list[str]:
    return sorted({p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)})


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """sha256 over the package's files (~1.4 MB, a few ms), the Python version and the names of the
    installed distributions (`name-version.dist-info`: an upgrade of jinja2 or pydantic counts)."""
    import evaluator

    h = hashlib.sha256(f"judge-versions-1\0{sys.version}\0".encode())
    root = Path(evaluator.__file__).resolve().parent
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        data = path.read_bytes()
        h.update(f"\0{path.relative_to(root).as_posix()}\0{len(data)}\0".encode() + data)
    for folder in _site_dirs():
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        h.update(f"\0{folder}\0".encode() + "\n".join(names).encode())
    return h.hexdigest()


def remembered(name: str, compute: Callable[[], str]) -> str:
    """The judge version `name` for this exact code and environment: read back when kept, else
    computed and kept (under the fingerprint; the file keeps the newest KEPT_FINGERPRINTS)."""
    path = cache_dir() / VERSIONS_FILE
    kept = read_json(path)
    key = fingerprint()
    entry = kept.pop(key, None)
    entry = entry if isinstance(entry, dict) else {}
    value = entry.get(name)
    if isinstance(value, str) and value:
        return value
    value = compute()
    kept[key] = {**entry, name: value}  # newest last
    write_json(path, dict(list(kept.items())[-KEPT_FINGERPRINTS:]))
    return value
