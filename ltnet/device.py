"""Choosing the compute device."""

import functools
import platform
import sys

import torch

from ltnet.errors import LTNetError


def pick_device(choice: str = "auto", announce: bool = True, local_rank: int = 0) -> torch.device:
    """``auto`` takes a usable CUDA GPU, else the CPU; ``cuda`` without a usable GPU is an error.

    ``local_rank`` (under ``torchrun``) picks the GPU of that index on this machine,
    so each process of a node gets its own. ``announce`` says on stderr which GPU.
    """
    if choice not in ("auto", "cpu", "cuda"):
        raise LTNetError(f"--device {choice}: unknown device; use auto, cpu or cuda.")
    if choice == "cpu":
        return torch.device("cpu")
    problem = _cuda_problem(local_rank)
    if problem is None:
        device = torch.device("cuda", local_rank)
        if announce:
            free, total = torch.cuda.mem_get_info(device)
            print(
                f"ltnet: using GPU {local_rank}: {torch.cuda.get_device_name(device)} "
                f"({total / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free)",
                file=sys.stderr,
            )
        return device
    if choice == "cuda":
        raise LTNetError(f"--device cuda: {problem}; use --device cpu, or install a CUDA build of torch.")
    if announce and torch.cuda.is_available():
        print(f"ltnet: {problem}; using the CPU", file=sys.stderr)
    return torch.device("cpu")


def _cuda_problem(local_rank: int) -> str | None:
    """Why GPU ``local_rank`` cannot be used, or None if a small computation on it works."""
    if not torch.cuda.is_available():
        return "no usable CUDA GPU (torch.cuda.is_available() is False)"
    if local_rank >= torch.cuda.device_count():
        return (
            f"this process (local rank {local_rank}) has no GPU of its own: only {torch.cuda.device_count()} GPU(s) "
            "visible; start fewer processes per node"
        )
    try:
        (torch.ones(8, device=torch.device("cuda", local_rank)) * 2).sum().item()
    except RuntimeError as error:  # e.g. a GPU too old for this torch build, or busy in exclusive mode
        return f"GPU {local_rank} is not usable ({str(error).splitlines()[0]})"
    return None


def mixed_precision(device: torch.device):
    """The autocast context the networks train in: bfloat16 on CUDA, float32 (off) elsewhere.

    The losses leave it for float32 (``ltnet.nn.losses.in_float32``).
    """
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def inference_precision(device: torch.device):
    """The autocast context the networks transfer labels in: bfloat16 on CUDA, and on a CPU that computes bfloat16
    natively (AVX512-BF16 or AMX), else float32 (off).

    On such a CPU a pass of ``G_F`` at the hippocampus grid takes half the time (0.043 against 0.091 CPU seconds;
    0.034 laid out by ``ready_for_inference``); its flow layer stays float32 (``ltnet.nn.networks``), and the
    fields differed from float32 by 0.015 voxel at most (docs/TUNING.md, "Transfer in bfloat16"). Other
    CPUs would convert bfloat16 in software (not measured here), so they run float32.
    """
    if device.type == "cuda":
        return mixed_precision(device)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_native_bfloat16())


def ready_for_inference(networks: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``networks`` (changed in place) on ``device`` in eval mode, laid out for ``inference_precision``.

    On a CPU the convolution weights go channels-last, the layout oneDNN's kernels run fastest: in float32 the same
    time at the hippocampus grid and a faster pass at a whole-brain grid (docs/BENCHMARKS.md, "Speed on a float32
    CPU", measures both layouts), in bfloat16 0.034 against 0.043 CPU seconds a pass of ``G_F`` at the hippocampus
    grid. The values stay the same up to float rounding; any later use (refinement, training) works with either
    layout.
    """
    networks = networks.to(device).eval()
    if device.type == "cpu":
        networks = networks.to(memory_format=torch.channels_last_3d)
    return networks


def ready_for_training(networks: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``networks`` (changed in place) on ``device`` in training mode; on a CPU with the convolution weights
    channels-last, so the activations follow: oneDNN's forward and backward kernels run fastest so (one training step
    of ``ltnet train`` at the hippocampus grid, float32, 1 thread: docs/BENCHMARKS.md, "Speed on a float32 CPU").
    The values stay the same up to float rounding, and a CPU run stays deterministic for a seed.
    """
    networks = networks.to(device).train()
    if device.type == "cpu":
        networks = networks.to(memory_format=torch.channels_last_3d)
    return networks


@functools.cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions that torch's CPU kernels use (AVX512-BF16 or AMX-BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # newer torch; older versions have private probes
    if capabilities is not None:
        found = capabilities()
        return bool(found.get("avx512_bf16") or found.get("amx_bf16"))
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def precision_name(device: torch.device, inference: bool) -> str:
    """The precision the networks compute in on ``device``: ``inference_precision`` for transfer (``inference``),
    ``mixed_precision`` for training; ``"bfloat16"`` or ``"float32"``."""
    native = device.type == "cuda" or (inference and cpu_has_native_bfloat16())
    return "bfloat16" if native else "float32"


@functools.cache
def cpu_name() -> str:
    """The processor's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows of it."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
