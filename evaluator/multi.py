"""`evaluate A.md B.md -`: judge several transcripts (or standard input) one by one, with a score gate.

Each transcript is judged and stored on its own (`pipeline.evaluate_file`); one unreadable file never
stops the others, and the call's exit code is the worst of theirs (`errors.worst_exit_code`). A judge
that cannot be used at all (exit 3) stops the call: every later file would fail the same way.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from evaluator.errors import (
    EXIT_BELOW_THRESHOLD,
    EXIT_NOT_FULLY_SCORED,
    EXIT_OK,
    BadInput,
    EvaluatorError,
    JudgeUnavailable,
)
from evaluator.gate import check, judgment_scores
from evaluator.pipeline import EvaluateRequest, EvaluateResult, evaluate_file

STDIN = "-"
STDIN_SOURCE = "<stdin>"


@dataclass
class FilesRequest:
    """What `evaluate A.md B.md -` was asked: the transcripts ('-' is stdin), how to judge each
    (`each`: code, rubric, judge, store, the --fail-under gate; its `transcript` is replaced by each
    one in turn)."""

    transcripts: list[str]
    each: EvaluateRequest


@dataclass
class FileOutcome:
    """One transcript's result (or its error), the gate's failures, and its exit code."""

    name: str
    result: EvaluateResult | None = None
    error: EvaluatorError | None = None
    below: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        assert self.result is not None
        if self.result.judgment.status != "scored":
            return EXIT_NOT_FULLY_SCORED
        return EXIT_BELOW_THRESHOLD if self.below else EXIT_OK


def read_stdin_transcript(stream: BinaryIO, code: list[Path]):  # -> Transcript
    """A transcript piped on standard input, read with the same checks as a file (size, encoding,
    front matter) and named `<stdin>`. Code files come from `--code` only: stdin has no folder.
    """
    from evaluator.ingest import MAX_FILE_BYTES, load_transcript

    data = stream.read(MAX_FILE_BYTES + 1)
    with tempfile.TemporaryDirectory(prefix="evaluate-stdin-") as folder:
        path = Path(folder) / "stdin.md"
        path.write_bytes(data)
        try:
            transcript = load_transcript(path, code)
        except BadInput as e:
            raise BadInput(str(e).replace(str(path), STDIN_SOURCE)) from None
    transcript.source = STDIN_SOURCE
    return transcript


def _validate(request: FilesRequest) -> None:
    if not request.transcripts:
        raise BadInput("no transcript given")
    if request.transcripts.count(STDIN) > 1:
        raise BadInput("standard input ('-') can be read only once")
    if request.each.code and len(request.transcripts) > 1:
        raise BadInput("--code goes with one transcript; with several, put each one's code files beside it "
                       "(a transcript that names a file finds it there)")


def evaluate_files(request: FilesRequest, stdin: BinaryIO | None = None) -> Iterator[FileOutcome]:
    """Judge each transcript in turn, yielding its outcome as soon as it is known (output streams)."""
    _validate(request)
    for name in request.transcripts:
        outcome = FileOutcome(name=STDIN_SOURCE if name == STDIN else name)
        try:
            source = (read_stdin_transcript(stdin or sys.stdin.buffer, request.each.code) if name == STDIN
                      else Path(name))
            if isinstance(source, Path) and source.is_dir():  # the obvious next step, not just "not a file"
                raise BadInput(f"transcript: {name} is a directory; to judge the transcripts in it, run "
                               f"`evaluate cohort {shlex.quote(name)} --cohort NAME`")
            outcome.result = evaluate_file(replace(request.each, transcript=source))
            outcome.below = check(request.each.thresholds, judgment_scores(outcome.result.judgment.dimensions))
        except JudgeUnavailable:
            raise
        except EvaluatorError as e:
            if len(request.transcripts) == 1:
                raise
            outcome.error = e
        yield outcome
