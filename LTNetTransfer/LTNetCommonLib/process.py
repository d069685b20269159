"""How the modules start `ltnet` in a child process and how they end it (with all its children).

Inside Slicer the child is `PythonSlicer -m ltnet ...` (PythonSlicer sets up Slicer's
environment); elsewhere (tests, plain Python) it is this interpreter. The child runs in
its own session / process group, so killing its tree never reaches Slicer.
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def pythonSlicerExecutable() -> str:
    """`PythonSlicer` next to Slicer's python when running inside the Slicer application, else `sys.executable`."""
    slicer = sys.modules.get("slicer")
    if slicer is not None and hasattr(slicer, "app"):
        folder = Path(sys.executable).parent
        for name in ("PythonSlicer.exe", "PythonSlicer"):
            if (folder / name).is_file():
                return str(folder / name)
        found = shutil.which("PythonSlicer")
        if found:
            return found
    return sys.executable


def ltnetCommand(python: str | None = None) -> list[str]:
    """The command line that runs `ltnet` (arguments follow): `<python> -m ltnet`."""
    return [python or pythonSlicerExecutable(), "-m", "ltnet"]


def ltnetImportFolder() -> str | None:
    """The folder holding the `ltnet` package (found without importing it), for the child's PYTHONPATH."""
    spec = importlib.util.find_spec("ltnet")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]).parent)


def childEnvironment(extra: dict | None = None) -> dict:
    """This process's environment for the child: unbuffered output, `ltnet` importable, then `extra` on top."""
    environment = dict(os.environ)
    environment["PYTHONUNBUFFERED"] = "1"
    folder = ltnetImportFolder()
    if folder:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [folder, environment.get("PYTHONPATH")]))
    environment.update(extra or {})
    return environment


def newSessionOptions() -> dict:
    """`subprocess.Popen` keywords that put the child in its own process group (no console window on Windows)."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def killProcessTree(pid: int, timeout: float = 5.0, popen: subprocess.Popen | None = None) -> None:
    """Terminate `pid` and all its descendants (`ltnet train` writes a checkpoint on SIGTERM), then kill
    what is still alive after `timeout` seconds.

    popen: the `Popen` of `pid`, if this process started it: the child is then reaped through it, so
    `popen.poll()` keeps its real exit status. Uses psutil; without it, the child's process group.
    """
    try:
        import psutil
    except ImportError:
        _killProcessGroup(pid, timeout, popen)
        return
    try:
        root = psutil.Process(pid)
        processes = root.children(recursive=True)
    except psutil.NoSuchProcess:
        root, processes = None, []
    if popen is None and root is not None:
        processes.append(root)
    _signal(psutil, processes, "terminate")
    if popen is not None and popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout)
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    _signal(psutil, alive, "kill")
    psutil.wait_procs(alive, timeout=timeout)


def _signal(psutil, processes, method: str) -> None:
    """Call `terminate` or `kill` on each psutil process, skipping those already gone."""
    for process in processes:
        try:
            getattr(process, method)()
        except psutil.NoSuchProcess:
            pass


def _killProcessGroup(pid: int, timeout: float, popen: subprocess.Popen | None) -> None:
    """Without psutil: the whole process group (the child was started in a new session)."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True)
    else:
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except ProcessLookupError:
            return
        if popen is not None:
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    if popen is not None:
        popen.wait(timeout)
