"""A real MRML scene without Qt, from the `slicer-core` wheel.

Module logic (the Qt-free `*Lib` packages inside the module folders) is tested
against it. Each test gets a fresh scene.
"""

import os
import sys
from pathlib import Path

import pytest

# The `ltnet` children started by the tests inherit this: one torch thread each, so that a child and
# the other processes of a 2-core machine do not oversubscribe it (torch gets ~10x slower then).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[2]
for module_folder in ("LTNetTransfer", "LTNetTraining"):
    path = str(REPO / module_folder)
    if path not in sys.path:
        sys.path.insert(0, path)

slicer = pytest.importorskip("slicer", reason="slicer-core is part of the test set-up")


def new_scene():
    """A fresh `vtkMRMLScene`, installed as `slicer.mrmlScene`, with colors and segmentations logic."""
    mrml_scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = mrml_scene
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(mrml_scene)

    def make_logic(cls):
        logic = cls()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(mrml_scene)
        return logic

    colors = make_logic(slicer.vtkSlicerColorLogic)
    app_logic.SetColorLogic(colors)
    app_logic.SetModuleLogic("Colors", colors)
    segmentations = make_logic(slicer.vtkSlicerSegmentationsModuleLogic)
    app_logic.SetModuleLogic("Segmentations", segmentations)
    mrml_scene.segmentationsLogic = segmentations  # handy for tests
    mrml_scene.appLogic = app_logic  # keep the logics alive as long as the scene
    mrml_scene.colorLogic = colors
    return mrml_scene


@pytest.fixture
def scene():
    """A fresh scene for each test (see `new_scene`)."""
    mrml_scene = new_scene()
    yield mrml_scene
    mrml_scene.Clear(1)


@pytest.fixture(scope="module")
def module_scene():
    """One scene shared by the tests of a module, for results that are slow to make (a transfer)."""
    mrml_scene = new_scene()
    yield mrml_scene
    mrml_scene.Clear(1)
