"""One running `ltnet train --progress jsonl` or `ltnet distill --progress jsonl`: progress lines in, loss table
rows and log out. Both commands write the same events (start, progress with `iteration`, `total`, `losses`,
`elapsed_s`, `eta_s`, done); only the loss names differ, and the table takes them as they come.

The owner calls `poll()` from the main thread (a qt.QTimer in Slicer, a loop in
batch); nothing here runs on another thread except the pipe readers inside the
`ChildProcess`.
"""

import json
import shutil
import time

from LTNetCommonLib.recentModels import addRecentModel
from LTNetCommonLib.torchReport import describeTorchStart

from .trainingProcess import STDERR
from .trainingTime import formatDuration, secondsPerIteration

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

# What each `ltnet` command's job is called in the log and the status line.
JOB_NAMES = {"train": "training", "distill": "distillation"}


class TrainingJob:
    """A started `ltnet train` or `ltnet distill`. `poll()` drains new lines; `cancel()` kills the process tree;
    `wait()` blocks. `command` is the ltnet command it runs (the first of `arguments`, else "train")."""

    def __init__(self, process, outputModelPath, lossPlot, workFolder=None, logCallback=None, arguments=None):
        self.process = process
        self.outputModelPath = str(outputModelPath)
        self.lossPlot = lossPlot
        self.workFolder = workFolder
        self.logCallback = logCallback
        self.arguments = list(arguments or [])
        self.command = self.arguments[0] if self.arguments else "train"
        self.name = JOB_NAMES.get(self.command, self.command)  # "training", "distillation"
        self.status = RUNNING
        self.latestProgress = {}
        self.startEvent = None  # ltnet's first line: torch version, device, precision
        self.startReport = None  # LTNetCommonLib.torchReport.TorchStartReport of that line
        self.doneEvent = None
        self.progressEvents = []
        self.log = []
        self.errorLines = []
        self.returnCode = None
        self.startTime = time.monotonic()

    # Nodes of the live plot
    @property
    def tableNode(self):
        return self.lossPlot.tableNode

    @property
    def chartNode(self):
        return self.lossPlot.chartNode

    @property
    def seriesNodes(self):
        return self.lossPlot.seriesNodes

    @property
    def isRunning(self):
        return self.status == RUNNING

    @property
    def iteration(self):
        return int(self.latestProgress.get("iteration", 0))

    @property
    def total(self):
        return int(self.latestProgress.get("total", 0))

    @property
    def fraction(self):
        """Progress 0..1 (1 when completed)."""
        if self.status == COMPLETED:
            return 1.0
        return self.iteration / self.total if self.total else 0.0

    @property
    def etaSeconds(self):
        """Seconds left: the iterations left times the measured seconds per iteration once two progress lines
        came (the start-up then no longer counts), else ltnet's own `eta_s`; None before the first line."""
        speed = self.secondsPerIteration
        if self.status == RUNNING and len(self.progressEvents) >= 2 and speed is not None:
            return max(0, self.total - self.iteration) * speed
        return self.latestProgress.get("eta_s")

    @property
    def secondsPerIteration(self):
        """Measured seconds per iteration of this run (None before the first progress line)."""
        return secondsPerIteration(self.progressEvents)

    @property
    def runtime(self):
        """What the child runs on, from its start line ('Running on CPU: ... (torch 2.13.0+cpu, ...)'); '' before."""
        return self.startReport.status if self.startReport else ""

    def statusText(self):
        """One line for the panel: the ETA first, then iteration, speed and what the child runs on."""
        if self.status == RUNNING:
            runtime = f" {self.runtime}." if self.runtime else ""
            if not self.latestProgress:
                return f"Starting (loading data and networks)...{runtime}"
            speed = self.secondsPerIteration
            speedText = f", {speed:.2g} s per iteration" if speed else ""
            return (
                f"ETA {formatDuration(self.etaSeconds)}: iteration {self.iteration}/{self.total}{speedText}, "
                f"elapsed {formatDuration(self.latestProgress.get('elapsed_s'))}.{runtime}"
            )
        if self.status == COMPLETED:
            return f"Done: model saved to {self.outputModelPath}"
        if self.status == CANCELLED:
            return f"Cancelled at iteration {self.iteration}; the last checkpoint is kept in {self.outputModelPath}"
        return f"Failed: {self.errorMessage()}"

    def errorMessage(self):
        """The `ltnet: error: ...` line if there is one, else the last lines the child wrote on stderr."""
        for line in reversed(self.errorLines):
            if "error:" in line:
                return line
        tail = "\n".join(self.errorLines[-15:])
        return tail or f"ltnet exited with status {self.returnCode}"

    def addLog(self, line):
        self.log.append(line)
        if self.logCallback is not None:
            self.logCallback(line)

    def handleLine(self, stream, line, newProgress):
        if stream == STDERR:
            if line.strip():
                self.errorLines.append(line)
                self.addLog(line)
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if line.strip():
                self.addLog(line)
            return
        kind = event.get("event")
        if kind == "start":
            self.startEvent = event
            self.startReport = describeTorchStart(event)
            self.addLog(self.startReport.status)
            if self.startReport.warning:
                self.addLog(f"Warning: {self.startReport.warning}")
        elif kind == "progress":
            newProgress.append(event)
            self.latestProgress = event
        elif kind == "done":
            self.doneEvent = event
            if "iteration" in event:
                self.latestProgress = {**self.latestProgress, "iteration": event["iteration"], "eta_s": 0.0}
            self.addLog(f"{self.name.capitalize()} done at iteration {event.get('iteration')}: {event.get('model')}")
        else:
            self.addLog(line)

    def drain(self):
        newProgress = []
        for stream, line in self.process.drainLines():
            self.handleLine(stream, line, newProgress)
        self.progressEvents.extend(newProgress)
        self.lossPlot.addRows(newProgress)

    def poll(self):
        """Drain new progress lines into the loss table; returns the latest progress dict."""
        if self.status != RUNNING:
            return self.latestProgress
        self.drain()
        code = self.process.returnCode()
        if code is not None:
            self.process.wait(10)
            self.drain()
            self.finish(code)
        return self.latestProgress

    def finish(self, code):
        self.returnCode = code
        if self.status == RUNNING:
            self.status = COMPLETED if code == 0 else FAILED
        if self.status == COMPLETED:
            addRecentModel((self.doneEvent or {}).get("model") or self.outputModelPath)
            self.addLog(self.statusText())
        elif self.status == FAILED:
            self.addLog(f"ltnet {self.command} failed (exit status {code}).")
        if self.workFolder:
            shutil.rmtree(self.workFolder, ignore_errors=True)
            self.workFolder = None

    def cancel(self, timeout=5.0):
        """Kill the whole process tree; the last good checkpoint stays in `outputModelPath`."""
        if self.status != RUNNING:
            return
        self.status = CANCELLED
        self.process.killTree(timeout)
        self.drain()
        self.addLog(self.statusText())
        self.finish(self.process.returnCode())

    def wait(self, timeout=None, pollInterval=0.2):
        """Block until the process ends (polling meanwhile); returns the final status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status == RUNNING:
            self.poll()
            if self.status != RUNNING:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"The {self.name} is still running after {timeout} s")
            time.sleep(pollInterval)
        return self.status
