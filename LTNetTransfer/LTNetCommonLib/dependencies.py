"""Python packages the `ltnet` child needs inside Slicer, installed only after the user agrees (never at import).

torch comes from the PyTorch extension (PyTorchUtils picks the CUDA build that
matches the driver). `ltnet` itself is installed with the extension (beside the
scripted modules); its pure-Python dependencies come from pip without exact
pins, so Slicer's own SimpleITK, numpy and vtk stay as they are.
"""

import importlib
import importlib.util

#: import name -> pip requirement, installed after torch.
PIP_REQUIREMENTS = {"monai": "monai>=1.4", "slicerio": "slicerio>=1.0", "tqdm": "tqdm>=4.60"}

#: What PyTorchUtils installs when torch is missing.
TORCH_REQUIREMENT = ">=2.1"


def missingPackages() -> list[str]:
    return [name for name in ("torch", *PIP_REQUIREMENTS) if importlib.util.find_spec(name) is None]


def ensureDependencies(confirm, moduleTitle: str = "LTNet") -> bool:
    """Install what is missing, each step after the user agrees; True when everything is there.

    torch: PyTorchUtils asks the user itself (`askConfirmation=True`). The pip packages: `confirm(message) -> bool`.
    moduleTitle names the asking module in the messages. Runs inside Slicer only (PyTorchUtils, slicer.util.pip_install).
    """
    missing = missingPackages()
    if "torch" in missing:
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
    others = [PIP_REQUIREMENTS[name] for name in missing if name in PIP_REQUIREMENTS]
    if others:
        if not confirm(f"{moduleTitle} needs the Python package(s) " + ", ".join(others) + ". Install them now?"):
            return False
        import slicer

        slicer.util.pip_install(" ".join(others))
    importlib.invalidate_caches()
    if importlib.util.find_spec("ltnet") is None:
        raise RuntimeError("The ltnet package is missing: reinstall the LTNet extension.")
    return not missingPackages()
