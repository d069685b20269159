"""The child process that runs `ltnet transfer`, behind a small interface.

The main thread polls it (from a qt.QTimer in the widget, from a sleep loop in
batch mode); nothing here runs a thread. Its stdout and stderr go to files in
the work folder, so reading them never blocks and never fills a pipe.
"""

import subprocess
from pathlib import Path
from typing import Protocol

from LTNetCommonLib.process import (
    childEnvironment,
    killProcessTree,
    ltnetCommand,
    newSessionOptions,
    pythonSlicerExecutable,
)


class ChildProcess(Protocol):
    """What `TransferJob` needs from a running child process."""

    def readLines(self) -> list[str]:
        """Complete stdout lines written since the last call."""

    def returnCode(self) -> int | None:
        """None while running, else the exit status."""

    def errorOutput(self) -> str:
        """Everything written on stderr so far."""

    def kill(self) -> None:
        """End the process and all its children."""


class ProcessLauncher(Protocol):
    def __call__(self, arguments: list[str], workFolder: Path) -> ChildProcess: ...


class SubprocessChild:
    """A `ChildProcess` started with `subprocess.Popen` in its own process group."""

    def __init__(self, command: list[str], workFolder: Path, env: dict | None = None):
        workFolder.mkdir(parents=True, exist_ok=True)
        self._stdoutPath = workFolder / "stdout.log"
        self._stderrPath = workFolder / "stderr.log"
        self._stdout = open(self._stdoutPath, "wb")
        self._stderr = open(self._stderrPath, "wb")
        self._offset = 0
        self._partial = b""
        self._process = subprocess.Popen(
            command,
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            cwd=str(workFolder),
            env=env,
            **newSessionOptions(),
        )

    def readLines(self) -> list[str]:
        ended = self.returnCode() is not None  # checked first: once ended, the file holds everything
        with open(self._stdoutPath, "rb") as stream:
            stream.seek(self._offset)
            data = stream.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        if ended and self._partial:
            lines, self._partial = lines + [self._partial], b""
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]

    def returnCode(self) -> int | None:
        code = self._process.poll()
        if code is not None and not self._stdout.closed:
            self._stdout.close()
            self._stderr.close()
        return code

    def errorOutput(self) -> str:
        return self._stderrPath.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        killProcessTree(self._process.pid, popen=self._process)
        self.returnCode()


class SubprocessLauncher:
    """Starts `python -m ltnet <arguments>` as a `SubprocessChild`.

    `python` is PythonSlicer inside Slicer; tests pass `sys.executable`.
    """

    def __init__(self, python: str | None = None, extraEnvironment: dict | None = None):
        self.python = python or pythonSlicerExecutable()
        self.extraEnvironment = dict(extraEnvironment or {})

    def __call__(self, arguments: list[str], workFolder: Path) -> SubprocessChild:
        return SubprocessChild(
            [*ltnetCommand(self.python), *arguments], workFolder, childEnvironment(self.extraEnvironment)
        )
