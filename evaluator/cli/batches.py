"""`evaluate batches [list|collect|cancel] [--cohort NAME]`: the provider batches in the ledger."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from evaluator.cli import app, console
from evaluator.cli import options as opt

Action = Annotated[str, typer.Argument(help="list (default), collect (poll, store finished results, submit the next wave of queued batches), or cancel.")]


@app.command("batches")
def batches_cmd(
    action: Action = "list",
    cohort: Annotated[Optional[str], typer.Option("--cohort", help="Only this cohort's batches.")] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="EVALUATOR_API_KEY", help="Key for the provider (collect, cancel).")] = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds per provider call.")] = 120.0,
    max_enqueued_tokens: Annotated[Optional[int], typer.Option("--max-enqueued-tokens", min=0, help="collect: submit the next wave of queued batches under this enqueued-token limit (default: the one the ledger remembers; 0: none).")] = None,
    db: opt.Db = None,
    output_format: opt.Format = "table",
) -> None:
    """Provider batches (`evaluate cohort --batch`): state and request counts; collect; cancel."""
    from evaluator.batch import provider_batch as pb
    from evaluator.errors import BadInput

    if action == "list":
        rows = pb.list_batches(db, cohort)
    elif action == "collect":
        rows = pb.collect_batches(db, cohort, api_key, timeout, max_enqueued_tokens)
    elif action == "cancel":
        rows = pb.cancel_batches(db, cohort, api_key, timeout)
    else:
        raise BadInput(f"unknown action {action!r}: use list, collect or cancel")
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str, ensure_ascii=False) + "\n")
        return
    if not rows:
        _say_none(action, cohort, db)
        return
    from rich.table import Table

    table = Table("ledger id", "cohort", "state", "provider status", "batch id", "requests")
    for r in rows:
        reqs = r.get("requests") or r.get("counts") or {}
        table.add_row(str(r["id"])[:8], str(r.get("cohort") or "-"), str(r.get("state") or r.get("status")),
                      str(r.get("provider_status") or r.get("status") or "-"), str(r.get("batch_id") or "-"),
                      ", ".join(f"{k} {v}" for k, v in reqs.items()))
    console().print(table)


def _say_none(action: str, cohort: str | None, db: Path | None) -> None:
    """No batch in the ledger: a headers-only table reads like a rendering fault, so say so, and how
    batches come to be."""
    from evaluator.store.db import default_db_path

    scope = f" for cohort {cohort!r}" if cohort else ""
    done = {"list": "", "collect": ": nothing to collect", "cancel": ": nothing to cancel"}[action]
    console().print(f"no provider batches{scope} in {db or default_db_path()}{done} (`evaluate cohort PATH "
                    "--cohort NAME --batch --model MODEL` submits them)", markup=False)
