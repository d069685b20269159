"""What to install for the `ltnet` child inside Slicer, decided from what is installed (pure: no Slicer, no pip).

Rules:
- torch comes from the PyTorch extension only (it picks the build for the GPU driver); pip never touches it.
- The pip packages (monai, slicerio, tqdm) are installed with a constraints file that pins the installed torch,
  numpy, SimpleITK and vtk to their exact versions, so pip cannot replace Slicer's packages or the chosen torch
  build: it picks versions that fit them, or fails and says so.
- monai 1.6 needs torch >= 2.8: with an older torch the plan asks for monai < 1.6
  and says so (ltnet asks for monai >= 1.4 in pyproject.toml; only the newest monai is tested here).
- torch older than ltnet's minimum blocks the plan with the PyTorch extension's upgrade path.

    plan = makeInstallPlan(InstalledState(versions={"torch": "2.4.1+cu121", "numpy": "1.26.4"}, ...))
    plan.pipArguments("/tmp/constraints.txt") -> ["-c", "/tmp/constraints.txt", "monai>=1.4,<1.6", ...]
"""

import re
from dataclasses import dataclass, field

#: ltnet's oldest usable torch (pyproject.toml: torch>=2.1); what PyTorchUtils is asked for.
TORCH_MINIMUM = (2, 1)
TORCH_REQUIREMENT = ">=2.1"
#: The first monai that needs a newer torch, and that torch.
MONAI_NEEDS_NEWER_TORCH = ((1, 6), (2, 8))

#: distribution name -> pip requirement, for the pure-Python packages installed after torch.
PIP_REQUIREMENTS = {"monai": "monai>=1.4", "slicerio": "slicerio>=1.0", "tqdm": "tqdm>=4.60"}
#: Installed packages that pip must keep exactly as they are (Slicer's own, and the PyTorch extension's torch).
PROTECTED = ("torch", "numpy", "SimpleITK", "vtk")

UPGRADE_TORCH_ADVICE = (
    "open the PyTorch Utils module, uninstall PyTorch, restart Slicer, then start LTNet again: it installs "
    f"PyTorch {TORCH_REQUIREMENT} through the PyTorch extension, in the build that matches the GPU driver."
)


def versionTuple(version: str) -> tuple[int, ...]:
    """The release numbers of a version string: "2.4.1+cu121" -> (2, 4, 1), "2.8.0rc1" -> (2, 8, 0)."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(part) for part in match.group(1).split("."))


@dataclass(frozen=True)
class InstalledState:
    """What is there. `versions`: distribution name -> installed version (absent or None: not installed).
    `torchCuda`: the CUDA version the installed torch was built for (None: CPU-only build or no torch).
    `gpuName`: an NVIDIA GPU the driver shows (None: none found)."""

    versions: dict = field(default_factory=dict)
    torchCuda: str | None = None
    gpuName: str | None = None

    def version(self, name: str) -> str | None:
        return self.versions.get(name)


@dataclass
class InstallPlan:
    """The steps, in order: `installTorch` (through the PyTorch extension), then `requirements` with pip under
    `constraints`. `blocker`: why nothing can be installed (the user must act first). `messages`: what to tell
    the user (warnings and the choices made)."""

    installTorch: bool = False
    requirements: list = field(default_factory=list)
    constraints: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    blocker: str | None = None

    @property
    def nothingToDo(self) -> bool:
        return not self.installTorch and not self.requirements and self.blocker is None

    def pipArguments(self, constraintsPath: str) -> list:
        """The arguments after `pip install`: the constraints file (written from `constraints`), the requirements."""
        if not self.requirements:
            return []
        return (["-c", str(constraintsPath)] if self.constraints else []) + list(self.requirements)

    def constraintsText(self) -> str:
        return "".join(line + "\n" for line in self.constraints)


def makeInstallPlan(state: InstalledState, moduleTitle: str = "LTNet") -> InstallPlan:
    """The install plan for `state` (see the module docstring)."""
    plan = InstallPlan()
    torchVersion = state.version("torch")
    if torchVersion is None:
        # Everything else waits: the pip step is planned again once the PyTorch extension has installed torch.
        plan.installTorch = True
        plan.messages.append(f"{moduleTitle} needs PyTorch: the PyTorch extension installs it (it asks first).")
        return plan
    if versionTuple(torchVersion)[:2] < TORCH_MINIMUM:
        plan.blocker = (
            f"{moduleTitle} needs PyTorch {TORCH_REQUIREMENT}, but PyTorch {torchVersion} is installed: "
            + UPGRADE_TORCH_ADVICE
        )
        return plan
    if state.gpuName and not state.torchCuda:
        plan.messages.append(
            f"The GPU {state.gpuName} is present but the installed PyTorch ({torchVersion}) is a CPU-only build: "
            "LTNet will run on the CPU, much slower. To use the GPU, " + UPGRADE_TORCH_ADVICE
        )

    for name, requirement in PIP_REQUIREMENTS.items():
        if state.version(name) is not None:
            continue
        if name == "monai":
            firstMonai, neededTorch = MONAI_NEEDS_NEWER_TORCH
            if versionTuple(torchVersion)[:2] < neededTorch:
                requirement += f",<{'.'.join(map(str, firstMonai))}"
                plan.messages.append(
                    f"PyTorch {torchVersion} is older than monai {'.'.join(map(str, firstMonai))} needs "
                    f"(PyTorch >= {'.'.join(map(str, neededTorch))}): installing an earlier monai ({requirement}), "
                    "PyTorch stays as it is."
                )
        plan.requirements.append(requirement)
    if plan.requirements:
        plan.constraints = [f"{name}=={state.version(name)}" for name in PROTECTED if state.version(name)]
    return plan
