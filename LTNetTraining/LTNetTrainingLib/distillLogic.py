"""The distillation step: check the inputs, write scene volumes to files, start `ltnet distill` in a child process.

    from LTNetTrainingLib import TrainingLogic
    job = TrainingLogic().startDistillation("/out/model.pt", cohort, "/out/segmenter.pt", iterations=2000)
    job.poll(); job.cancel(); job.wait()        # the same TrainingJob as a training
    TrainingLogic().resumeDistillation("/out/model.pt", cohort, "/out/segmenter.pt", iterations=3000)
    TrainingLogic().distill(...)                # blocking, for batch scripts

Mixed into `TrainingLogic` (it uses its launcher, cohort split, device check and job start). No Qt here; every
check runs before any process starts and raises `TrainingInputError`.
"""

import os
import shutil
from pathlib import Path

from . import inputChecks
from .distillSettings import SOURCE_BUNDLED, SOURCE_TRAINED, DistillSettings
from .runSettings import commandLine
from .trainingErrors import TrainingInputError


def readModel(path, role):
    """The `ltnet.model_file.LTNetModel` in `path` (torch and ltnet are imported here, not at module load); a
    file ltnet cannot read raises `TrainingInputError` with ltnet's reason. `role` names the file in the message."""
    from ltnet.errors import LTNetError
    from ltnet.model_file import load_model

    try:
        return load_model(path)
    except LTNetError as error:
        raise TrainingInputError(
            f"{role} cannot be read: {error} (choose a model file written by LTNet Training or `ltnet train`)"
        ) from None


class DistillationMixin:
    """`startDistillation`, `resumeDistillation` and the blocking `distill` of `TrainingLogic`."""

    def resolveSourceModel(self, sourceModel):
        """'bundled' -> the bundled model's path; a path -> that path; None/'' -> a clear error."""
        if sourceModel == SOURCE_BUNDLED:
            from . import trainingLogic

            return trainingLogic.bundledModelPath()
        if not sourceModel or sourceModel == SOURCE_TRAINED:
            raise TrainingInputError(
                "No model to distil is chosen. Train a model first (its output model is then used), or choose "
                "the bundled model or a model file (.pt)."
            )
        return str(Path(sourceModel).expanduser().resolve())

    def checkDistillInputs(self, sourceModel, cohort, outputModelPath, settings, resume=False, overwrite=False):
        """Run every check; returns (cohort volumes, cohort files, the model for `--model`). On resume that is the
        output model itself: ltnet continues the distillation it holds, whatever the source was."""
        sourcePath = str(outputModelPath) if resume else self.resolveSourceModel(sourceModel)
        if not resume and not os.path.isfile(sourcePath):
            raise TrainingInputError(
                f"Model to distil {sourcePath} does not exist. Train a model first, or choose an existing .pt file."
            )
        cohortVolumes, cohortFiles = self.splitCohort(cohort)
        inputChecks.checkCohort(cohortVolumes, cohortFiles)
        inputChecks.checkOutputWritable(outputModelPath)
        if not resume and os.path.abspath(outputModelPath) == os.path.abspath(sourcePath):
            raise TrainingInputError(
                f"Output model {outputModelPath} is the model to distil. Choose another output file (the source "
                "model is kept as it is)."
            )
        if resume:
            if not os.path.isfile(outputModelPath):
                raise TrainingInputError(
                    f"Nothing to resume: {outputModelPath} does not exist yet. Start a distillation first (Resume "
                    "continues from its last checkpoint)."
                )
            segmenter = readModel(outputModelPath, f"Output model {outputModelPath}").segmenter
            if segmenter is None or not segmenter.training.get("settings"):
                raise TrainingInputError(
                    f"Nothing to resume: {outputModelPath} holds no distillation that can be continued. Start a "
                    "new distillation into another file."
                )
        elif not overwrite and os.path.exists(outputModelPath):
            raise TrainingInputError(
                f"Output model {outputModelPath} exists already. Resume it, choose another file, or confirm "
                "overwriting it."
            )
        inputChecks.checkDevice(settings.device, self.cudaAvailable)
        if not resume:
            readModel(sourcePath, f"Model to distil {sourcePath}")
        return cohortVolumes, cohortFiles, sourcePath

    def distillArguments(self, sourcePath, imagePaths, outputModelPath, settings, resume):
        """The `ltnet distill` command line (without the `ltnet` launcher)."""
        return commandLine(
            "distill", ["--model", sourcePath, "--images", *imagePaths], outputModelPath, settings, resume
        )

    def startDistillation(
        self,
        sourceModel,
        cohort,
        outputModelPath,
        resume=False,
        overwrite=False,
        logCallback=None,
        plotName="LTNet distillation",
        **settings,
    ):
        """Check everything, then start `ltnet distill` in a child process; returns the `TrainingJob`.

        sourceModel: 'bundled' or a model file path (the model whose transfers teach the network; not used on
        resume). cohort: volume
        nodes, image files and/or folders (unlabeled scans). outputModelPath: the new model file. resume: continue
        the distillation at outputModelPath (ltnet keeps its settings; `iterations` is the new total). overwrite:
        replace an existing outputModelPath when not resuming (else that is an error). settings: see
        `DistillSettings` (iterations, refine, learningRate, augment, device, seed, checkpointEvery).
        """
        settings = settings.pop("settings", None) or DistillSettings.fromKeywords(**settings)
        outputModelPath = str(Path(outputModelPath).expanduser().resolve()) if outputModelPath else outputModelPath
        cohortVolumes, cohortFiles, sourcePath = self.checkDistillInputs(
            sourceModel, cohort, outputModelPath, settings, resume, overwrite
        )
        if overwrite and not resume and os.path.isfile(outputModelPath):
            os.remove(outputModelPath)
        workFolder = self.newWorkFolder()
        try:
            imagePaths = self.writeCohort(workFolder, cohortVolumes, cohortFiles)
        except Exception:
            shutil.rmtree(workFolder, ignore_errors=True)
            raise
        arguments = self.distillArguments(sourcePath, imagePaths, outputModelPath, settings, resume)
        origin = "resuming" if resume else "distilling " + sourcePath
        return self.launchJob(arguments, outputModelPath, workFolder, plotName, logCallback, len(imagePaths), origin)

    def resumeDistillation(self, *arguments, **keywords):
        """`startDistillation(..., resume=True)`: continue from the checkpoint at outputModelPath."""
        return self.startDistillation(*arguments, resume=True, **keywords)

    def distill(self, *arguments, progressCallback=None, pollInterval=0.5, **keywords):
        """Blocking `startDistillation` + wait; returns the model path, raises RuntimeError when it fails."""
        return self.runToEnd(self.startDistillation(*arguments, **keywords), progressCallback, pollInterval)
