"""What ``ltnet train`` and ``ltnet distill`` share as runs that write a model and can be resumed: the flags
(``--device``, ``--seed``, ``--progress``, ``--resume``, ``--checkpoint-every``), the checks on ``--out`` and
``--iterations``, the progress from its ``start`` event to its ``done`` event, and the exit on SIGTERM/SIGINT."""

import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from ltnet.errors import LTNetError
from ltnet.progress import reporter, start_event
from ltnet.training import Stopped

STOPPED_STATUS = 130


def add_run_arguments(parser, what: str, resumes_with: str, seed_none_if_absent: bool = False) -> None:
    """Add the run flags to ``parser``.

    ``what``: the work ``--out`` holds ("training"); ``resumes_with``: how ``--resume`` continues it, which the help
    shows after "continue the <what> held in --out". ``seed_none_if_absent``: ``--seed`` is None where not given (a
    command that tells a given seed from the default 0 fills it in itself), otherwise 0.
    """
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None if seed_none_if_absent else 0,
        help="random seed (default 0); CPU runs are deterministic for a seed",
    )
    parser.add_argument(
        "--progress", choices=("bar", "jsonl"), default="bar", help="a bar for people or JSON lines for programs"
    )
    parser.add_argument("--resume", action="store_true", help=f"continue the {what} held in --out {resumes_with}")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="write the model every N iterations (default 100)",
    )


def check_run(out: Path, iterations: int, resume: bool) -> None:
    """Refuse a negative ``--iterations``, an ``--out`` whose folder is missing or read-only, a missing model to
    ``--resume``, or an existing one without ``--resume``."""
    if iterations < 0:
        raise LTNetError(f"--iterations {iterations}: give 0 or more.")
    folder = out.parent
    if not folder.is_dir():
        raise LTNetError(f"{folder}: output folder does not exist; create it or choose another --out.")
    if not os.access(folder, os.W_OK):
        raise LTNetError(f"{folder}: output folder is not writable; choose another --out.")
    if resume and not out.is_file():
        raise LTNetError(f"{out}: no model to resume; run without --resume to start a new training.")
    if not resume and out.exists():
        raise LTNetError(
            f"{out}: exists already; pass --resume to continue it, or choose another --out (nothing was overwritten)."
        )


def note_nothing_to_do(out: Path, done: int, iterations: int) -> None:
    """Tell on stderr that the model in ``out`` already has ``done`` >= ``iterations`` iterations."""
    print(f"ltnet: {out} already has {done} iterations (--iterations {iterations}); nothing to do.", file=sys.stderr)


def start_progress(kind: str, description: str, device: torch.device):
    """The ``--progress`` reporter (``bar`` or ``jsonl``), its ``start`` event sent (training precision)."""
    progress = reporter(kind, description)
    progress(start_event(device, inference=False))
    return progress


def run_to_end(work: Callable[[], int], out: Path, progress) -> int:
    """Run ``work`` (it returns the model's iteration count once written to ``out``) and end ``progress`` (None on
    a process that does not report): the ``done`` event and status 0, or, where SIGTERM/SIGINT stopped the work, a
    line naming the checkpoint on stderr and status 130."""
    try:
        iteration = work()
    except Stopped as stopped:
        if progress:
            progress.close()
            print(f"ltnet: {stopped}", file=sys.stderr)
        return STOPPED_STATUS
    if progress:
        progress({"event": "done", "model": str(out), "iteration": iteration})
        progress.close()
    return 0
