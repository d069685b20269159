"""The child process behind a small interface, so logic and tests do not depend on how it is started.

`ProcessLauncher.start(arguments)` returns a `ChildProcess`: lines from stdout and
stderr are read by two reader threads into one queue (the threads touch neither
Qt nor MRML); `drainLines()` hands them to the main thread. `killTree()` ends the
process and all its descendants (`LTNetCommonLib.process.killProcessTree`).
"""

import queue
import subprocess
import threading
from typing import Protocol

from LTNetCommonLib.process import childEnvironment, killProcessTree, ltnetCommand, newSessionOptions

STDOUT = "stdout"
STDERR = "stderr"


class ChildProcess(Protocol):
    pid: int

    def drainLines(self) -> list:
        """New (stream, line) pairs since the last call, without blocking."""

    def returnCode(self):
        """None while running, else the exit status."""

    def killTree(self, timeout=5.0) -> None:
        """End the process and all its descendants."""

    def wait(self, timeout=None):
        """Wait for the exit and the end of its output; returns the exit status."""


class ProcessLauncher(Protocol):
    def start(self, arguments, environment=None) -> ChildProcess: ...


class SubprocessChild:
    """A `ChildProcess` on top of `subprocess.Popen`."""

    def __init__(self, popen):
        self.popen = popen
        self.pid = popen.pid
        self.lines = queue.Queue()
        self.readers = [
            threading.Thread(target=self.readStream, args=(popen.stdout, STDOUT), daemon=True),
            threading.Thread(target=self.readStream, args=(popen.stderr, STDERR), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def readStream(self, stream, name):
        for line in iter(stream.readline, ""):
            self.lines.put((name, line.rstrip("\r\n")))
        stream.close()

    def drainLines(self):
        drained = []
        while True:
            try:
                drained.append(self.lines.get_nowait())
            except queue.Empty:
                return drained

    def returnCode(self):
        return self.popen.poll()

    def killTree(self, timeout=5.0):
        """Terminate the child (ltnet writes a checkpoint on SIGTERM) and its descendants; kill after `timeout`.

        The child itself is reaped through Popen, so `returnCode()` stays its real exit status.
        """
        killProcessTree(self.pid, timeout, popen=self.popen)

    def wait(self, timeout=None):
        code = self.popen.wait(timeout)
        for reader in self.readers:
            reader.join(timeout)
        return code


class SubprocessLauncher:
    """Starts `ltnet <arguments>` (see `ltnetCommand`) with pipes for stdout and stderr."""

    def __init__(self, command=None):
        self.command = command

    def start(self, arguments, environment=None):
        command = (self.command or ltnetCommand()) + list(arguments)
        popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=childEnvironment(environment),
            **newSessionOptions(),
        )
        return SubprocessChild(popen)
