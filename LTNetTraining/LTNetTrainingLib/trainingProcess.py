"""The child process behind a small interface, so logic and tests do not depend on how it is started.

`ProcessLauncher.start(arguments)` returns a `ChildProcess`: lines from stdout and
stderr are read by two reader threads into one queue (the threads touch neither
Qt nor MRML); `drainLines()` hands them to the main thread. `killTree()` ends the
process and all its descendants (psutil).
"""

import os
import queue
import shutil
import subprocess
import sys
import threading
from typing import Protocol

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
    def start(self, arguments, environment=None) -> ChildProcess:
        ...


def pythonSlicerExecutable():
    """Slicer's `PythonSlicer` (it sets up Slicer's environment) when this runs inside Slicer, else None."""
    try:
        import slicer
    except ImportError:
        return None
    if not hasattr(slicer, "app"):
        return None
    folder = os.path.dirname(sys.executable)
    for name in ("PythonSlicer.exe", "PythonSlicer"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return shutil.which("PythonSlicer")


def ltnetCommand():
    """How to run `ltnet`: PythonSlicer inside Slicer, else this interpreter (tests, plain Python)."""
    return [pythonSlicerExecutable() or sys.executable, "-m", "ltnet"]


def ltnetImportFolder():
    """The folder holding the `ltnet` package (found without importing it), for the child's PYTHONPATH."""
    import importlib.util

    spec = importlib.util.find_spec("ltnet")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.dirname(list(spec.submodule_search_locations)[0])


def killProcessTree(pid, timeout=5.0):
    """Terminate `pid` and its descendants, then kill what is left after `timeout` seconds."""
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    try:
        processes = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        processes = [parent]
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)


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
        import psutil

        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        for process in descendants:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)
        _, alive = psutil.wait_procs(descendants, timeout=1.0)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass

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
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        folder = ltnetImportFolder()
        if folder:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, env.get("PYTHONPATH")]))
        env.update(environment or {})
        options = {}
        if os.name == "nt":
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            options["start_new_session"] = True
        popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, encoding="utf-8", errors="replace", bufsize=1, env=env, **options)
        return SubprocessChild(popen)
