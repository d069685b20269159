"""The module's Slicer self-test (LTNetTrainingTest), run against slicer-core with stand-ins for the Qt-only
parts (slicer_standins.py).

Inside Slicer the same class runs as ctest `py_LTNetTraining`. Here it runs in a
separate interpreter, so the stand-ins (slicer.app, ScriptedLoadableModule,
parameterNodeWrapper) never leak into the other tests.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULE = Path(__file__).resolve().parents[2] / "LTNetTraining"
COMMON = Path(__file__).resolve().parents[2] / "LTNetTransfer"  # holds LTNetCommonLib

SCRIPT = r"""
import os
import sys

sys.path[:0] = [sys.argv[1], sys.argv[3], sys.argv[4]]  # the module, LTNetCommonLib, the stand-ins
os.environ["LTNET_RECENT_MODELS_FILE"] = sys.argv[2]
import slicer_standins

scene = slicer_standins.install()

import LTNetCommonLib.recentModels
import LTNetTraining

LTNetCommonLib.recentModels.qtSettings = lambda: None  # the JSON file, not QSettings
test = LTNetTraining.LTNetTrainingTest()
test.setUp = lambda: scene.Clear(0)
test.runTest()
print("SELFTEST OK")
"""


def test_slicer_self_test_passes_against_slicer_core(tmp_path):
    script = tmp_path / "self_test.py"
    script.write_text(SCRIPT, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script), str(MODULE), str(tmp_path / "recent.json"), str(COMMON), str(HERE)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0 and "SELFTEST OK" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
