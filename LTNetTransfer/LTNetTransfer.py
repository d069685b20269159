"""LTNetTransfer: segment scans by transferring an atlas's labels with an LT-Net model.

Thin module file: the work is done by the Qt-free package `LTNetTransferLib`
(TransferLogic -> a `PythonSlicer -m ltnet transfer` child process -> MRML nodes), the panel by
`LTNetTransferLib.transferPanel`; code shared with LTNetTraining is in `LTNetCommonLib`.
torch and ltnet are never imported here: torch is installed through the PyTorch
extension only after the user agrees, and ltnet runs in the child.
"""

import logging
from typing import Annotated

import slicer
from LTNetCommonLib.i18n import _, translate
from LTNetCommonLib.moduleWidget import LTNetModuleWidgetMixin
from LTNetTransferLib import TransferError, TransferLogic
from LTNetTransferLib.display import showCycleConsistency
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

DOCUMENTATION_URL = "https://github.com/ltnet/SlicerLTNet/blob/main/docs/SLICER.md"


class LTNetTransfer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LTNet Transfer")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LTNet team (LTNet)"]
        self.parent.helpText = _("""
Segments one or several scans by transferring the labels of an atlas with an LT-Net model
(one-shot segmentation by label transfer). Choose the model (the bundled demo model, or a file written by
LTNet Training), check the target volumes, and press Apply. Each target gets a segmentation named after it,
on its own grid, with the atlas's segment names, colors and label values, and a grid transform
("... LTNet transform") that warps any atlas node onto the target: put the atlas node under it
(Data module) and harden it if needed.
<br><br>
<b>Quality check.</b> "Show cycle consistency" shows: red view, the atlas warped onto the target (ū) over the target;
yellow view, the atlas after the round trip atlas -> target -> atlas (l̄) over the atlas, with the atlas labels filled
and the round-trip labels (l̄_s) as outlines; green view, the Jacobian determinant of the forward map
(1 = volume kept, blue = compressed, red = expanded, black = folded) or the inverse-consistency error in mm.
The table lists per target the label cycle Dice (how well the atlas labels survive the round trip), the image cycle
error, the mean inverse-consistency error, the share of folded voxels and the local correlation (LNCC) between
the target and the warped atlas, over the transferred labels and over the whole grid, each with the model's
reference (the median of the same measure over its training scans).
The score is the image match where the labels went (LNCC over the labels divided by its reference; about 1 for a
typical good transfer) minus
10 times the share of folded voxels beyond 1% (a flipped or wrong scan can round-trip well, so the image match
decides). Verdict: <b>OK</b> if score >= 0.95, <b>check</b> if 0.60 <= score < 0.95, <b>likely failed</b>
below 0.60 (thresholds of ltnet.qc); a mean label cycle Dice below 0.8 turns OK into check. With refinement steps
the score reads the network's own match ("Network's LNCC in labels"): the fit raises the match of the refined field.
""")
        self.parent.helpText += "<br><br>" + _("Documentation, batch use and the measured accuracy: {url}").format(
            url=f'<a href="{DOCUMENTATION_URL}">{DOCUMENTATION_URL}</a>'
        )
        self.parent.acknowledgementText = _(
            "Method: Wang et al., LT-Net: Label Transfer by Learning Reversible Voxel-wise Correspondence for "
            "One-shot Medical Image Segmentation, CVPR 2020. Sample data: Medical Segmentation Decathlon "
            "(hippocampus), CC-BY-SA 4.0."
        )
        # nvidia-smi can take seconds: ask it now, in the background, so that the panel's setup does not wait.
        from LTNetCommonLib.gpu import prefetchGpuDescription

        prefetchGpuDescription()
        # The bundled atlas and held-out scans in the Sample Data module, once every module is loaded.
        from LTNetCommonLib.sampleData import registerSampleData

        slicer.app.connect("startupCompleted()", registerSampleData)


@parameterNodeWrapper
class LTNetTransferParameterNode:
    """The panel's state saved with the scene (names match the .ui's SlicerParameterName properties)."""

    useDemoModel: bool = True
    atlasVolume: vtkMRMLScalarVolumeNode
    atlasSegmentation: vtkMRMLSegmentationNode
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    prealign: bool = True
    refineSteps: Annotated[int, WithinRange(0, 500)] = 3  # CPU recommendation; the panel follows the device
    overlayOpacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5


class LTNetTransferWidget(LTNetModuleWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Loads the .ui and binds the parameter node (LTNetModuleWidgetMixin); the panel
    (LTNetTransferLib.transferPanel) does the rest."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from LTNetTransferLib.transferPanel import TransferPanel

        logic = LTNetTransferLogic(logCallback=lambda message: self.panel.appendLog(message))
        self.setupPanel(
            "UI/LTNetTransfer.ui", logic, lambda ui, logic: TransferPanel(ui, logic, lambda: self.parameterNode)
        )

    def enter(self):
        LTNetModuleWidgetMixin.enter(self)
        self.panel.refreshRecentModels()  # LTNet Training may have finished a model meanwhile


class LTNetTransferLogic(ScriptedLoadableModuleLogic):
    """The module's logic: a `TransferLogic` (see LTNetTransferLib) plus what needs Slicer itself."""

    def __init__(self, logCallback=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.transferLogic = TransferLogic(logCallback=logCallback or logging.info)

    def getParameterNode(self):
        return LTNetTransferParameterNode(super().getParameterNode())

    @staticmethod
    def demoModelPath():
        import ltnet.sample  # light: no torch

        return str(ltnet.sample.demo_model_path())

    @staticmethod
    def recentModelChoices():
        """[(label, path)] of the models LTNet Training finished, newest first."""
        from LTNetCommonLib.recentModels import recentModelChoices

        return recentModelChoices()

    @staticmethod
    def gpuDescription():
        from LTNetTransferLib.device import describeGpu

        return describeGpu()

    def start(self, modelPath, targetVolumeNodes, **options):
        return self.transferLogic.start(modelPath, targetVolumeNodes, **options)

    def loadResults(self, job):
        return self.transferLogic.loadResults(job)

    def cleanUp(self, job):
        self.transferLogic.cleanUp(job)

    def transfer(self, modelPath, targetVolumeNode, **options):
        """Blocking, for scripts: see `TransferLogic.transfer`."""
        return self.transferLogic.transfer(modelPath, targetVolumeNode, **options)


class LTNetTransferTest(ScriptedLoadableModuleTest):
    """Runs the module's flow inside Slicer on the bundled sample. The transfer needs PyTorch, monai, slicerio and
    tqdm: without them (a build machine) it is skipped with a message; the test never installs anything nor asks.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_transferSampleScan()
        self.setUp()
        self.test_badInputsAddNothing()

    def test_transferSampleScan(self):
        import numpy as np
        import vtk
        from LTNetCommonLib.dependencies import missingPackages

        import ltnet.sample

        missing = missingPackages()
        if missing:
            self.delayDisplay(
                f"Skipped the transfer test: {', '.join(missing)} not installed (press Apply in LTNet Transfer "
                "once to install them)"
            )
            return
        scan = ltnet.sample.held_out_scan_paths()[0]
        target = slicer.util.loadVolume(str(scan))
        self.assertIsNotNone(target)

        self.delayDisplay("Transferring the atlas labels with the demo model (CPU)")
        logic = LTNetTransferLogic()
        result = logic.transfer(LTNetTransferLogic.demoModelPath(), target, device="cpu", timeout=600)

        segmentation = result.segmentationNode.GetSegmentation()
        values = sorted(
            segmentation.GetNthSegment(i).GetLabelValue() for i in range(segmentation.GetNumberOfSegments())
        )
        self.assertEqual(values, [1, 2])
        names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
        self.assertEqual(names, {"Anterior hippocampus", "Posterior hippocampus"})

        labelmap = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        ids = vtk.vtkStringArray()
        segmentation.GetSegmentIDs(ids)
        self.assertTrue(
            slicer.modules.segmentations.logic().ExportSegmentsToLabelmapNode(
                result.segmentationNode,
                ids,
                labelmap,
                target,
                slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,
                result.colorTableNode,
            )
        )  # the atlas color table keeps the label values
        expected, actual = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        target.GetIJKToRASMatrix(expected)
        labelmap.GetIJKToRASMatrix(actual)
        np.testing.assert_array_equal(slicer.util.arrayFromVTKMatrix(actual), slicer.util.arrayFromVTKMatrix(expected))
        self.assertEqual(set(np.unique(slicer.util.arrayFromVolume(labelmap))) - {0}, {1, 2})

        self.assertTrue(result.transformNode.IsA("vtkMRMLGridTransformNode"))
        self.assertIn(result.qc["verdict"], ("OK", "check", "likely failed"))
        self.assertEqual(result.qcTableNode.GetNumberOfRows(), 1)
        self.delayDisplay("Showing the cycle consistency")
        showCycleConsistency(result, 0.5)
        self.delayDisplay("Transfer test passed")

    def test_badInputsAddNothing(self):
        import numpy as np

        flat = slicer.util.addVolumeFromArray(np.zeros((1, 20, 20), dtype=np.float32), name="flat")
        before = slicer.mrmlScene.GetNumberOfNodes()
        with self.assertRaises(TransferError):
            LTNetTransferLogic().transfer(LTNetTransferLogic.demoModelPath(), flat)
        with self.assertRaises(TransferError):
            LTNetTransferLogic().transfer("/no/such/model.pt", None)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), before)
        self.delayDisplay("Bad-input test passed")
