"""Installing the child's dependencies never replaces torch, numpy, SimpleITK or vtk: the install plan against
fake installed sets, and ensureDependencies driving PyTorchUtils and pip (both faked) from it."""

import sys
import types

import pytest
from LTNetCommonLib import dependencies
from LTNetCommonLib.installPlan import InstalledState, makeInstallPlan, versionTuple

SLICER_PACKAGES = {"numpy": "1.26.4", "SimpleITK": "2.4.0", "vtk": "9.4.2"}


def state(torch=None, cuda=None, gpu=None, **others):
    versions = {**SLICER_PACKAGES, "torch": torch, **others}
    return InstalledState(versions=versions, torchCuda=cuda, gpuName=gpu)


def test_version_tuple_reads_release_numbers():
    assert versionTuple("2.4.1+cu121") == (2, 4, 1)
    assert versionTuple("2.8.0rc1") == (2, 8, 0)
    with pytest.raises(ValueError, match="not a version"):
        versionTuple("cpu")


def test_no_torch_installs_torch_first_and_nothing_else():
    plan = makeInstallPlan(state(), "LTNet Transfer")
    assert plan.installTorch and plan.requirements == [] and plan.blocker is None
    assert "LTNet Transfer needs PyTorch" in plan.messages[0]


def test_old_torch_blocks_with_the_pytorch_extension_upgrade():
    plan = makeInstallPlan(state(torch="2.0.1+cu118", cuda="11.8"), "LTNet Training")
    assert plan.blocker.startswith("LTNet Training needs PyTorch >=2.1, but PyTorch 2.0.1+cu118 is installed")
    assert "PyTorch Utils module" in plan.blocker
    assert plan.requirements == [] and not plan.installTorch and not plan.nothingToDo


def test_torch_older_than_newest_monai_gets_an_earlier_monai_and_keeps_everything_pinned():
    plan = makeInstallPlan(state(torch="2.4.1+cu121", cuda="12.1", slicerio="1.4.0"))
    assert plan.requirements == ["monai>=1.4,<1.6", "tqdm>=4.60"]
    assert plan.constraints == ["torch==2.4.1+cu121", "numpy==1.26.4", "SimpleITK==2.4.0", "vtk==9.4.2"]
    assert plan.pipArguments("/tmp/c.txt") == ["-c", "/tmp/c.txt", "monai>=1.4,<1.6", "tqdm>=4.60"]
    assert plan.constraintsText().splitlines() == plan.constraints
    assert any("PyTorch 2.4.1+cu121 is older than monai 1.6 needs (PyTorch >= 2.8)" in m for m in plan.messages)


def test_recent_torch_gets_the_newest_monai():
    plan = makeInstallPlan(state(torch="2.8.0", cuda="12.8", tqdm="4.66.0", slicerio="1.4.0"))
    assert plan.requirements == ["monai>=1.4"] and plan.messages == []
    assert "torch==2.8.0" in plan.constraints


def test_cpu_torch_with_a_gpu_present_warns_and_still_installs_the_rest():
    plan = makeInstallPlan(state(torch="2.5.1+cpu", cuda=None, gpu="NVIDIA RTX A4000, 16376 MiB"))
    assert plan.blocker is None and plan.requirements == ["monai>=1.4,<1.6", "slicerio>=1.0", "tqdm>=4.60"]
    (warning,) = plan.messages[:1]
    assert "NVIDIA RTX A4000" in warning and "CPU-only build" in warning and "PyTorch Utils module" in warning
    # a CPU build without a GPU is what it should be: no warning
    quiet = makeInstallPlan(state(torch="2.9.0+cpu", monai="1.6.1", slicerio="1.4.0", tqdm="4.66.0"))
    assert quiet.messages == [] and quiet.nothingToDo


def test_everything_present_is_nothing_to_do():
    plan = makeInstallPlan(
        state(torch="2.9.0+cu126", cuda="12.6", gpu="H100", monai="1.5.2", slicerio="1.4.0", tqdm="4")
    )
    assert plan.nothingToDo and plan.messages == [] and plan.pipArguments("x") == []


def test_torch_cuda_version_is_read_without_importing_torch():
    assert dependencies.parseTorchCuda("__version__ = '2.4.1+cu121'\ncuda: Optional[str] = '12.1'\n") == "12.1"
    assert dependencies.parseTorchCuda("cuda: Optional[str] = None\nhip = None\n") is None
    assert dependencies.parseTorchCuda("cuda = '11.8'\n") == "11.8"


def test_installed_state_reads_this_environment():
    installed = dependencies.installedState(gpuTimeout=0.1)
    assert installed.version("numpy") == __import__("numpy").__version__
    assert installed.version("torch") is None or versionTuple(installed.version("torch"))[0] >= 2


class FakePyTorchUtils:
    """The PyTorch extension's module: installTorch(askConfirmation, torchVersionRequirement) -> torch or None."""

    def __init__(self, agree=True):
        self.calls = []
        self.agree = agree

    def PyTorchUtilsLogic(self):
        return self

    def installTorch(self, askConfirmation, torchVersionRequirement):
        self.calls.append((askConfirmation, torchVersionRequirement))
        return types.SimpleNamespace(__version__="2.4.1+cu121") if self.agree else None


def test_ensure_dependencies_installs_torch_then_pip_packages_under_constraints(monkeypatch):
    states = iter([state(), state(torch="2.4.1+cu121", cuda="12.1")])  # before and after the PyTorch extension
    monkeypatch.setattr(dependencies, "installedState", lambda gpuTimeout=2.0: next(states))
    pytorchUtils = FakePyTorchUtils()
    monkeypatch.setitem(sys.modules, "PyTorchUtils", pytorchUtils)
    pipCalls, questions, notes = [], [], []

    def pipInstall(arguments):
        constraints = arguments[arguments.index("-c") + 1]
        pipCalls.append((arguments, open(constraints, encoding="utf-8").read()))

    monkeypatch.setattr(dependencies, "missingPackages", lambda: [])
    confirm = lambda question: questions.append(question) or True  # noqa: E731
    result = dependencies.ensureDependencies(confirm, "LTNet Transfer", notes.append, pipInstall)

    assert result is True
    assert pytorchUtils.calls == [(True, ">=2.1")]
    (question,) = questions
    assert question.startswith("LTNet Transfer needs the Python package(s) monai>=1.4,<1.6, slicerio>=1.0, tqdm>=4.60")
    assert "torch==2.4.1+cu121" in question
    ((arguments, constraintsText),) = pipCalls
    assert arguments[2:] == ["monai>=1.4,<1.6", "slicerio>=1.0", "tqdm>=4.60"]
    assert constraintsText == "torch==2.4.1+cu121\nnumpy==1.26.4\nSimpleITK==2.4.0\nvtk==9.4.2\n"
    assert any("earlier monai" in note for note in notes)


def test_ensure_dependencies_stops_when_the_user_declines_or_torch_is_too_old(monkeypatch):
    monkeypatch.setattr(dependencies, "installedState", lambda gpuTimeout=2.0: state())
    monkeypatch.setitem(sys.modules, "PyTorchUtils", FakePyTorchUtils(agree=False))
    assert dependencies.ensureDependencies(lambda q: pytest.fail("asked about pip"), "LTNet") is False

    monkeypatch.setattr(dependencies, "installedState", lambda gpuTimeout=2.0: state(torch="1.13.1"))
    with pytest.raises(RuntimeError, match=r"needs PyTorch >=2.1, but PyTorch 1.13.1 is installed: open the PyTorch"):
        dependencies.ensureDependencies(lambda q: pytest.fail("asked about pip"), "LTNet")


def test_pip_failure_says_what_stays_and_what_to_do():
    plan = makeInstallPlan(state(torch="2.2.0", cuda="12.1", numpy="2.1.0"))

    def failingPip(arguments):
        raise RuntimeError("ResolutionImpossible")

    with pytest.raises(RuntimeError) as error:
        dependencies.runPip(plan, failingPip)
    message = str(error.value)
    assert "pip could not install monai>=1.4,<1.6, slicerio>=1.0, tqdm>=4.60 next to the installed" in message
    assert "torch==2.2.0, numpy==2.1.0" in message and "ResolutionImpossible" in message
    assert "PyTorch Utils module" in message
