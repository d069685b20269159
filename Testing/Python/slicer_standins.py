"""Stand-ins for the parts of Slicer that slicer-core does not have (Qt, the module framework,
loadVolume ...), so that a module's own Slicer self-test class runs against slicer-core.

Used by the self-test scripts, each in its own interpreter, so nothing here leaks into other tests:

    import slicer_standins
    scene = slicer_standins.install()
"""

import sys
import types
import unittest

import slicer


class ScriptedLoadableModule:
    pass


class ScriptedLoadableModuleWidget:
    pass


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        pass

    def getParameterNode(self):
        raise NotImplementedError("no parameter nodes in the stand-ins")


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message):
        print("delayDisplay:", message, flush=True)


def install():
    """A fresh scene as slicer.mrmlScene with colors and segmentations logic, plus the stand-ins; returns it."""
    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    appLogic = slicer.vtkSlicerApplicationLogic()
    appLogic.SetMRMLScene(scene)
    logics = {}
    for name, cls in (
        ("Colors", slicer.vtkSlicerColorLogic),
        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
    ):
        logic = cls()
        logic.SetMRMLApplicationLogic(appLogic)
        logic.SetMRMLScene(scene)
        appLogic.SetModuleLogic(name, logic)
        logics[name] = logic
    appLogic.SetColorLogic(logics["Colors"])
    scene.keepAlive = (appLogic, logics)

    framework = types.ModuleType("slicer.ScriptedLoadableModule")
    for cls in (
        ScriptedLoadableModule,
        ScriptedLoadableModuleWidget,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleTest,
    ):
        setattr(framework, cls.__name__, cls)
    sys.modules["slicer.ScriptedLoadableModule"] = framework
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.WithinRange = lambda low, high: None
    wrapper.Choice = lambda choices: None
    wrapper.parameterNodeWrapper = lambda cls: cls
    sys.modules["slicer.parameterNodeWrapper"] = wrapper
    slicer.util.VTKObservationMixin = type("VTKObservationMixin", (), {})
    slicer.app = types.SimpleNamespace(processEvents=lambda: None)
    slicer.modules = types.SimpleNamespace(segmentations=types.SimpleNamespace(logic=lambda: logics["Segmentations"]))
    slicer.util.loadVolume = lambda path: read(
        scene, path, "vtkMRMLScalarVolumeNode", "vtkMRMLVolumeArchetypeStorageNode"
    )
    slicer.util.loadSegmentation = lambda path: read(
        scene, path, "vtkMRMLSegmentationNode", "vtkMRMLSegmentationStorageNode"
    )
    return scene


def read(scene, path, nodeClass, storageClass):
    node = scene.AddNewNodeByClass(nodeClass)
    storageNode = scene.AddNewNodeByClass(storageClass)
    storageNode.SetFileName(str(path))
    assert storageNode.ReadData(node), path
    return node
