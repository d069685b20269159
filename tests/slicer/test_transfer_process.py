"""The child-process side of LTNetTransfer: progress, failure, cancel (with a fake child and a real one)."""

import sys
import time

import psutil
import pytest

slicer = pytest.importorskip("slicer")

from LTNetTransferLib.job import TransferJob  # noqa: E402
from LTNetTransferLib.process import SubprocessChild  # noqa: E402


class FakeChild:
    """Prints the given stdout lines, one per poll, then exits with `code`."""

    def __init__(self, lines, code=0, stderr=""):
        self.lines, self.code, self.stderr, self.killed = list(lines), code, stderr, False

    def readLines(self):
        return [self.lines.pop(0)] if self.lines else []

    def returnCode(self):
        return None if self.lines and not self.killed else (-9 if self.killed else self.code)

    def errorOutput(self):
        return self.stderr

    def kill(self):
        self.killed = True


class FakeNode:
    def __init__(self, name):
        self.name = name

    def GetName(self):
        return self.name


def make_job(children, tmp_path, log):
    started = []

    def launcher(arguments, folder):
        started.append(arguments)
        return children[len(started) - 1]

    job = TransferJob(launcher, [["transfer", "a"], ["transfer", "b"]], tmp_path,
                      [FakeNode("a"), FakeNode("b")], [None, None], log.append)
    return job, started


def test_targets_run_one_after_the_other_with_progress(tmp_path):
    log = []
    children = [FakeChild(['{"event": "progress", "done": 1, "total": 1, "target": "a"}', "some log line",
                           '{"event": "done"}']),
                FakeChild(['{"event": "done"}'])]
    job, started = make_job(children, tmp_path, log)
    assert job.progress.total == 2 and job.progress.done == 0
    fractions = []
    while not job.poll():
        fractions.append(job.progress.fraction)
    assert job.state == "done" and job.progress.fraction == 1.0
    assert started == [["transfer", "a"], ["transfer", "b"]]
    assert 0.5 in fractions
    assert "some log line" in log


def test_a_failing_child_gives_its_error_line_and_stops_the_run(tmp_path):
    log = []
    children = [FakeChild([], code=2, stderr="ltnet: error: /x/m.pt: no such model file; give a model."),
                FakeChild([])]
    job, started = make_job(children, tmp_path, log)
    assert job.poll()
    assert job.state == "failed"
    assert job.error == "/x/m.pt: no such model file; give a model."
    assert len(started) == 1
    with pytest.raises(Exception, match="no such model file"):
        job.raiseIfFailed()


def test_a_crash_without_error_line_names_the_exit_status(tmp_path):
    children = [FakeChild([], code=1, stderr="Traceback ...\nMemoryError"), FakeChild([])]
    job, _ = make_job(children, tmp_path, [])
    job.poll()
    assert "exit status 1" in job.error and "MemoryError" in job.error


def test_cancel_kills_the_child_and_starts_no_other(tmp_path):
    children = [FakeChild(["x"] * 100), FakeChild([])]
    job, started = make_job(children, tmp_path, [])
    job.poll()
    job.cancel()
    assert children[0].killed and job.state == "cancelled" and job.poll()
    assert len(started) == 1


def test_cancel_kills_the_whole_process_tree(tmp_path):
    script = ("import subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(120)\n")
    process = SubprocessChild([sys.executable, "-c", script], tmp_path)
    deadline = time.monotonic() + 30
    lines = []
    while not lines and time.monotonic() < deadline:
        lines = process.readLines()
        time.sleep(0.05)
    grandchild = psutil.Process(int(lines[0]))
    assert process.returnCode() is None and grandchild.is_running()
    process.kill()
    assert process.returnCode() is not None
    grandchild.wait(timeout=10)
    assert not psutil.pid_exists(grandchild.pid) or grandchild.status() == psutil.STATUS_ZOMBIE


def test_last_line_without_newline_is_read_after_the_end(tmp_path):
    process = SubprocessChild([sys.executable, "-c", "import sys; sys.stdout.write('a\\nb')"], tmp_path)
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ended = process.returnCode() is not None
        lines += process.readLines()
        if ended:
            break
        time.sleep(0.05)
    assert lines == ["a", "b"]
