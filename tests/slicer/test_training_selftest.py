"""The module's Slicer self-test (LTNetTrainingTest), run against slicer-core with stand-ins for the Qt-only parts.

Inside Slicer the same class runs as ctest `py_LTNetTraining`. Here it runs in a
separate interpreter, so the stand-ins (slicer.app, ScriptedLoadableModule,
parameterNodeWrapper) never leak into the other tests.
"""

import subprocess
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "LTNetTraining"
COMMON = Path(__file__).resolve().parents[2] / "LTNetTransfer"  # holds LTNetCommonLib

SCRIPT = r'''
import os
import sys
import types
import unittest

sys.path[:0] = [sys.argv[1], sys.argv[3]]  # the module folder, and where LTNetCommonLib is
os.environ["LTNET_RECENT_MODELS_FILE"] = sys.argv[2]
import slicer

scene = slicer.vtkMRMLScene()
slicer.mrmlScene = scene
appLogic = slicer.vtkSlicerApplicationLogic()
appLogic.SetMRMLScene(scene)
for name, cls in (("Colors", slicer.vtkSlicerColorLogic), ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic)):
    logic = cls()
    logic.SetMRMLApplicationLogic(appLogic)
    logic.SetMRMLScene(scene)
    appLogic.SetModuleLogic(name, logic)
    if name == "Colors":
        appLogic.SetColorLogic(logic)


# Stand-ins for what slicer-core does not have (Qt, the module framework, loadVolume).
class ScriptedLoadableModule:
    pass


class ScriptedLoadableModuleWidget:
    pass


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        pass


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message):
        print("delayDisplay:", message)


framework = types.ModuleType("slicer.ScriptedLoadableModule")
for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
            ScriptedLoadableModuleTest):
    setattr(framework, cls.__name__, cls)
sys.modules["slicer.ScriptedLoadableModule"] = framework
wrapper = types.ModuleType("slicer.parameterNodeWrapper")
wrapper.WithinRange = lambda low, high: None
wrapper.parameterNodeWrapper = lambda cls: cls
sys.modules["slicer.parameterNodeWrapper"] = wrapper
slicer.util.VTKObservationMixin = type("VTKObservationMixin", (), {})
slicer.app = types.SimpleNamespace(processEvents=lambda: None)


def read(path, nodeClass, storageClass):
    node = scene.AddNewNodeByClass(nodeClass)
    storageNode = scene.AddNewNodeByClass(storageClass)
    storageNode.SetFileName(str(path))
    assert storageNode.ReadData(node), path
    return node


slicer.util.loadVolume = lambda path: read(path, "vtkMRMLScalarVolumeNode", "vtkMRMLVolumeArchetypeStorageNode")
slicer.util.loadSegmentation = lambda path: read(path, "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode")

import LTNetTraining
import LTNetCommonLib.recentModels

LTNetCommonLib.recentModels.qtSettings = lambda: None  # the JSON file, not QSettings
test = LTNetTraining.LTNetTrainingTest()
test.setUp = lambda: scene.Clear(0)
test.runTest()
print("SELFTEST OK")
'''


def test_slicer_self_test_passes_against_slicer_core(tmp_path):
    script = tmp_path / "self_test.py"
    script.write_text(SCRIPT, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script), str(MODULE), str(tmp_path / "recent.json"), str(COMMON)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0 and "SELFTEST OK" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
