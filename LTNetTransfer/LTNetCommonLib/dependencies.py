"""Python packages the `ltnet` child needs inside Slicer, installed only after the user agrees (never at import).

What to install is decided by `installPlan.makeInstallPlan` from what is installed (`installedState()` here):
torch through the PyTorch extension (PyTorchUtils picks the CUDA build that matches the driver), then monai,
slicerio and tqdm with pip under a constraints file that pins the installed torch, numpy, SimpleITK and vtk, so
installing never replaces Slicer's own packages or the PyTorch extension's torch build. `ltnet` itself is
installed with the extension (beside the scripted modules).
"""

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import tempfile

from LTNetCommonLib.installPlan import (
    PIP_REQUIREMENTS,
    PROTECTED,
    TORCH_REQUIREMENT,
    InstalledState,
    makeInstallPlan,
)

#: import name of each distribution the child needs (for find_spec)
IMPORT_NAMES = {"torch": "torch", "monai": "monai", "slicerio": "slicerio", "tqdm": "tqdm"}


def missingPackages() -> list[str]:
    """Import names of the packages the child needs that are not installed (["torch", "monai"] ...)."""
    return [name for name in ("torch", *PIP_REQUIREMENTS) if importlib.util.find_spec(IMPORT_NAMES[name]) is None]


def installedVersion(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def torchCudaVersion() -> str | None:
    """The CUDA version the installed torch was built for ("12.1"), None for a CPU-only build or no torch.

    Read from torch/version.py without importing torch (importing it into Slicer costs seconds and memory)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    try:
        with open(path, encoding="utf-8") as file:
            return parseTorchCuda(file.read())
    except OSError:
        return None


def parseTorchCuda(versionPy: str) -> str | None:
    """The `cuda = '12.1'` of torch/version.py's text ("cuda: Optional[str] = '12.1'"); None for `= None`."""
    match = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", versionPy, flags=re.M)
    return match.group(1) if match else None


def installedState(gpuTimeout: float = 2.0) -> InstalledState:
    """What is installed now, for `makeInstallPlan` (the GPU from nvidia-smi, waited for at most gpuTimeout s)."""
    from LTNetCommonLib.gpu import describeGpu

    names = sorted({*PROTECTED, *PIP_REQUIREMENTS})
    versions = {name: installedVersion(name) for name in names}
    if versions["torch"] is not None and importlib.util.find_spec("torch") is None:
        versions["torch"] = None  # metadata left behind by an uninstall
    return InstalledState(versions=versions, torchCuda=torchCudaVersion(), gpuName=describeGpu(gpuTimeout))


def ensureDependencies(confirm, moduleTitle: str = "LTNet", inform=None, pipInstall=None) -> bool:
    """Install what is missing, each step after the user agrees; True when everything is there.

    torch: PyTorchUtils asks the user itself (`askConfirmation=True`). The pip packages: `confirm(message) -> bool`.
    `inform(message)` gets the plan's warnings (default: the log). moduleTitle names the asking module in the
    messages. `pipInstall(arguments)` runs pip (default: slicer.util.pip_install). Raises RuntimeError with what
    to do when the user must act first (PyTorch extension missing, torch too old, pip could not fit the packages
    to the installed ones). Runs inside Slicer only.
    """
    inform = inform or logging.warning
    plan = makeInstallPlan(installedState(), moduleTitle)
    if plan.installTorch:
        try:
            import PyTorchUtils
        except ImportError as error:
            raise RuntimeError(
                f"{moduleTitle} needs PyTorch: install the PyTorch extension with the Extensions "
                "Manager, restart Slicer, then retry."
            ) from error
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
            askConfirmation=True, torchVersionRequirement=TORCH_REQUIREMENT
        )
        if torch is None:
            return False
        importlib.invalidate_caches()
        plan = makeInstallPlan(installedState(), moduleTitle)
    if plan.blocker:
        raise RuntimeError(plan.blocker)
    for message in plan.messages:
        inform(message)
    if plan.requirements:
        question = f"{moduleTitle} needs the Python package(s) {', '.join(plan.requirements)}. Install them now?"
        if plan.constraints:
            question += f" ({', '.join(plan.constraints)} stay as they are.)"
        if not confirm(question):
            return False
        runPip(plan, pipInstall)
    importlib.invalidate_caches()
    if importlib.util.find_spec("ltnet") is None:
        raise RuntimeError("The ltnet package is missing: reinstall the LTNet extension.")
    return not missingPackages()


def runPip(plan, pipInstall=None) -> None:
    """`pip install -c <constraints> <requirements>` through Slicer's pip_install (or `pipInstall(arguments)`)."""
    if pipInstall is None:
        import slicer

        pipInstall = slicer.util.pip_install
    with tempfile.TemporaryDirectory(prefix="LTNet-pip-") as folder:
        constraintsPath = os.path.join(folder, "constraints.txt")
        with open(constraintsPath, "w", encoding="utf-8") as file:
            file.write(plan.constraintsText())
        try:
            pipInstall(plan.pipArguments(constraintsPath))
        except Exception as error:
            raise RuntimeError(
                f"pip could not install {', '.join(plan.requirements)} next to the installed "
                f"{', '.join(plan.constraints)} ({error}). LTNet does not replace those: upgrade PyTorch with the "
                "PyTorch Utils module, or install a matching version from the Python console, then retry."
            ) from error
