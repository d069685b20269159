"""TrainingLogic: check the inputs, write scene nodes to files, start `ltnet train` in a child process.

    from LTNetTrainingLib import TrainingLogic
    job = TrainingLogic().start(atlasVolumeNode, atlasSegmentationNode, cohort, "/out/model.pt",
                                iterations=300, device="cpu")
    job.poll()                 # from a timer; returns the latest progress dict
    job.cancel(); job.wait()
    TrainingLogic().train(...)  # blocking, for batch scripts
    TrainingLogic().startDistillation(...)  # `ltnet distill` (distillLogic.DistillationMixin)

No Qt here. Every check runs before any process starts; a problem raises
`TrainingInputError`.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

from LTNetCommonLib.nodeFiles import safeFileStem, writeSegmentationNode, writeVolumeNode

from . import inputChecks
from .cohortFiles import scanCohortFolder
from .distillLogic import DistillationMixin
from .lossPlot import LossPlot
from .runSettings import commandLine
from .trainingErrors import TrainingInputError
from .trainingJob import COMPLETED, TrainingJob
from .trainingProcess import SubprocessLauncher
from .trainingSettings import START_BUNDLED, START_SCRATCH, TrainingSettings


def bundledModelPath():
    """The model shipped inside the `ltnet` package."""
    import ltnet.sample

    return str(ltnet.sample.demo_model_path())


class TrainingLogic(DistillationMixin):
    """Starts trainings and distillations (`DistillationMixin`). `launcher` and `cudaAvailable` can be swapped
    (tests, other runtimes)."""

    def __init__(self, launcher=None, scene=None, cudaAvailable=None, logCallback=None):
        self.launcher = launcher or SubprocessLauncher()
        self.sceneOverride = scene
        self.cudaAvailable = cudaAvailable or inputChecks.torchCudaAvailable
        self.logCallback = logCallback

    @property
    def scene(self):
        if self.sceneOverride is not None:
            return self.sceneOverride
        import slicer

        return slicer.mrmlScene

    def log(self, line):
        if self.logCallback is not None:
            self.logCallback(line)

    def splitCohort(self, cohort):
        """(volume nodes, image file paths) from nodes, files and folders (a folder adds its readable images)."""
        if cohort is None:
            return [], []
        if isinstance(cohort, (str, os.PathLike)) or inputChecks.isNode(cohort):
            cohort = [cohort]
        volumes, files = [], []
        for item in cohort:
            if inputChecks.isNode(item):
                volumes.append(item)
            elif os.path.isdir(item):
                scan = scanCohortFolder(item)
                files.extend(scan.readable)
                if scan.unreadable:
                    self.log(f"Cohort folder {item}: {scan.summary()} (skipped)")
            else:
                files.append(str(item))
        return volumes, files

    def resolveInitModel(self, initModel):
        """None/'scratch' -> None, 'bundled' -> the bundled model's path, else the path itself."""
        if not initModel or initModel == START_SCRATCH:
            return None
        if initModel == START_BUNDLED:
            path = bundledModelPath()
            if not os.path.isfile(path):
                raise TrainingInputError(
                    f"The bundled model {path} is missing. Reinstall ltnet, or start from "
                    "another model or from scratch."
                )
            return path
        return str(initModel)

    def checkInputs(
        self,
        atlasVolume,
        atlasSegmentation,
        cohort,
        outputModelPath,
        settings,
        initModel=None,
        resume=False,
        overwrite=False,
    ):
        """Run every check; returns (cohort volumes, cohort files, init model path or None)."""
        atlasGeometry = inputChecks.checkAtlasVolume(atlasVolume)
        inputChecks.checkAtlasSegmentation(atlasSegmentation, atlasVolume, atlasGeometry)
        cohortVolumes, cohortFiles = self.splitCohort(cohort)
        inputChecks.checkCohort(cohortVolumes, cohortFiles)
        inputChecks.checkOutputWritable(outputModelPath)
        if resume and not os.path.isfile(outputModelPath):
            raise TrainingInputError(
                f"Nothing to resume: {outputModelPath} does not exist yet. Start a training "
                "first (Resume continues from its last checkpoint)."
            )
        if not resume and not overwrite and os.path.exists(outputModelPath):
            raise TrainingInputError(
                f"Output model {outputModelPath} exists already. Resume it, choose another "
                "file, or confirm overwriting it."
            )
        inputChecks.checkDevice(settings.device, self.cudaAvailable)
        initPath = None if resume else self.resolveInitModel(initModel)
        inputChecks.checkInitModel(initPath)
        return cohortVolumes, cohortFiles, initPath

    def writeInputs(self, workFolder, atlasVolume, atlasSegmentation, cohortVolumes, cohortFiles):
        """Files for the child: nodes are written into `workFolder`, paths are used as they are."""
        if inputChecks.isNode(atlasVolume):
            atlasImagePath = writeVolumeNode(atlasVolume, os.path.join(workFolder, "atlas.nrrd"))
        else:
            atlasImagePath = str(atlasVolume)
        if inputChecks.isNode(atlasSegmentation):
            if atlasSegmentation.IsA("vtkMRMLSegmentationNode"):
                referenceNode, temporaryNode = self.referenceVolume(atlasVolume)
                try:
                    atlasLabelsPath = writeSegmentationNode(
                        atlasSegmentation, referenceNode, os.path.join(workFolder, "atlas_labels.seg.nrrd")
                    )
                finally:
                    if temporaryNode is not None:
                        self.scene.RemoveNode(temporaryNode)
            else:
                atlasLabelsPath = writeVolumeNode(atlasSegmentation, os.path.join(workFolder, "atlas_labels.nrrd"))
        else:
            atlasLabelsPath = str(atlasSegmentation)
        return atlasImagePath, atlasLabelsPath, self.writeCohort(workFolder, cohortVolumes, cohortFiles)

    def writeCohort(self, workFolder, cohortVolumes, cohortFiles):
        """Image paths of the cohort for the child: volume nodes written into `workFolder` (NRRD, LPS), then the
        files as they are."""
        imagePaths = []
        for index, volumeNode in enumerate(cohortVolumes):
            stem = safeFileStem(volumeNode.GetName(), "volume")
            imagePaths.append(writeVolumeNode(volumeNode, os.path.join(workFolder, f"cohort{index:03d}_{stem}.nrrd")))
        imagePaths.extend(cohortFiles)
        return imagePaths

    def referenceVolume(self, atlasVolume):
        """(volume node with the atlas grid, temporary node to remove or None)."""
        if inputChecks.isNode(atlasVolume):
            return atlasVolume, None
        import numpy as np
        import slicer

        ijkToRas, size, _ = inputChecks.fileGeometry(atlasVolume)
        node = slicer.util.addVolumeFromArray(
            np.zeros(tuple(reversed(size)), np.uint8), ijkToRas, "__LTNetTrainingReference__"
        )
        return node, node

    def commandArguments(
        self, atlasImagePath, atlasLabelsPath, imagePaths, outputModelPath, settings, initPath, resume
    ):
        inputs = ["--atlas-image", atlasImagePath, "--atlas-labels", atlasLabelsPath, "--images", *imagePaths]
        arguments = commandLine("train", inputs, outputModelPath, settings, resume)
        if initPath and not resume:
            arguments += ["--init", initPath]
        elif not resume:  # from scratch: the teaching stage that ends ltnet's recipe (resumed: as the model holds)
            arguments += ["--teach-stage", str(max(0, int(settings.teachStage)))]
        return arguments

    def start(
        self,
        atlasVolume,
        atlasSegmentation,
        cohort,
        outputModelPath,
        initModel=None,
        resume=False,
        overwrite=False,
        logCallback=None,
        plotName="LTNet training",
        **settings,
    ):
        """Check everything, then start `ltnet train` in a child process; returns the `TrainingJob`.

        atlasVolume: scalar volume node or image file path. atlasSegmentation: segmentation node,
        label map volume node, or label file path (.seg.nrrd keeps names and colors). cohort: volume
        nodes, image files and/or folders. initModel: None (scratch), 'bundled', or a model path
        (fine-tuning). resume: continue from the checkpoint at outputModelPath. overwrite: replace an
        existing outputModelPath when not resuming (else that is an error). settings: see
        `TrainingSettings` (iterations, learningRate, grid, lambda1, lambda2, adversarial,
        diffeomorphic, device, seed, checkpointEvery).
        """
        settings = settings.pop("settings", None) or TrainingSettings.fromKeywords(**settings)
        outputModelPath = str(Path(outputModelPath).expanduser().resolve()) if outputModelPath else outputModelPath
        cohortVolumes, cohortFiles, initPath = self.checkInputs(
            atlasVolume, atlasSegmentation, cohort, outputModelPath, settings, initModel, resume, overwrite
        )
        if overwrite and not resume and os.path.isfile(outputModelPath):
            os.remove(outputModelPath)
        workFolder = self.newWorkFolder()
        try:
            atlasImagePath, atlasLabelsPath, imagePaths = self.writeInputs(
                workFolder, atlasVolume, atlasSegmentation, cohortVolumes, cohortFiles
            )
        except Exception:
            shutil.rmtree(workFolder, ignore_errors=True)
            raise
        arguments = self.commandArguments(
            atlasImagePath, atlasLabelsPath, imagePaths, outputModelPath, settings, initPath, resume
        )
        origin = "resuming" if resume else "from " + (initPath or "scratch")
        return self.launchJob(arguments, outputModelPath, workFolder, plotName, logCallback, len(imagePaths), origin)

    def newWorkFolder(self):
        """A new temporary folder for the child's input files; the job removes it when it ends."""
        return tempfile.mkdtemp(prefix="LTNetTraining-")

    def launchJob(self, arguments, outputModelPath, workFolder, plotName, logCallback, scanCount, origin):
        """Start `ltnet <arguments>` (train or distill) with a new loss plot; returns its `TrainingJob`."""
        lossPlot = LossPlot(self.scene, plotName)
        try:
            process = self.launcher.start(arguments)
        except Exception:
            lossPlot.removeNodes()
            shutil.rmtree(workFolder, ignore_errors=True)
            raise
        job = TrainingJob(process, outputModelPath, lossPlot, workFolder, logCallback or self.logCallback, arguments)
        job.addLog(f"Started ltnet {arguments[0]} on {scanCount} scans ({origin}), process {process.pid}")
        return job

    def resume(self, *arguments, **keywords):
        """`start(..., resume=True)`: continue from the checkpoint at outputModelPath."""
        return self.start(*arguments, resume=True, **keywords)

    def train(self, *arguments, progressCallback=None, pollInterval=0.5, **keywords):
        """Blocking `start` + wait; returns the model path, raises RuntimeError when the training fails."""
        return self.runToEnd(self.start(*arguments, **keywords), progressCallback, pollInterval)

    def runToEnd(self, job, progressCallback=None, pollInterval=0.5):
        """Poll `job` until it ends (cancelled on an exception, Ctrl-C included); returns the model path, raises
        RuntimeError with ltnet's error line when it did not complete."""
        try:
            while job.isRunning:
                progress = job.poll()
                if progressCallback is not None and progress:
                    progressCallback(progress)
                if job.isRunning:
                    time.sleep(pollInterval)
        except BaseException:
            job.cancel()
            raise
        if job.status != COMPLETED:
            raise RuntimeError(f"LTNet {job.name} {job.status}: {job.errorMessage()}")
        return job.outputModelPath
