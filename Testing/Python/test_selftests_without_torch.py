"""On a build machine without PyTorch (ctest's py_LTNetTransfer and py_LTNetTraining) the modules' self-tests
pass with a "Skipped ..." message for the parts that need torch, still run the bad-input checks, and never open a
dialog nor try to install anything.

Runs both self-test classes against slicer-core (slicer_standins.py) in an interpreter whose site-packages lack
torch, monai, slicerio and tqdm: a folder of links to every other installed package, used with `python -S`.
"""

import os
import site
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MISSING = ("torch", "monai", "slicerio", "tqdm")

SCRIPT = r"""
import os
import sys

sys.path[:0] = sys.argv[1].split(os.pathsep)
import importlib.util

assert importlib.util.find_spec("torch") is None, "torch is still importable"
import slicer
import slicer_standins

scene = slicer_standins.install()


def noDialog(*args, **kwargs):
    raise AssertionError(f"a dialog was opened: {args}")


slicer.util.confirmOkCancelDisplay = slicer.util.confirmYesNoDisplay = noDialog
slicer.util.pip_install = noDialog
import LTNetCommonLib.recentModels
import LTNetTraining
import LTNetTransfer

LTNetCommonLib.recentModels.qtSettings = lambda: None
for test in (LTNetTransfer.LTNetTransferTest(), LTNetTraining.LTNetTrainingTest()):
    test.setUp = lambda: scene.Clear(0)
    test.runTest()
assert "torch" not in sys.modules, "a self-test imported torch"
print("SELFTESTS OK")
"""


def site_packages_without(tmp_path: Path, excluded) -> Path:
    """A folder linking every entry of this environment's site-packages except the `excluded` distributions."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    for source in map(Path, site.getsitepackages()):
        for entry in source.iterdir():
            stem = entry.name.split("-")[0].split(".")[0].lower()
            if stem in excluded or entry.suffix == ".pth" or (folder / entry.name).exists():
                continue
            (folder / entry.name).symlink_to(entry)
    return folder


def test_self_tests_skip_cleanly_without_torch(tmp_path):
    packages = site_packages_without(tmp_path, MISSING)
    script = tmp_path / "self_tests.py"
    script.write_text(SCRIPT, encoding="utf-8")
    path = os.pathsep.join(
        [str(REPO / "LTNetTransfer"), str(REPO / "LTNetTraining"), str(HERE), str(REPO), str(packages)]
    )
    result = subprocess.run(
        [sys.executable, "-S", str(script), path],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LTNET_RECENT_MODELS_FILE": str(tmp_path / "recent.json")},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "SELFTESTS OK" in result.stdout, output[-4000:]
    assert "Skipped the transfer test: torch, monai, slicerio, tqdm not installed" in output
    assert "Skipped the training test: torch, monai, slicerio, tqdm not installed" in output
    assert "Bad-input test passed" in output and "Bad inputs test passed" in output
