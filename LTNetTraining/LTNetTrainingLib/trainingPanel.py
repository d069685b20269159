"""The Qt side of the LTNetTraining panel: reads the widgets, starts a job, polls it from a qt.QTimer.

Imported by the module's widget only (it needs qt and the Slicer application).
Widget names are those of Resources/UI/LTNetTraining.ui.
"""

import os

import qt
import slicer
from LTNetCommonLib.dependencies import ensureDependencies
from LTNetCommonLib.recentModels import recentModels

from .cohortFiles import scanCohortFolder
from .trainingJob import COMPLETED, formatDuration
from .trainingSettings import DEVICES, START_BUNDLED, START_MODEL, START_SCRATCH, TOOLTIPS, TrainingSettings

START_CHOICES = (START_BUNDLED, START_MODEL, START_SCRATCH)  # order of startFromComboBox items
POLL_INTERVAL_MS = 500


class TrainingPanel:
    """Drives the widgets of the .ui (`ui`, from childWidgetVariables) with `logic` (a TrainingLogic)."""

    def __init__(self, ui, logic):
        self.ui = ui
        self.logic = logic
        self.job = None
        self.cohortScan = None
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.onTimer)
        self.setTooltips()
        self.ui.deviceComboBox.setToolTip(TOOLTIPS["device"])
        self.ui.startButton.connect("clicked(bool)", lambda checked=False: self.onStart(resume=False))
        self.ui.resumeButton.connect("clicked(bool)", lambda checked=False: self.onStart(resume=True))
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.showPlotButton.connect("clicked(bool)", self.onShowPlot)
        self.ui.cohortFolderPathLineEdit.connect("currentPathChanged(QString)", self.onCohortFolderChanged)
        self.ui.cohortVolumesSelector.connect("checkedNodesChanged()", self.updateCohortCount)
        self.ui.startFromComboBox.connect("currentIndexChanged(int)", self.updateButtons)
        for widget in (self.ui.atlasVolumeSelector, self.ui.atlasSegmentationSelector):
            widget.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.ui.initModelPathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        self.ui.outputModelPathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        if not self.ui.outputModelPathLineEdit.currentPath:
            self.ui.outputModelPathLineEdit.currentPath = os.path.join(
                slicer.app.defaultScenePath, "LTNet", "ltnet_model.pt"
            )
        self.onCohortFolderChanged(self.ui.cohortFolderPathLineEdit.currentPath)

    def setTooltips(self):
        for name, widget in [
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
            ("seed", self.ui.seedSpinBox),
            ("checkpointEvery", self.ui.checkpointEverySpinBox),
        ]:
            widget.setToolTip(TOOLTIPS[name])

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
            diffeomorphic=self.ui.diffeomorphicCheckBox.checked,
            prealign=self.ui.prealignCheckBox.checked,
            device=DEVICES[max(0, self.ui.deviceComboBox.currentIndex)],
            seed=self.ui.seedSpinBox.value,
            checkpointEvery=self.ui.checkpointEverySpinBox.value,
        )

    def updateButtons(self, *unused):
        running = self.job is not None and self.job.isRunning
        ready = bool(
            self.ui.atlasVolumeSelector.currentNode()
            and self.ui.atlasSegmentationSelector.currentNode()
            and (self.cohortVolumes() or self.cohortFiles())
            and self.ui.outputModelPathLineEdit.currentPath
        )
        self.ui.initModelPathLineEdit.enabled = self.startFrom() == START_MODEL
        self.ui.startButton.enabled = ready and not running
        self.ui.resumeButton.enabled = (
            ready and not running and os.path.isfile(self.ui.outputModelPathLineEdit.currentPath)
        )
        self.ui.cancelButton.enabled = running
        self.ui.showPlotButton.enabled = self.job is not None
        for widget in (
            self.ui.inputsCollapsibleButton,
            self.ui.modelCollapsibleButton,
            self.ui.settingsCollapsibleButton,
        ):
            widget.enabled = not running

    # Actions
    def appendLog(self, line):
        self.ui.logTextEdit.appendPlainText(line)

    def onStart(self, resume=False):
        with slicer.util.tryWithErrorDisplay("Failed to start the training.", waitCursor=True):
            if not ensureDependencies(slicer.util.confirmOkCancelDisplay, "LTNet Training"):
                return
            outputPath = self.ui.outputModelPathLineEdit.currentPath
            overwrite = False
            if not resume and os.path.exists(outputPath):
                if not slicer.util.confirmYesNoDisplay(
                    f"{outputPath} exists already. Overwrite it with a new training? (Resume continues it instead.)"
                ):
                    return
                overwrite = True
            self.ui.outputModelPathLineEdit.addCurrentPathToHistory()
            self.ui.logTextEdit.clear()
            self.job = self.logic.start(
                self.ui.atlasVolumeSelector.currentNode(),
                self.ui.atlasSegmentationSelector.currentNode(),
                self.cohortVolumes() + self.cohortFiles(),
                self.ui.outputModelPathLineEdit.currentPath,
                initModel=self.initModel(),
                resume=resume,
                overwrite=overwrite,
                logCallback=self.appendLog,
                settings=self.settings(),
            )
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = self.job.statusText()
            self.onShowPlot()
            self.timer.start()
        self.updateButtons()

    def onCancel(self):
        if self.job is not None:
            self.ui.statusLabel.text = "Cancelling..."
            slicer.app.processEvents()
            self.job.cancel()
            self.onTimer()

    def onShowPlot(self):
        if self.job is not None:
            slicer.modules.plots.logic().ShowChartInLayout(self.job.chartNode)

    def onTimer(self):
        if self.job is None:
            self.timer.stop()
            return
        self.job.poll()
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
        """The scene is closing: a running training goes on (it reads files, writes the model file); its loss
        plot nodes leave with the scene, so the plot shows nothing new until the next training."""

    def cleanup(self):
        """Stop polling; a training still running is cancelled (no orphan process)."""
        self.timer.stop()
        if self.job is not None and self.job.isRunning:
            self.job.cancel()
