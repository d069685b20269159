"""One transfer run: one child process for all targets; progress, end, cancellation.

No Qt, no MRML: the widget calls `poll()` from a qt.QTimer, batch mode from a sleep loop (`wait()`).
Progress comes from the child's `--progress jsonl` lines: `{"event": "progress", "done": k, "total": n, ...}`
after each target, then `{"event": "done"}`.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TransferError

ERROR_PREFIX = "ltnet: error:"


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
        if event["event"] == "progress":
            self.progress.total = int(event.get("total", self.progress.total))
            self.progress.done = min(int(event.get("done", self.progress.done)), self.progress.total)
            elapsed = time.monotonic() - self.startTime
            self.logCallback(
                f"Transferred {self.progress.done} of {self.progress.total} target(s) "
                f"in {elapsed:.1f} s: {event.get('target', '')}"
            )
            self._showNext()
        elif event["event"] == "done":
            self.progress.message = "Loading results..."

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
