"""Qt-free logic of the LTNetTransfer module: importable with MRML only (slicer-core), no `qt`, no torch.

The heavy work runs in a child process (`python -m ltnet transfer`); this package writes its
inputs, follows its progress and turns its outputs into MRML nodes.
"""

from .errors import TransferError
from .job import Progress, TransferJob
from .logic import TargetResult, TransferLogic
from .process import ChildProcess, SubprocessLauncher, pythonSlicerExecutable

__all__ = [
    "TransferLogic",
    "TargetResult",
    "TransferJob",
    "Progress",
    "TransferError",
    "ChildProcess",
    "SubprocessLauncher",
    "pythonSlicerExecutable",
]
