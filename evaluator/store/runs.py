"""Runs as users see them: a list with counts, and the truth about runs whose process died.

A run is written as 'running' when it starts and gets its final status when it ends. A process killed
outright (SIGKILL, OOM killer, power loss) never writes that status, so a stored 'running' alone
does not prove anything. Each run records its process id and host; a 'running' run on this host
whose process is gone is 'killed'. Runs of other hosts (a database on a shared drive) cannot be
checked from here and keep their stored status.
"""

from __future__ import annotations

import os
import socket
from typing import Any

RUN_COLUMNS = ("id", "started_at", "finished_at", "status", "command", "cohort", "judge_kind", "model",
               "prompt_version", "rubric_id", "rubric_version", "total", "scored", "partial", "unscored",
               "cached", "failed", "calls", "prompt_tokens", "completion_tokens", "cost_usd", "pid", "host")


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:  # pragma: no cover - e.g. an id the platform cannot address
        return False
    return True


def effective_status(status: str | None, pid: int | None, host: str | None) -> str | None:
    """'killed' for a run stored as running whose process on this host is gone; else the stored status."""
    if status == "running" and pid is not None and host == this_host() and pid != os.getpid() \
            and not process_alive(pid):
        return "killed"
    return status


def mark_killed(con: Any) -> int:
    """Record 'killed' for this host's runs whose process is gone (called when a run starts, in the
    writer's session). Returns how many were marked."""
    rows = con.execute("SELECT id, pid, host FROM runs WHERE status = 'running' AND pid IS NOT NULL AND host = ?",
                       [this_host()]).fetchall()
    dead = [r[0] for r in rows if effective_status("running", r[1], r[2]) == "killed"]
    if dead:
        con.execute("UPDATE runs SET status = 'killed' WHERE id IN (SELECT unnest(?))", [dead])
    return len(dead)


def other_live_runs(con: Any, run_id: str) -> list[dict[str, Any]]:
    """Runs other than `run_id` still in progress on this database (their process is alive, or on
    another host where that cannot be checked)."""
    rows = con.execute("SELECT id, cohort, pid, host FROM runs WHERE status = 'running' AND id <> ?",
                       [run_id]).fetchall()
    return [{"id": r[0], "cohort": r[1], "pid": r[2], "host": r[3]} for r in rows
            if effective_status("running", r[2], r[3]) == "running"]


def recent_runs(db: Any = None, cohort: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """`evaluate runs`: the newest runs in a database, read-only (a cohort writer may be running).

    A database from before the owner columns (migration 0005) lists its runs with unknown owners."""
    from evaluator.errors import BadInput
    from evaluator.store.db import default_db_path, open_store

    if limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    with open_store(db or default_db_path(), read_only=True, wait_seconds=5.0) as store:
        have = {r[0] for r in store.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'").fetchall()}
        if not have:
            return []
        where, params = ("WHERE cohort = ?", [cohort]) if cohort else ("", [])
        cols = ", ".join(c if c in have else f"NULL AS {c}" for c in RUN_COLUMNS)
        rows = store.con.execute(f"SELECT {cols} FROM runs {where} ORDER BY started_at DESC LIMIT ?",
                                 [*params, limit]).fetchall()
    out = []
    for row in rows:
        run = dict(zip(RUN_COLUMNS, row))
        run["status"] = effective_status(run["status"], run["pid"], run["host"])
        out.append(run)
    return out
