"""The module's Slicer self-test (LTNetTransferTest), run against slicer-core with stand-ins for the Qt-only
parts (slicer_standins.py), in its own interpreter. Inside Slicer the same class runs as ctest `py_LTNetTransfer`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ltnet_sample = pytest.importorskip("ltnet.sample")

HERE = Path(__file__).resolve().parent
MODULE = HERE.parents[1] / "LTNetTransfer"

SCRIPT = r"""
import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]  # the module (with LTNetCommonLib), the stand-ins
import os
from pathlib import Path

import ltnet.sample
import slicer_standins

if os.environ.get("LTNET_TEST_MODEL"):  # another model stands in for the bundled one
    ltnet.sample.demo_model_path = lambda: Path(os.environ["LTNET_TEST_MODEL"])
scene = slicer_standins.install()

import LTNetTransfer

test = LTNetTransfer.LTNetTransferTest()
test.setUp = lambda: scene.Clear(0)
test.runTest()
print("SELFTEST OK")
"""


def test_slicer_self_test_passes_against_slicer_core(tmp_path):
    model = Path(os.environ.get("LTNET_TEST_MODEL", ltnet_sample.demo_model_path()))
    if not model.is_file():
        pytest.skip(f"the bundled demo model {model} is not there")
    script = tmp_path / "self_test.py"
    script.write_text(SCRIPT, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script), str(MODULE), str(HERE)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    assert result.returncode == 0 and "SELFTEST OK" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Transfer test passed" in result.stdout and "Bad-input test passed" in result.stdout
