"""What the `ltnet` child process says it runs on, as text for a panel (Qt-free).

With `--progress jsonl` the child's first line is its own report, for example

    {"event": "start", "torch": "2.4.1+cu121", "cuda": "12.1", "device": "cuda",
     "device_name": "NVIDIA RTX A4000", "precision": "float16", "gpu_visible_but_unused": false}

`cuda` is the CUDA version the torch build was made for (null for a CPU-only build), `device` what the run uses,
`gpu_visible_but_unused` true when the driver shows a GPU that the run does not use.
"""

from dataclasses import dataclass

#: How to get a torch build that uses the GPU, in Slicer.
REINSTALL_ADVICE = (
    "To use the GPU: open the PyTorch Utils module, uninstall PyTorch, restart Slicer, and install it again "
    "there: it picks the build that matches the GPU driver."
)


@dataclass(frozen=True)
class TorchStartReport:
    """`status`: one line for the panel's status label; `warning`: a sentence to show prominently, or None."""

    status: str
    warning: str | None


def describeTorchStart(event: dict) -> TorchStartReport:
    """The child's start event (see the module docstring) -> what runs where, and a warning if a GPU sits unused.

    Examples: "Running on GPU: NVIDIA RTX A4000 (torch 2.4.1+cu121, CUDA 12.1, float16)";
    "Running on CPU: AMD EPYC 7763 (torch 2.13.0+cpu, CPU-only build, float32)".
    Missing keys read as unknown: an older core's start line still gives a status.
    """
    torchVersion = event.get("torch") or "unknown version"
    cuda = event.get("cuda")
    device = str(event.get("device") or "unknown device")
    onGpu = device.startswith("cuda")
    details = [f"torch {torchVersion}", f"CUDA {cuda}" if cuda else "CPU-only build"]
    if event.get("precision"):
        details.append(str(event["precision"]))
    where = "GPU" if onGpu else device.upper()
    name = event.get("device_name")
    status = f"Running on {where}" + (f": {name}" if name else "") + f" ({', '.join(details)})"

    warning = None
    if event.get("gpu_visible_but_unused") and not onGpu:
        if not cuda:
            warning = (
                f"A GPU is present but the installed torch ({torchVersion}) is a CPU-only build, so this run uses "
                f"the CPU and is much slower. {REINSTALL_ADVICE}"
            )
        else:
            warning = (
                f"A GPU is present but this run uses the {where} (device set to {device}, or the GPU is not usable "
                f"by torch {torchVersion} built for CUDA {cuda}): choose Device 'auto' or 'cuda' to use the GPU."
            )
    return TorchStartReport(status, warning)
