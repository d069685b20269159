"""LTNetTraining: train LT-Net networks from one labeled atlas and a cohort of unlabeled scans.

Thin module file: the logic lives in the Qt-free package `LTNetTrainingLib`
(TrainingLogic, TrainingJob), the panel in `LTNetTrainingLib.trainingPanel`.
torch is never imported here; it is installed (PyTorch extension) only after the
user agrees, when a training starts.
"""

import os
import tempfile
import time
from typing import Annotated

import slicer
from LTNetCommonLib.i18n import _, translate
from LTNetCommonLib.moduleWidget import LTNetModuleWidgetMixin
from LTNetTrainingLib import COMPLETED, TrainingLogic
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

DOCUMENTATION_URL = "https://github.com/ltnet/SlicerLTNet/blob/main/docs/SLICER_TRAINING.md"


class LTNetTraining(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LTNet Training")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["LTNet team (LTNet)"]
        self.parent.helpText = _(
            "Train LT-Net (one-shot segmentation by label transfer, CVPR 2020) from one labeled atlas and a cohort "
            "of unlabeled scans, then optionally distil the model into a segmentation network (Step: Distil). Both "
            "run in a background process with a live loss plot; Cancel keeps the last checkpoint and Resume "
            "continues from it. The new model appears in LTNet Transfer."
        )
        self.parent.helpText += "<br><br>" + _("Documentation, settings and measured training times: {url}").format(
            url=f'<a href="{DOCUMENTATION_URL}">{DOCUMENTATION_URL}</a>'
        )
        self.parent.acknowledgementText = _(
            "Method: Wang et al., LT-Net: Label Transfer by Learning Reversible Voxel-wise Correspondence for "
            "One-shot Medical Image Segmentation, CVPR 2020."
        )


@parameterNodeWrapper
class LTNetTrainingParameterNode:
    """The panel's state saved with the scene (names match the .ui's SlicerParameterName properties)."""

    atlasVolume: vtkMRMLScalarVolumeNode
    atlasSegmentation: vtkMRMLSegmentationNode
    iterations: Annotated[int, WithinRange(1, 1000000)] = 600  # the fine-tuning recipe
    learningRate: Annotated[float, WithinRange(1e-6, 1e-2)] = 1e-4
    gridX: Annotated[int, WithinRange(0, 512)] = 0  # 0: auto
    gridY: Annotated[int, WithinRange(0, 512)] = 0  # 0: auto
    gridZ: Annotated[int, WithinRange(0, 512)] = 0  # 0: auto
    lambda1: Annotated[float, WithinRange(0, 1000)] = 10.0
    lambda2: Annotated[float, WithinRange(0, 1000)] = 3.0
    adversarial: bool = False
    diffeomorphic: bool = False
    prealign: bool = True
    prealignFixed: Annotated[str, Choice(["", "scan", "atlas"])] = ""  # "": the starting model's own, else atlas
    teach: Annotated[float, WithinRange(0, 1000)] = 10.0
    warmup: Annotated[float, WithinRange(0, 1)] = 0.5
    coupling: Annotated[float, WithinRange(0, 1)] = 0.1
    augment: bool = False
    fieldDownsize: Annotated[int, WithinRange(1, 8)] = 1
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
    checkpointEvery: Annotated[int, WithinRange(1, 100000)] = 100
    # The distillation step (`ltnet distill`; defaults are ltnet's, LTNetTrainingLib.DistillSettings)
    distillIterations: Annotated[int, WithinRange(1, 1000000)] = 2000
    distillRefine: Annotated[int, WithinRange(0, 100)] = 3
    distillLearningRate: Annotated[float, WithinRange(1e-6, 1e-1)] = 1e-3
    distillAugment: bool = True
    distillDevice: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    distillSeed: Annotated[int, WithinRange(0, 2147483647)] = 0
    distillCheckpointEvery: Annotated[int, WithinRange(1, 100000)] = 100


class LTNetTrainingWidget(LTNetModuleWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Loads the .ui and binds the parameter node (LTNetModuleWidgetMixin); the panel
    (LTNetTrainingLib.trainingPanel) does the rest."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        from LTNetTrainingLib.trainingPanel import TrainingPanel

        self.setupPanel("UI/LTNetTraining.ui", LTNetTrainingLogic(), TrainingPanel)

    def initializeParameterNode(self):
        LTNetModuleWidgetMixin.initializeParameterNode(self)
        if not self.parameterNode.atlasVolume:
            self.parameterNode.atlasVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")


class LTNetTrainingLogic(ScriptedLoadableModuleLogic, TrainingLogic):
    """Slicer's logic object: the parameter node plus the Qt-free TrainingLogic (start, resume, train)."""

    def __init__(self, **keywords):
        ScriptedLoadableModuleLogic.__init__(self)
        TrainingLogic.__init__(self, **keywords)

    def getParameterNode(self):
        return LTNetTrainingParameterNode(super().getParameterNode())


class LTNetTrainingTest(ScriptedLoadableModuleTest):
    """Inside Slicer: a short real training on the bundled sample, cancel, resume, and the loss plot. The training
    needs PyTorch, monai, slicerio and tqdm: without them (a build machine) it is skipped with a message; the test
    never installs anything nor asks."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_TrainCancelResume()
        self.setUp()
        self.test_Distill()
        self.setUp()
        self.test_BadInputsStartNothing()

    def loadSample(self):
        import ltnet.sample

        atlas = slicer.util.loadVolume(str(ltnet.sample.atlas_image_path()))
        segmentation = slicer.util.loadSegmentation(str(ltnet.sample.atlas_labels_path()))
        scans = [slicer.util.loadVolume(str(path)) for path in ltnet.sample.scan_paths()[:2]]
        return atlas, segmentation, scans

    def test_TrainCancelResume(self):
        from LTNetCommonLib.dependencies import missingPackages

        missing = missingPackages()
        if missing:
            self.delayDisplay(
                f"Skipped the training test: {', '.join(missing)} not installed (press Start in LTNet Training "
                "once to install them)"
            )
            return
        self.delayDisplay("Training on two bundled scans")
        atlas, segmentation, scans = self.loadSample()
        outputPath = os.path.join(tempfile.mkdtemp(prefix="LTNetTrainingTest-"), "model.pt")
        logic = LTNetTrainingLogic()
        settings = dict(grid=(32, 32, 32), device="cpu", checkpointEvery=1, teachStage=0)  # registration only
        job = logic.start(atlas, segmentation, scans, outputPath, iterations=2, **settings)
        self.assertEqual(job.wait(timeout=600), COMPLETED, job.errorMessage())
        self.assertEqual(job.tableNode.GetNumberOfRows(), 2)
        for seriesNode in job.seriesNodes.values():
            self.assertEqual(seriesNode.GetTableNodeID(), job.tableNode.GetID())
        from ltnet.model_file import load_model

        self.assertTrue(load_model(outputPath).labels)

        self.delayDisplay("Resume continues the count; Cancel keeps the last checkpoint")
        job = logic.resume(atlas, segmentation, scans, outputPath, iterations=200, **settings)
        deadline = time.monotonic() + 600
        while job.isRunning and job.iteration < 4 and time.monotonic() < deadline:
            job.poll()
            slicer.app.processEvents()
            time.sleep(0.2)
        self.assertTrue(job.isRunning, job.errorMessage())
        self.assertEqual(job.progressEvents[0]["iteration"], 3)
        started = time.monotonic()
        job.cancel()
        self.assertLess(time.monotonic() - started, 10)
        self.assertGreaterEqual(load_model(outputPath).iteration, 3)  # the last good checkpoint, loadable
        self.delayDisplay("Training test passed")

    def test_Distill(self):
        """The bundled model distilled on two bundled scans for 2 iterations: a model with a segmentation network,
        one loss-table row per iteration with the distillation's losses."""
        from LTNetCommonLib.dependencies import missingPackages

        if missingPackages():
            self.delayDisplay("Skipped the distillation test: packages missing (see the training test)")
            return
        self.delayDisplay("Distilling the bundled model on two bundled scans")
        _, _, scans = self.loadSample()
        outputPath = os.path.join(tempfile.mkdtemp(prefix="LTNetTrainingTest-"), "distilled.pt")
        job = LTNetTrainingLogic().startDistillation(
            "bundled", scans, outputPath, iterations=2, refine=0, device="cpu", checkpointEvery=1
        )
        self.assertEqual(job.wait(timeout=600), COMPLETED, job.errorMessage())
        self.assertEqual(job.tableNode.GetNumberOfRows(), 2)
        self.assertEqual(sorted(job.seriesNodes), ["ce", "dice", "loss"])
        from ltnet.model_file import load_model

        self.assertEqual(load_model(outputPath).segmenter.iteration, 2)
        self.delayDisplay("Distillation test passed")

    def test_BadInputsStartNothing(self):
        from LTNetTrainingLib import TrainingInputError

        atlas, segmentation, scans = self.loadSample()
        outputPath = os.path.join(tempfile.mkdtemp(prefix="LTNetTrainingTest-"), "model.pt")
        started = []

        class RecordingLauncher:
            def start(self, arguments, environment=None):
                started.append(arguments)
                raise AssertionError("a process was started")

        logic = LTNetTrainingLogic(launcher=RecordingLauncher(), cudaAvailable=lambda: False)
        with self.assertRaises(TrainingInputError):
            logic.start(atlas, segmentation, [], outputPath, iterations=2, device="cpu")
        emptySegmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        with self.assertRaises(TrainingInputError):
            logic.start(atlas, emptySegmentation, scans, outputPath, iterations=2, device="cpu")
        with self.assertRaises(TrainingInputError):
            logic.start(atlas, segmentation, scans, outputPath, iterations=2, device="cuda")
        with self.assertRaises(TrainingInputError):
            logic.start(atlas, segmentation, scans, os.path.join(__file__, "model.pt"), iterations=2, device="cpu")
        self.assertEqual(started, [])
        self.delayDisplay("Bad inputs test passed")
