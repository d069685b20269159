"""LTNetCommonLib.process: how both modules start `ltnet` and end its whole process tree."""

import subprocess
import sys
import time
import types

import psutil
from LTNetCommonLib import process


def test_outside_slicer_the_child_is_this_interpreter(monkeypatch):
    monkeypatch.delattr(sys.modules["slicer"], "app", raising=False)
    assert process.pythonSlicerExecutable() == sys.executable
    assert process.ltnetCommand() == [sys.executable, "-m", "ltnet"]
    assert process.ltnetCommand("/x/PythonSlicer") == ["/x/PythonSlicer", "-m", "ltnet"]


def test_inside_slicer_the_child_is_python_slicer(monkeypatch, tmp_path):
    pythonSlicer = tmp_path / "PythonSlicer"
    pythonSlicer.write_text("")
    monkeypatch.setattr(sys.modules["slicer"], "app", types.SimpleNamespace(), raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "SlicerApp-real"))
    assert process.pythonSlicerExecutable() == str(pythonSlicer)


def test_the_child_finds_ltnet_and_writes_unbuffered(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    environment = process.childEnvironment({"OMP_NUM_THREADS": "1"})
    assert environment["PYTHONUNBUFFERED"] == "1" and environment["OMP_NUM_THREADS"] == "1"
    assert environment["PYTHONPATH"].split(":")[0] == process.ltnetImportFolder()
    assert environment["PYTHONPATH"].endswith("/elsewhere")


def start(script):
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, **process.newSessionOptions()
    )


GRANDCHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def gone(pid, timeout=10.0):
    """True once `pid` has ended (or is a zombie) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_kill_ends_the_child_and_its_children_and_keeps_the_exit_status():
    popen = start(GRANDCHILD)
    grandchild = int(popen.stdout.readline())
    started = time.monotonic()
    process.killProcessTree(popen.pid, timeout=5, popen=popen)
    assert time.monotonic() - started < 10
    assert popen.poll() == -15  # terminated (SIGTERM first: `ltnet train` writes a checkpoint on it)
    assert gone(grandchild)


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout():
    popen = start(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
        "time.sleep(120)"
    )
    popen.stdout.readline()
    process.killProcessTree(popen.pid, timeout=1, popen=popen)
    assert popen.poll() == -9


def test_without_popen_and_after_the_end_nothing_fails():
    popen = start(GRANDCHILD)
    grandchild = int(popen.stdout.readline())
    process.killProcessTree(popen.pid, timeout=5)
    popen.wait(5)
    assert gone(grandchild)
    process.killProcessTree(popen.pid, timeout=1)  # already gone
