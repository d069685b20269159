"""Choosing the compute device."""

import sys

import torch

from ltnet.errors import LTNetError


def pick_device(choice: str = "auto", announce: bool = True) -> torch.device:
    """``auto`` takes the first usable CUDA GPU, else the CPU; ``cuda`` without a usable GPU is an error."""
    if choice not in ("auto", "cpu", "cuda"):
        raise LTNetError(f"--device {choice}: unknown device; use auto, cpu or cuda.")
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        device = torch.device("cuda")
        if announce:
            print(f"ltnet: using GPU {torch.cuda.get_device_name(device)}", file=sys.stderr)
        return device
    if choice == "cuda":
        raise LTNetError("--device cuda: no usable CUDA GPU (torch.cuda.is_available() is False); use --device cpu, or install a CUDA build of torch.")
    return torch.device("cpu")
