"""Which GPU the child would use, found without importing torch into Slicer."""

import shutil
import subprocess
import sys


def describeGpu(timeout: float = 5.0) -> str | None:
    """The name of the first CUDA GPU ("NVIDIA RTX A4000, 16 GiB"), or None if none is found.

    Uses torch if Slicer has already imported it, else `nvidia-smi`; never imports torch itself.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                properties = torch.cuda.get_device_properties(0)
                return f"{properties.name}, {properties.total_memory / 2**30:.0f} GiB"
            return None
        except Exception:
            return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        output = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in output.stdout.splitlines() if line.strip()]
    return lines[0] if output.returncode == 0 and lines else None
