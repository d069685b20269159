"""One transfer run: a child process per target, run one after the other; progress, end, cancellation.

No Qt, no MRML: the widget calls `poll()` from a qt.QTimer, batch mode from a sleep loop (`wait()`).
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TransferError


@dataclass
class Progress:
    """What the widget shows: `done` of `total` targets finished, and the status line `message`."""
    done: int = 0
    total: int = 0
    message: str = "Starting..."

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class TransferJob:
    """Runs `steps` (the `ltnet` arguments of each target) in turn through `launcher`.

    Drive with `poll()` until it returns True, then `TransferLogic.loadResults(job)`.
    state: "running", "done", "failed" or "cancelled"; `error` is the user-facing reason of a failure,
    `details` the child's full stderr (for the log).
    """
    launcher: object                 # process.ProcessLauncher
    steps: list                      # [[argument, ...], ...], one per target
    workFolder: Path
    targetNodes: list
    files: list                      # command.TargetFiles, one per target
    logCallback: object = print
    state: str = "running"
    error: str = ""
    details: str = ""
    progress: Progress = field(default_factory=Progress)
    startTime: float = field(default_factory=time.monotonic)
    process: object = None           # the running process.ChildProcess

    def __post_init__(self):
        self.progress.total = len(self.steps)
        self._launch(0)

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def poll(self) -> bool:
        """Read what the child wrote, start the next one when it ends; True once the run has ended."""
        if self.finished:
            return True
        ended = self.process.returnCode() is not None
        for line in self.process.readLines():
            self._handleLine(line)
        if ended:
            self._childEnded(self.process.returnCode())
        return self.finished

    def cancel(self) -> None:
        """Kill the running child and all its children; no further target is started."""
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
    def _launch(self, index: int) -> None:
        self._index = index
        name = self.targetNodes[index].GetName() if index < len(self.targetNodes) else str(index)
        self.progress.message = f"Target {index + 1} of {len(self.steps)}: {name}..."
        self.logCallback("ltnet " + " ".join(self.steps[index]))
        self.process = self.launcher(self.steps[index], self.workFolder / "logs" / f"{index + 1:02d}")

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
        elif event["event"] == "done":
            self.progress.message = f"Target {self._index + 1} of {len(self.steps)} done, writing outputs..."

    def _childEnded(self, returnCode: int) -> None:
        stderr = self.process.errorOutput()
        if returnCode == 0:
            if stderr.strip():
                self.logCallback(stderr.rstrip())
            self.progress.done = self._index + 1
            elapsed = time.monotonic() - self.startTime
            self.logCallback(f"Transferred {self.progress.done} of {self.progress.total} target(s) in {elapsed:.1f} s.")
            if self._index + 1 < len(self.steps):
                self._launch(self._index + 1)
            else:
                self.state = "done"
                self.progress.message = "Loading results..."
            return
        self.state = "failed"
        self.details = stderr
        errorLines = [line for line in stderr.splitlines() if line.startswith("ltnet: error:")]
        if errorLines:
            self.error = errorLines[-1][len("ltnet: error:"):].strip()
        else:
            lastLine = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
            self.error = f"ltnet transfer stopped with exit status {returnCode}" + (f": {lastLine}" if lastLine else ".")
        self.progress.message = "Failed: " + self.error
        if stderr:
            self.logCallback(stderr.rstrip())
