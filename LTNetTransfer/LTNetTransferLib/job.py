"""One transfer run: one child process for all targets; progress, end, cancellation.

No Qt, no MRML: the widget calls `poll()` from a qt.QTimer, batch mode from a sleep loop (`wait()`).
Progress comes from the child's `--progress jsonl` lines: first `{"event": "start", "torch": ..., "device": ...}`
(kept as `childReport`), `{"event": "stage", "target": path, "index": i (from 1), "total": n, "stage": s, "step": k,
"steps": N}` as a target enters a stage, `{"event": "progress", "done": k, "total": n, ...}` after each target, then
`{"event": "done"}`.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TransferError

ERROR_PREFIX = "ltnet: error:"


#: Stages of one target as `ltnet transfer` reports them: (what the status line says, share of the target's time
#: where the stage starts, where it ends). The shares only move the bar; they are not measured times.
STAGES = {
    "prealign": ("affine pre-alignment", 0.0, 0.15),
    "network": ("network", 0.15, 0.35),
    "refine": ("refinement", 0.35, 0.8),
    "labels": ("writing labels", 0.8, 0.9),
    "qc": ("quality check", 0.9, 1.0),
}


@dataclass
class Progress:
    """What the widget shows: `done` of `total` targets finished, `withinTarget` (0..1) of the target being
    transferred, and the status line `message`."""

    done: int = 0
    total: int = 0
    message: str = "Starting..."
    withinTarget: float = 0.0

    @property
    def fraction(self) -> float:
        """Share of the whole run done, 0..1: moves within a target as its stages are reported."""
        if not self.total:
            return 0.0
        return min(1.0, (self.done + min(self.withinTarget, 1.0)) / self.total)


def stageText(stage: str, step=None, steps=None) -> str:
    """ "refinement step 3 of 5", "network", ...: one stage of a target for the status line."""
    label = STAGES.get(stage, (stage.replace("_", " "), 0.0, 0.0))[0]
    if steps and int(steps) > 1 and step is not None:
        return f"{label} step {int(step)} of {int(steps)}"
    return label


def stageFraction(stage: str, step=None, steps=None) -> float:
    """How far into its target (0..1) a stage event is: the start of step `step` (1-based) of `steps`."""
    if stage not in STAGES:
        return 0.0
    _, start, end = STAGES[stage]
    if steps and int(steps) > 0 and step is not None:
        return start + (end - start) * min(max(int(step) - 1, 0), int(steps)) / int(steps)
    return start


@dataclass
class TransferJob:
    """Runs `ltnet <arguments>` through `launcher` for all `targetNodes` at once.

    Drive with `poll()` until it returns True, then `TransferLogic.loadResults(job)`.
    state: "running", "done", "failed" or "cancelled"; `error` is the user-facing reason of a failure,
    `details` the child's full stderr (for the log).
    """

    launcher: object  # process.ProcessLauncher
    arguments: list  # after `python -m ltnet`
    workFolder: Path
    targetNodes: list
    files: list  # command.TargetFiles, one per target
    logCallback: object = print
    state: str = "running"
    error: str = ""
    details: str = ""
    progress: Progress = field(default_factory=Progress)
    startTime: float = field(default_factory=time.monotonic)
    process: object = None  # the running process.ChildProcess
    childReport: dict = field(default_factory=dict)  # the child's "start" event: torch build, device, precision
    options: dict = field(default_factory=dict)  # how to load the outputs (TransferLogic.start's output options)

    def __post_init__(self):
        self.progress.total = len(self.targetNodes)
        self._showNext()
        self.logCallback("ltnet " + " ".join(self.arguments))
        self.process = self.launcher(self.arguments, self.workFolder / "logs")

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def poll(self) -> bool:
        """Read what the child wrote; True once the run has ended."""
        if self.finished:
            return True
        ended = self.process.returnCode() is not None  # checked first: once ended, every line is readable
        for line in self.process.readLines():
            self._handleLine(line)
        if ended:
            self._childEnded(self.process.returnCode())
        return self.finished

    def cancel(self) -> None:
        """Kill the child and all its children."""
        if self.finished:
            return
        self.process.kill()
        self.state = "cancelled"
        self.progress.message = "Cancelled."
        self.logCallback("Transfer cancelled.")

    def wait(self, interval: float = 0.1, timeout: float | None = None) -> None:
        """Block until the run ends (batch mode, tests); raise `TransferError` unless it succeeded."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise TransferError(f"Transfer did not finish within {timeout:.0f} s and was cancelled.")
            time.sleep(interval)
        self.raiseIfFailed()

    def raiseIfFailed(self) -> None:
        if self.state == "failed":
            raise TransferError(self.error, self.details)
        if self.state == "cancelled":
            raise TransferError("Transfer was cancelled.")
        if self.state == "running":
            raise TransferError("Transfer is still running.")

    # -- internals ------------------------------------------------------------------------------
    def _showNext(self) -> None:
        done, total = self.progress.done, self.progress.total
        if done < total:
            name = self.targetNodes[done].GetName()
            self.progress.message = f"Target {done + 1} of {total}: {name}..."
        else:
            self.progress.message = "Writing outputs..."

    def _handleLine(self, line: str) -> None:
        event = None
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
        if not isinstance(event, dict) or "event" not in event:
            if line.strip():
                self.logCallback(line)
            return
        if event["event"] == "start":
            self.childReport = dict(event)
            self.logCallback("ltnet child: " + ", ".join(f"{k} {v}" for k, v in event.items() if k != "event"))
        elif event["event"] == "stage":
            self._handleStage(event)
        elif event["event"] == "progress":
            self.progress.total = int(event.get("total", self.progress.total))
            done = min(int(event.get("done", self.progress.done)), self.progress.total)
            elapsed = time.monotonic() - self.startTime
            self.logCallback(
                f"Transferred {done} of {self.progress.total} target(s) in {elapsed:.1f} s: {event.get('target', '')}"
            )
            if done > self.progress.done:  # else the next target's stages came first: keep their progress
                self.progress.done, self.progress.withinTarget = done, 0.0
                self._showNext()
        elif event["event"] == "done":
            self.progress.message = "Loading results..."

    def _targetIndex(self, event: dict) -> int:
        """Which target (0-based) a stage event is about: found by its path, else by its "index" (from 1)."""
        path = str(event.get("target", ""))
        for index, files in enumerate(self.files):
            if files is not None and path and str(files.target) == path:
                return index
        return int(event.get("index", self.progress.done + 1)) - 1

    def _handleStage(self, event: dict) -> None:
        index = self._targetIndex(event)
        if index < self.progress.done or index >= self.progress.total:
            return  # a late line about a target already counted as done
        stage, step, steps = str(event.get("stage", "")), event.get("step"), event.get("steps")
        if index > self.progress.done:
            self.progress.done, self.progress.withinTarget = index, 0.0
        self.progress.withinTarget = max(self.progress.withinTarget, stageFraction(stage, step, steps))
        name = self.targetNodes[index].GetName()
        self.progress.message = (
            f"Target {index + 1} of {self.progress.total} ({name}): {stageText(stage, step, steps)}..."
        )

    def _childEnded(self, returnCode: int) -> None:
        stderr = self.process.errorOutput()
        if stderr.strip():
            self.logCallback(stderr.rstrip())
        if returnCode == 0:
            self.state = "done"
            self.progress.done = self.progress.total
            self.progress.message = "Loading results..."
            return
        self.state = "failed"
        self.details = stderr
        errorLines = [line for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
        if errorLines:
            self.error = errorLines[-1][len(ERROR_PREFIX) :].strip()
        else:
            lastLine = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
            self.error = f"ltnet transfer stopped with exit status {returnCode}" + (
                f": {lastLine}" if lastLine else "."
            )
        self.progress.message = "Failed: " + self.error
