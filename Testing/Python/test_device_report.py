"""What the child says it runs on (its `start` event) as panel text, and the GPU probe that never holds up
module setup (a slow nvidia-smi answers later; it runs once)."""

import json
import os
import time

import pytest
from LTNetCommonLib import gpu
from LTNetCommonLib.torchReport import describeTorchStart

# Start lines as `ltnet ... --progress jsonl` prints them.
CPU_BUILD_GPU_PRESENT = (
    '{"event": "start", "torch": "2.13.0+cpu", "cuda": null, "device": "cpu", "device_name": "AMD EPYC 7763", '
    '"precision": "float32", "gpu_visible_but_unused": true}'
)
ON_GPU = (
    '{"event": "start", "torch": "2.4.1+cu121", "cuda": "12.1", "device": "cuda", "device_name": "NVIDIA RTX A4000", '
    '"precision": "float16", "gpu_visible_but_unused": false}'
)
CPU_ONLY_MACHINE = (
    '{"event": "start", "torch": "2.13.0+cpu", "cuda": null, "device": "cpu", "device_name": "Intel Xeon", '
    '"precision": "bfloat16", "gpu_visible_but_unused": false}'
)
CUDA_BUILD_ON_CPU = (
    '{"event": "start", "torch": "2.9.0+cu126", "cuda": "12.6", "device": "cpu", "device_name": "Intel Xeon", '
    '"precision": "float32", "gpu_visible_but_unused": true}'
)


def test_gpu_run_reads_as_gpu_without_warning():
    report = describeTorchStart(json.loads(ON_GPU))
    assert report.status == "Running on GPU: NVIDIA RTX A4000 (torch 2.4.1+cu121, CUDA 12.1, float16)"
    assert report.warning is None


def test_cpu_only_torch_with_a_gpu_present_warns_with_the_fix():
    report = describeTorchStart(json.loads(CPU_BUILD_GPU_PRESENT))
    assert report.status == "Running on CPU: AMD EPYC 7763 (torch 2.13.0+cpu, CPU-only build, float32)"
    assert report.warning.startswith("A GPU is present but the installed torch (2.13.0+cpu) is a CPU-only build")
    assert "PyTorch Utils module" in report.warning


def test_cpu_machine_is_not_warned():
    report = describeTorchStart(json.loads(CPU_ONLY_MACHINE))
    assert report.status == "Running on CPU: Intel Xeon (torch 2.13.0+cpu, CPU-only build, bfloat16)"
    assert report.warning is None


def test_cuda_build_running_on_cpu_points_at_the_device_choice():
    report = describeTorchStart(json.loads(CUDA_BUILD_ON_CPU))
    assert "this run uses the CPU (device set to cpu" in report.warning and "'cuda'" in report.warning


def test_an_older_start_line_still_gives_a_status():
    assert describeTorchStart({"event": "start", "device": "cpu"}).status == (
        "Running on CPU (torch unknown version, CPU-only build)"
    )


@pytest.fixture
def slow_nvidia_smi(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that takes 1.5 s and counts its runs in calls.txt."""
    script = tmp_path / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\necho run >> "{tmp_path}/calls.txt"\nsleep 1.5\necho "NVIDIA RTX A4000, 16376 MiB"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delitem(__import__("sys").modules, "torch", raising=False)  # the probe must not use torch
    gpu._reset()
    yield tmp_path / "calls.txt"
    gpu._reset()


def test_slow_nvidia_smi_does_not_hold_up_setup_and_runs_once(slow_nvidia_smi):
    started = time.monotonic()
    gpu.prefetchGpuDescription()  # the module's constructor
    assert time.monotonic() - started < 0.5
    assert gpu.describeGpu(timeout=0.1) is None  # panel setup: not known yet, and no long wait
    assert time.monotonic() - started < 0.8
    assert gpu.describeGpu(timeout=10) == "NVIDIA RTX A4000, 16376 MiB"
    assert gpu.describeGpu(timeout=0) == "NVIDIA RTX A4000, 16376 MiB"  # cached
    assert slow_nvidia_smi.read_text().split() == ["run"]


def test_no_nvidia_smi_means_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "torch", raising=False)
    gpu._reset()
    try:
        assert gpu.describeGpu(timeout=5) is None
    finally:
        gpu._reset()
