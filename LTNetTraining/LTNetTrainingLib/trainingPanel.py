"""The Qt side of the LTNetTraining panel: reads the widgets, starts a job, polls it from a qt.QTimer.

Two steps share the cohort, the buttons, the progress bar, the plot and the log: training the registration
networks (`ltnet train`) and distilling a model into a segmentation network (`ltnet distill`).

Imported by the module's widget only (it needs qt and the Slicer application).
Widget names are those of Resources/UI/LTNetTraining.ui. The settings widgets are bound to the module's
parameter node by their SlicerParameterName (the module widget does that); the panel reads the widgets.
"""

import os

import qt
import slicer
from LTNetCommonLib.dependencies import ensureDependencies
from LTNetCommonLib.recentModels import recentModels

from .cohortFiles import scanCohortFolder
from .distillSettings import EXPLANATION as DISTILL_EXPLANATION
from .distillSettings import SOURCE_BUNDLED, SOURCE_MODEL, SOURCE_TRAINED, SOURCES, DistillSettings
from .distillSettings import TOOLTIPS as DISTILL_TOOLTIPS
from .trainingJob import COMPLETED
from .trainingSettings import (
    DEVICES,
    FINE_TUNE_RECIPE,
    PREALIGN_FIXED,
    PREALIGN_FIXED_LABELS,
    START_BUNDLED,
    START_MODEL,
    START_SCRATCH,
    TOOLTIPS,
    TrainingSettings,
)
from .trainingTime import TYPICAL_DISTILL_SPEED, SpeedMemory, formatDuration

START_CHOICES = (START_BUNDLED, START_MODEL, START_SCRATCH)  # order of startFromComboBox items
RECIPE_FINE_TUNE, RECIPE_CUSTOM = 0, 1  # order of recipeComboBox items
STEP_TRAIN, STEP_DISTILL = 0, 1  # order of stepComboBox items
TRAIN_EXPLANATION = (
    "Training learns the registration networks that carry the atlas labels onto each scan, from the atlas and the "
    "unlabeled cohort."
)
POLL_INTERVAL_MS = 500


class TrainingPanel:
    """Drives the widgets of the .ui (`ui`, from childWidgetVariables) with `logic` (a TrainingLogic)."""

    def __init__(self, ui, logic):
        self.ui = ui
        self.logic = logic
        self.job = None
        self.jobSpeedKey = None
        self.speeds = SpeedMemory()  # seconds per iteration measured by the trainings since Slicer started
        self.cohortScan = None
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.onTimer)
        self.setTooltips()
        self.ui.startButton.connect("clicked(bool)", lambda checked=False: self.onStart(resume=False))
        self.ui.resumeButton.connect("clicked(bool)", lambda checked=False: self.onStart(resume=True))
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.showPlotButton.connect("clicked(bool)", self.onShowPlot)
        self.ui.recipeComboBox.connect("activated(int)", self.onRecipeChosen)
        self.ui.cohortFolderPathLineEdit.connect("currentPathChanged(QString)", self.onCohortFolderChanged)
        self.ui.cohortVolumesSelector.connect("checkedNodesChanged()", self.updateCohortCount)
        self.ui.stepComboBox.connect("currentIndexChanged(int)", self.onStepChanged)
        for widget in (
            self.ui.startFromComboBox,
            self.ui.deviceComboBox,
            self.ui.distillSourceComboBox,
            self.ui.distillDeviceComboBox,
        ):
            widget.connect("currentIndexChanged(int)", self.updateButtons)
        self.ui.distillIterationsSpinBox.connect("valueChanged(int)", self.updateButtons)
        for widget in (self.ui.distillSourcePathLineEdit, self.ui.distillOutputPathLineEdit):
            widget.connect("currentPathChanged(QString)", self.updateButtons)
        for widget in (self.ui.atlasVolumeSelector, self.ui.atlasSegmentationSelector):
            widget.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        for widget in (self.ui.iterationsSpinBox, self.ui.gridXSpinBox, self.ui.gridYSpinBox, self.ui.gridZSpinBox):
            widget.connect("valueChanged(int)", self.updateButtons)
        for widget in (self.ui.learningRateSpinBox, self.ui.teachSpinBox):
            widget.connect("valueChanged(double)", self.updateButtons)
        self.ui.augmentCheckBox.connect("toggled(bool)", self.updateButtons)
        self.ui.initModelPathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        self.ui.outputModelPathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        if not self.ui.outputModelPathLineEdit.currentPath:
            self.ui.outputModelPathLineEdit.currentPath = os.path.join(
                slicer.app.defaultScenePath, "LTNet", "ltnet_model.pt"
            )
        if not self.ui.distillOutputPathLineEdit.currentPath:
            self.ui.distillOutputPathLineEdit.currentPath = os.path.join(
                slicer.app.defaultScenePath, "LTNet", "ltnet_distilled_model.pt"
            )
        self.onCohortFolderChanged(self.ui.cohortFolderPathLineEdit.currentPath)
        self.onStepChanged()

    def setTooltips(self):
        for name, widget in [
            ("recipe", self.ui.recipeComboBox),
            ("iterations", self.ui.iterationsSpinBox),
            ("learningRate", self.ui.learningRateSpinBox),
            ("grid", self.ui.gridXSpinBox),
            ("grid", self.ui.gridYSpinBox),
            ("grid", self.ui.gridZSpinBox),
            ("lambda1", self.ui.lambda1SpinBox),
            ("lambda2", self.ui.lambda2SpinBox),
            ("adversarial", self.ui.adversarialCheckBox),
            ("diffeomorphic", self.ui.diffeomorphicCheckBox),
            ("prealign", self.ui.prealignCheckBox),
            ("prealignFixed", self.ui.prealignFixedComboBox),
            ("device", self.ui.deviceComboBox),
            ("seed", self.ui.seedSpinBox),
            ("checkpointEvery", self.ui.checkpointEverySpinBox),
            ("teach", self.ui.teachSpinBox),
            ("warmup", self.ui.warmupSpinBox),
            ("coupling", self.ui.couplingSpinBox),
            ("augment", self.ui.augmentCheckBox),
            ("fieldDownsize", self.ui.fieldDownsizeSpinBox),
        ]:
            widget.setToolTip(TOOLTIPS[name])
        for name, widget in [
            ("source", self.ui.distillSourceComboBox),
            ("source", self.ui.distillSourcePathLineEdit),
            ("output", self.ui.distillOutputPathLineEdit),
            ("iterations", self.ui.distillIterationsSpinBox),
            ("refine", self.ui.distillRefineSpinBox),
            ("learningRate", self.ui.distillLearningRateSpinBox),
            ("augment", self.ui.distillAugmentCheckBox),
            ("device", self.ui.distillDeviceComboBox),
            ("seed", self.ui.distillSeedSpinBox),
            ("checkpointEvery", self.ui.distillCheckpointEverySpinBox),
        ]:
            widget.setToolTip(DISTILL_TOOLTIPS[name])

    def labelChoices(self):
        """Readable item texts for the pre-alignment combo box. The parameter node's binding fills it with the raw
        choices ("", "scan", "atlas") each time it connects and reads it by index, so the texts can change."""
        for index, label in enumerate(PREALIGN_FIXED_LABELS):
            if self.ui.prealignFixedComboBox.itemText(index) != label:
                self.ui.prealignFixedComboBox.setItemText(index, label)

    # Inputs
    def cohortVolumes(self):
        return list(self.ui.cohortVolumesSelector.checkedNodes())

    def cohortFiles(self):
        return list(self.cohortScan.readable) if self.cohortScan else []

    def onCohortFolderChanged(self, folder):
        self.cohortScan = scanCohortFolder(folder) if folder else None
        self.updateCohortCount()

    def updateCohortCount(self):
        volumes = len(self.cohortVolumes())
        text = f"{volumes + len(self.cohortFiles())} scans: {volumes} volume{'s' if volumes != 1 else ''} checked"
        if self.cohortScan is not None:
            text += f"; folder: {self.cohortScan.summary()}"
        self.ui.cohortCountLabel.text = text
        self.updateButtons()

    def startFrom(self):
        return START_CHOICES[max(0, self.ui.startFromComboBox.currentIndex)]

    def initModel(self):
        startFrom = self.startFrom()
        if startFrom == START_MODEL:
            return self.ui.initModelPathLineEdit.currentPath
        return startFrom

    def settings(self):
        return TrainingSettings(
            iterations=self.ui.iterationsSpinBox.value,
            learningRate=self.ui.learningRateSpinBox.value,
            grid=(self.ui.gridXSpinBox.value, self.ui.gridYSpinBox.value, self.ui.gridZSpinBox.value),
            lambda1=self.ui.lambda1SpinBox.value,
            lambda2=self.ui.lambda2SpinBox.value,
            adversarial=self.ui.adversarialCheckBox.checked,
            warmup=self.ui.warmupSpinBox.value,
            coupling=self.ui.couplingSpinBox.value,
            diffeomorphic=self.ui.diffeomorphicCheckBox.checked,
            fieldDownsize=self.ui.fieldDownsizeSpinBox.value,
            augment=self.ui.augmentCheckBox.checked,
            teach=0.0 if self.startFrom() == START_SCRATCH else self.ui.teachSpinBox.value,  # teaching fine-tunes
            prealign=self.ui.prealignCheckBox.checked,
            prealignFixed=PREALIGN_FIXED[max(0, self.ui.prealignFixedComboBox.currentIndex)],
            device=DEVICES[max(0, self.ui.deviceComboBox.currentIndex)],
            seed=self.ui.seedSpinBox.value,
            checkpointEvery=self.ui.checkpointEverySpinBox.value,
        )

    # The distillation step
    def isDistillStep(self):
        return self.ui.stepComboBox.currentIndex == STEP_DISTILL

    def distillSource(self):
        return SOURCES[max(0, self.ui.distillSourceComboBox.currentIndex)]

    def distillSourceModel(self):
        """The model to distil: the training's output model path, 'bundled', or the chosen file ('' if none)."""
        source = self.distillSource()
        if source == SOURCE_TRAINED:
            return self.ui.outputModelPathLineEdit.currentPath
        if source == SOURCE_MODEL:
            return self.ui.distillSourcePathLineEdit.currentPath
        return SOURCE_BUNDLED

    def distillSettings(self):
        return DistillSettings(
            iterations=self.ui.distillIterationsSpinBox.value,
            refine=self.ui.distillRefineSpinBox.value,
            learningRate=self.ui.distillLearningRateSpinBox.value,
            augment=self.ui.distillAugmentCheckBox.checked,
            device=DEVICES[max(0, self.ui.distillDeviceComboBox.currentIndex)],
            seed=self.ui.distillSeedSpinBox.value,
            checkpointEvery=self.ui.distillCheckpointEverySpinBox.value,
        )

    def onStepChanged(self, *unused):
        """Show the sections of the chosen step: atlas, model, settings and advanced for training; the
        distillation section (and the cohort) for distilling."""
        distill = self.isDistillStep()
        for widget in (
            self.ui.atlasVolumeLabel,
            self.ui.atlasVolumeSelector,
            self.ui.atlasSegmentationLabel,
            self.ui.atlasSegmentationSelector,
            self.ui.modelCollapsibleButton,
            self.ui.settingsCollapsibleButton,
            self.ui.advancedCollapsibleButton,
        ):
            widget.visible = not distill
        self.ui.distillCollapsibleButton.visible = distill
        self.ui.inputsCollapsibleButton.text = "Cohort" if distill else "Atlas and cohort"
        self.ui.stepExplanationLabel.text = DISTILL_EXPLANATION if distill else TRAIN_EXPLANATION
        self.ui.startButton.text = "Start distillation" if distill else "Start training"
        self.updateButtons()

    # The fine-tuning recipe
    def isFineTuneRecipe(self):
        """True when the settings are the fine-tuning recipe's and the training starts from a model."""
        settings = self.settings()
        return self.startFrom() != START_SCRATCH and all(
            abs(float(getattr(settings, name)) - float(value)) < 1e-12 for name, value in FINE_TUNE_RECIPE.items()
        )

    def onRecipeChosen(self, index):
        """Fine-tune: set the recipe's values (and start from the bundled model rather than from scratch).
        Custom: open the settings."""
        if index == RECIPE_FINE_TUNE:
            self.ui.iterationsSpinBox.value = FINE_TUNE_RECIPE["iterations"]
            self.ui.learningRateSpinBox.value = FINE_TUNE_RECIPE["learningRate"]
            self.ui.teachSpinBox.value = FINE_TUNE_RECIPE["teach"]
            self.ui.augmentCheckBox.checked = FINE_TUNE_RECIPE["augment"]
            if self.startFrom() == START_SCRATCH:
                self.ui.startFromComboBox.currentIndex = START_CHOICES.index(START_BUNDLED)
        else:
            self.ui.settingsCollapsibleButton.collapsed = False
        self.updateButtons()

    # State of the widgets
    def speedKey(self):
        """What the speed of a training depends on most: device, grid and atlas; of a distillation: device and
        model."""
        if self.isDistillStep():
            return ("distill", self.distillSettings().device, self.distillSourceModel())
        atlas = self.ui.atlasVolumeSelector.currentNode()
        settings = self.settings()
        return (settings.device, settings.grid, atlas.GetName() if atlas is not None else "")

    def blockingProblem(self):
        """Why Start cannot run with these settings ('' when it can)."""
        if self.isDistillStep():
            return self.distillProblem()
        settings = self.settings()
        if settings.teach > 0 and settings.augment:
            return (
                "Teaching and augmentation exclude each other (a scan's refined map would not fit its augmented "
                "copies): set the teaching weight to 0 or switch augmentation off (Advanced)."
            )
        return ""

    def distillProblem(self):
        """What the distillation still needs ('' when Start can run; the logic checks the files themselves)."""
        if not self.distillSourceModel():
            if self.distillSource() == SOURCE_TRAINED:
                return "Choose the training's output model (Model section of the training step) or another source."
            return "Choose the model file to distil."
        if not (self.cohortVolumes() or self.cohortFiles()):
            return "Choose the cohort: volumes in the scene and/or a folder of scans."
        if not self.ui.distillOutputPathLineEdit.currentPath:
            return "Choose where the distilled model is saved (.pt)."
        return ""

    def outputModelPath(self):
        """The output model file of the chosen step."""
        if self.isDistillStep():
            return self.ui.distillOutputPathLineEdit.currentPath
        return self.ui.outputModelPathLineEdit.currentPath

    def updateButtons(self, *unused):
        running = self.job is not None and self.job.isRunning
        distill = self.isDistillStep()
        ready = distill or bool(
            self.ui.atlasVolumeSelector.currentNode()
            and self.ui.atlasSegmentationSelector.currentNode()
            and (self.cohortVolumes() or self.cohortFiles())
            and self.ui.outputModelPathLineEdit.currentPath
        )
        problem = self.blockingProblem()
        self.labelChoices()
        self.ui.recipeComboBox.currentIndex = RECIPE_FINE_TUNE if self.isFineTuneRecipe() else RECIPE_CUSTOM
        self.ui.initModelPathLineEdit.enabled = self.startFrom() == START_MODEL
        self.ui.distillSourcePathLineEdit.enabled = self.distillSource() == SOURCE_MODEL
        what = "distillation" if distill else "training"
        self.ui.startButton.enabled = ready and not running and not problem
        self.ui.startButton.toolTip = problem or f"Start a {what} in a background process (Slicer stays usable)."
        self.ui.resumeButton.enabled = ready and not running and not problem and os.path.isfile(self.outputModelPath())
        self.ui.cancelButton.enabled = running
        self.ui.showPlotButton.enabled = self.job is not None
        for widget in (
            self.ui.stepComboBox,
            self.ui.inputsCollapsibleButton,
            self.ui.modelCollapsibleButton,
            self.ui.settingsCollapsibleButton,
            self.ui.advancedCollapsibleButton,
            self.ui.distillCollapsibleButton,
        ):
            widget.enabled = not running
        self.updateTimeText()

    def updateTimeText(self):
        """The time line: the estimate before a training, the ETA (bold) while it runs, the time it took after."""
        if self.job is not None and self.job.isRunning:
            eta = self.job.etaSeconds
            speed = self.job.secondsPerIteration
            if eta is None:
                text = "ETA: measured during the first iterations..."
            else:
                text = f"<b>ETA {formatDuration(eta)}</b> ({speed:.2g} s per iteration on this computer)"
        else:
            if self.isDistillStep():
                text = self.speeds.estimateText(
                    self.speedKey(),
                    self.ui.distillIterationsSpinBox.value,
                    "distillation with this device and model",
                    TYPICAL_DISTILL_SPEED,
                )
            else:
                text = self.speeds.estimateText(self.speedKey(), self.ui.iterationsSpinBox.value)
            if self.job is not None and self.job.status == COMPLETED and self.job.latestProgress.get("elapsed_s"):
                took = formatDuration(self.job.latestProgress["elapsed_s"])
                text = f"The last {self.job.name} took {took}. " + text
        self.ui.estimateLabel.text = text

    # Actions
    def appendLog(self, line):
        self.ui.logTextEdit.appendPlainText(line)

    def onStart(self, resume=False):
        distill = self.isDistillStep()
        what = "distillation" if distill else "training"
        with slicer.util.tryWithErrorDisplay(f"Failed to start the {what}.", waitCursor=True):
            if not ensureDependencies(slicer.util.confirmOkCancelDisplay, "LTNet Training"):
                return
            outputPath = self.outputModelPath()
            overwrite = False
            if not resume and os.path.exists(outputPath):
                if not slicer.util.confirmYesNoDisplay(
                    f"{outputPath} exists already. Overwrite it with a new {what}? (Resume continues it instead.)"
                ):
                    return
                overwrite = True
            outputLineEdit = self.ui.distillOutputPathLineEdit if distill else self.ui.outputModelPathLineEdit
            outputLineEdit.addCurrentPathToHistory()
            self.ui.logTextEdit.clear()
            self.jobSpeedKey = self.speedKey()
            cohort = self.cohortVolumes() + self.cohortFiles()
            if distill:
                self.job = self.logic.startDistillation(
                    self.distillSourceModel(),
                    cohort,
                    outputPath,
                    resume=resume,
                    overwrite=overwrite,
                    logCallback=self.appendLog,
                    settings=self.distillSettings(),
                )
            else:
                self.job = self.logic.start(
                    self.ui.atlasVolumeSelector.currentNode(),
                    self.ui.atlasSegmentationSelector.currentNode(),
                    cohort,
                    outputPath,
                    initModel=self.initModel(),
                    resume=resume,
                    overwrite=overwrite,
                    logCallback=self.appendLog,
                    settings=self.settings(),
                )
            self.ui.progressBar.value = 0
            self.ui.progressBar.format = "%p%"
            self.ui.statusLabel.text = self.job.statusText()
            self.onShowPlot()
            self.timer.start()
        self.updateButtons()

    def onCancel(self, *unused):
        if self.job is not None:
            self.ui.statusLabel.text = "Cancelling..."
            slicer.app.processEvents()
            self.job.cancel()
            self.onTimer()

    def onShowPlot(self, *unused):
        """Show the loss chart; after a scene close, a new chart with every row so far (LossPlot.showInScene)."""
        if self.job is not None:
            slicer.modules.plots.logic().ShowChartInLayout(self.job.lossPlot.showInScene())

    def onTimer(self):
        if self.job is None:
            self.timer.stop()
            return
        self.job.poll()
        self.speeds.record(self.jobSpeedKey, self.job.secondsPerIteration)
        self.ui.progressBar.value = int(round(1000 * self.job.fraction))
        eta = self.job.etaSeconds
        self.ui.progressBar.format = f"%p%  ETA {formatDuration(eta)}" if self.job.isRunning and eta else "%p%"
        self.ui.statusLabel.text = self.job.statusText()
        if not self.job.isRunning:
            self.timer.stop()
            if self.job.status == COMPLETED:
                self.appendLog(f"The model is offered in LTNetTransfer's model list ({len(recentModels())} recent).")
        self.updateButtons()

    def onSceneStartClose(self):
        """The scene is closing: a running training or distillation goes on (it reads files, writes the model
        file). Its loss plot nodes leave with the scene and are not written to any more; Show loss plot puts a new
        plot holding every row so far into the new scene."""

    def cleanup(self):
        """Stop polling; a training still running is cancelled (no orphan process)."""
        self.timer.stop()
        if self.job is not None and self.job.isRunning:
            self.job.cancel()
