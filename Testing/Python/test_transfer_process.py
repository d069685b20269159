"""The child-process side of LTNetTransfer: progress, failure, cancel (with a fake child and a real one)."""

import sys
import time

import psutil
import pytest

slicer = pytest.importorskip("slicer")

from fakes import FakeChild, FakeNode  # noqa: E402
from LTNetTransferLib.command import AtlasFiles, TargetFiles, fileStem, transferArguments  # noqa: E402
from LTNetTransferLib.job import TransferJob  # noqa: E402
from LTNetTransferLib.process import SubprocessChild  # noqa: E402


def make_job(child, tmp_path, log, names=("a", "b")):
    started = []

    def launcher(arguments, folder):
        started.append(arguments)
        return child

    job = TransferJob(
        launcher, ["transfer", *names], tmp_path, [FakeNode(name) for name in names], [None] * len(names), log.append
    )
    return job, started


def test_one_child_for_all_targets_with_progress_from_its_jsonl_lines(tmp_path):
    log = []
    child = FakeChild(
        [
            '{"event": "progress", "done": 1, "total": 2, "target": "a"}',
            "some log line",
            '{"event": "progress", "done": 2, "total": 2, "target": "b"}',
            '{"event": "done"}',
        ]
    )
    job, started = make_job(child, tmp_path, log)
    assert job.progress.total == 2 and job.progress.done == 0 and job.progress.message == "Target 1 of 2: a..."
    seen = []
    while not job.poll():
        seen.append((job.progress.fraction, job.progress.message))
    assert job.state == "done" and job.progress.fraction == 1.0
    assert started == [["transfer", "a", "b"]]
    assert (0.5, "Target 2 of 2: b...") in seen
    assert "some log line" in log


def test_a_failing_child_gives_its_error_line(tmp_path):
    log = []
    child = FakeChild([], code=2, stderr="ltnet: error: /x/m.pt: no such model file; give a model.")
    job, started = make_job(child, tmp_path, log)
    assert job.poll()
    assert job.state == "failed"
    assert job.error == "/x/m.pt: no such model file; give a model."
    assert len(started) == 1
    with pytest.raises(Exception, match="no such model file"):
        job.raiseIfFailed()


def test_a_crash_without_error_line_names_the_exit_status(tmp_path):
    job, _ = make_job(FakeChild([], code=1, stderr="Traceback ...\nMemoryError"), tmp_path, [])
    job.poll()
    assert "exit status 1" in job.error and "MemoryError" in job.error


def test_cancel_kills_the_child(tmp_path):
    child = FakeChild(["x"] * 100)
    job, started = make_job(child, tmp_path, [])
    job.poll()
    job.cancel()
    assert child.killed and job.state == "cancelled" and job.poll()
    assert len(started) == 1


def test_arguments_are_those_ltnet_transfer_accepts(tmp_path):
    from ltnet.cli import build_parser

    files = [TargetFiles(tmp_path, fileStem(index, name)) for index, name in enumerate(["scan one", "scan/2"])]
    arguments = transferArguments(
        "m.pt", tmp_path, files, "cpu", prealign=False, atlas=AtlasFiles(tmp_path), refineSteps=20
    )
    parsed = build_parser().parse_args(arguments)
    assert parsed.refine == 20
    assert parsed.target == [str(tmp_path / "inputs" / "01_scan_one.nrrd"), str(tmp_path / "inputs" / "02_scan_2.nrrd")]
    assert (parsed.out, parsed.format, parsed.qc, parsed.extras) == (
        str(tmp_path / "out"),
        "seg.nrrd",
        str(tmp_path / "qc"),
        str(tmp_path / "extras"),
    )
    assert (parsed.atlas_image, parsed.atlas_labels) == (
        str(AtlasFiles(tmp_path).image),
        str(AtlasFiles(tmp_path).labels),
    )
    assert (parsed.device, parsed.no_prealign, parsed.progress) == ("cpu", True, "jsonl")
    defaults = build_parser().parse_args(transferArguments("m.pt", tmp_path, files))
    assert defaults.atlas_image is None and defaults.refine == 0
    with pytest.raises(ValueError):
        transferArguments("m.pt", tmp_path, files, device="gpu")
    for steps in (-1, 2.5):
        with pytest.raises(ValueError, match="refinement steps"):
            transferArguments("m.pt", tmp_path, files, refineSteps=steps)


def test_cancel_kills_the_whole_process_tree(tmp_path):
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
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
