"""Python packages the training needs inside Slicer: installed only after the user agrees, never at import.

torch comes from the PyTorch extension (PyTorchUtils picks the CUDA build that
matches the driver); `ltnet` and its pure-Python dependencies come from pip
without exact pins, so Slicer's own SimpleITK, numpy and vtk stay as they are.
"""

import importlib.util

LTNET_REQUIREMENT = "ltnet"


def isInstalled(name):
    return importlib.util.find_spec(name) is not None


def missingPackages():
    return [name for name in ("torch", "ltnet") if not isInstalled(name)]


def ensureDependencies(confirm):
    """Install what is missing after `confirm(message) -> bool` agrees; returns True when all is there.

    Runs inside Slicer only (PyTorchUtils, slicer.util.pip_install).
    """
    missing = missingPackages()
    if not missing:
        return True
    message = ("LTNet training needs the Python package(s) " + ", ".join(missing) + ", which are not installed. "
               "Install them now? (PyTorch is installed by the PyTorch extension; this can take several minutes.)")
    if not confirm(message):
        return False
    if "torch" in missing:
        import PyTorchUtils

        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False, torchVersionRequirement=">=2.1")
        if torch is None:
            raise RuntimeError("PyTorch could not be installed. Install it with the PyTorch Utils module, then retry.")
    if "ltnet" in missing:
        import slicer

        slicer.util.pip_install(LTNET_REQUIREMENT)
    importlib.invalidate_caches()
    return not missingPackages()
