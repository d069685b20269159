"""Which NVIDIA GPU the machine has, found without importing torch into Slicer and without blocking module setup.

`nvidia-smi` can take seconds (a GPU waking up, a busy driver), so it runs at most once per Slicer session, in a
background thread that `prefetchGpuDescription()` starts early (the module's constructor); `describeGpu()` waits
for that answer at most `timeout` seconds and caches it.
"""

import shutil
import subprocess
import sys
import threading

_lock = threading.Lock()
_probe = None  # the thread running nvidia-smi, once started
_result = {}  # "description": the answer once known


def _queryNvidiaSmi(timeout: float) -> str | None:
    """ "NVIDIA RTX A4000, 16376 MiB" for the first GPU nvidia-smi lists, None when there is none or it fails."""
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


def prefetchGpuDescription(smiTimeout: float = 20.0) -> None:
    """Start asking nvidia-smi in a daemon thread (no Qt, no MRML there); returns at once. Idempotent."""
    global _probe
    with _lock:
        if _probe is not None:
            return
        _probe = threading.Thread(
            target=lambda: _result.setdefault("description", _queryNvidiaSmi(smiTimeout)),
            name="LTNet GPU probe",
            daemon=True,
        )
        _probe.start()


def describeGpu(timeout: float = 2.0) -> str | None:
    """The first CUDA GPU ("NVIDIA RTX A4000, 16 GiB" from torch, or nvidia-smi's "name, memory"), or None.

    Uses torch if Slicer has already imported it; else the nvidia-smi answer, waiting at most `timeout` seconds
    for it (None meanwhile: the next call may know). Never imports torch itself.
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
    prefetchGpuDescription()
    _probe.join(timeout)
    return _result.get("description")


def _reset() -> None:
    """Forget the cached answer (tests)."""
    global _probe
    with _lock:
        _probe = None
        _result.clear()
