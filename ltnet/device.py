"""Choosing the compute device."""

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
            print(f"ltnet: using GPU {local_rank}: {torch.cuda.get_device_name(device)} ({total / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free)", file=sys.stderr)
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
        return f"this process (local rank {local_rank}) has no GPU of its own: only {torch.cuda.device_count()} GPU(s) visible; start fewer processes per node"
    try:
        (torch.ones(8, device=torch.device("cuda", local_rank)) * 2).sum().item()
    except RuntimeError as error:  # e.g. a GPU too old for this torch build, or busy in exclusive mode
        return f"GPU {local_rank} is not usable ({str(error).splitlines()[0]})"
    return None


def mixed_precision(device: torch.device):
    """The autocast context the networks run in: bfloat16 on CUDA, float32 (off) elsewhere.

    The losses leave it for float32 (``ltnet.nn.losses.in_float32``).
    """
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
