"""The Qt side of the LTNetTransfer panel: reads the widgets, starts a job, polls it from a qt.QTimer, shows results.

Imported by the module's widget only (it needs qt and the Slicer application); everything it calls
below is Qt-free (`TransferLogic`, `TransferJob`, `display`). Widget names are those of
Resources/UI/LTNetTransfer.ui. MRML and Qt are touched from the main thread only: the child process
runs `ltnet`, and the timer polls its output files.
"""

import logging

import qt
import slicer
from LTNetCommonLib.dependencies import ensureDependencies

from .display import setOverlayOpacity, showCycleConsistency
from .errors import TransferError

POLL_INTERVAL_MS = 250


class TransferPanel:
    """Drives the widgets of the .ui (`ui`, from childWidgetVariables) with `logic` (an LTNetTransferLogic).

    parameterNode: a callable returning the module's current parameter node (device, prealign, refinement steps, atlas override).
    """

    def __init__(self, ui, logic, parameterNode):
        self.ui = ui
        self.logic = logic
        self.parameterNode = parameterNode
        self.job = None
        self.results = []
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.onTimer)
        self.ui.progressBar.setVisible(False)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.targetVolumesComboBox.connect("checkedNodesChanged()", self.updateButtons)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        self.ui.useDemoModelCheckBox.connect("toggled(bool)", self.updateButtons)
        for selector in (self.ui.atlasVolumeSelector, self.ui.atlasSegmentationSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.ui.recentModelsComboBox.connect("activated(int)", self.onRecentModelChosen)
        self.ui.showCycleButton.connect("clicked(bool)", self.onShowCycle)
        self.ui.mapComboBox.connect("currentIndexChanged(int)", self.onShowCycle)
        self.ui.resultComboBox.connect("currentIndexChanged(int)", self.onShowCycle)
        self.ui.opacitySliderWidget.connect(
            "valueChanged(double)", lambda value: setOverlayOpacity(slicer.mrmlScene, value)
        )
        gpu = self.logic.gpuDescription()
        self.ui.gpuLabel.text = f"GPU: {gpu}" if gpu else "No CUDA GPU found: the CPU is used."
        self.refreshRecentModels()
        self.updateButtons()

    # -- inputs --------------------------------------------------------------------------------
    def modelPath(self):
        if self.ui.useDemoModelCheckBox.checked:
            return self.logic.demoModelPath()
        return self.ui.modelPathLineEdit.currentPath

    def refreshRecentModels(self):
        """Fill the recent-models box from the list LTNet Training keeps (LTNetCommonLib.recentModels)."""
        choices = self.logic.recentModelChoices()
        comboBox = self.ui.recentModelsComboBox
        wasBlocked = comboBox.blockSignals(True)
        comboBox.clear()
        if choices:
            comboBox.addItem(f"Choose one of {len(choices)} model(s) trained in LTNet Training")
            for label, path in choices:
                comboBox.addItem(label, path)
        else:
            comboBox.addItem("None yet: models finished in LTNet Training appear here")
        comboBox.enabled = bool(choices)
        comboBox.setCurrentIndex(0)
        comboBox.blockSignals(wasBlocked)

    def onRecentModelChosen(self, index):
        path = self.ui.recentModelsComboBox.itemData(index)
        if not path:
            return
        self.ui.useDemoModelCheckBox.checked = False
        self.ui.modelPathLineEdit.currentPath = path
        self.updateButtons()

    def inputProblem(self):
        """Why Apply cannot start now, in the user's words, or "" when it can."""
        if not self.ui.targetVolumesComboBox.checkedNodes():
            return "Check at least one target volume."
        if not self.ui.useDemoModelCheckBox.checked and not self.ui.modelPathLineEdit.currentPath:
            return "Choose a model: the bundled demo model, a recent model or a model file."
        if (self.ui.atlasVolumeSelector.currentNode() is None) != (
            self.ui.atlasSegmentationSelector.currentNode() is None
        ):
            return "Atlas override: choose both an atlas volume and its segmentation, or neither."
        return ""

    def updateButtons(self, *unused):
        self.ui.modelPathLineEdit.enabled = not self.ui.useDemoModelCheckBox.checked
        if self.job is not None:  # running: the button is Cancel
            return
        problem = self.inputProblem()
        self.ui.applyButton.enabled = not problem
        self.ui.applyButton.toolTip = problem or "Transfer the atlas labels onto the checked target volume(s)."

    # -- running -------------------------------------------------------------------------------
    def onApplyButton(self, *unused):
        if self.job is not None:
            self.ui.statusLabel.text = "Cancelling..."
            self.job.cancel()  # the timer sees the end and resets the button
            return
        with slicer.util.tryWithErrorDisplay("Could not start the transfer.", waitCursor=True):
            if not ensureDependencies(slicer.util.confirmOkCancelDisplay, "LTNet Transfer"):
                self.ui.statusLabel.text = "The transfer needs PyTorch and a few Python packages."
                return
            parameters = self.parameterNode()
            self.ui.logTextEdit.clear()
            self.job = self.logic.start(
                self.modelPath(),
                self.ui.targetVolumesComboBox.checkedNodes(),
                device=parameters.device,
                prealign=parameters.prealign,
                refineSteps=parameters.refineSteps,
                atlasVolumeNode=parameters.atlasVolume,
                atlasSegmentationNode=parameters.atlasSegmentation,
            )
            self.ui.applyButton.text = "Cancel"
            self.ui.applyButton.toolTip = "Stop the transfer (kills the ltnet process and its children)."
            self.ui.applyButton.enabled = True
            self.ui.progressBar.setVisible(True)
            self.ui.progressBar.maximum = 100 if self.job.progress.total > 1 else 0  # one target: busy
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = self.job.progress.message
            self.timer.start()

    def onTimer(self):
        job = self.job
        if job is None:
            self.timer.stop()
            return
        try:
            finished = job.poll()
        except Exception as error:  # keep the timer from firing into a broken job
            logging.exception("LTNet transfer polling failed")
            job.cancel()
            job.state, job.error = "failed", str(error)
            finished = True
        self.ui.progressBar.value = int(100 * job.progress.fraction)
        self.ui.statusLabel.text = job.progress.message
        if not finished:
            return
        self.timer.stop()
        self.job = None
        self.ui.applyButton.text = "Apply"
        self.ui.progressBar.setVisible(False)
        self.updateButtons()
        if job.state == "cancelled":
            self.logic.cleanUp(job)
            self.ui.statusLabel.text = "Cancelled."
            return
        try:
            with slicer.util.WaitCursor():
                results = self.logic.loadResults(job)
        except TransferError as error:
            self.ui.statusLabel.text = f"Failed: {error}"
            if error.details:
                logging.error(error.details)
            slicer.util.errorDisplay(f"Transfer failed: {error}", detailedText=error.details or None)
            return
        self.showResults(results)

    def showResults(self, results):
        self.results = results
        verdicts = ", ".join(f"{r.targetVolumeNode.GetName()}: {r.verdict or '?'}" for r in results)
        self.ui.statusLabel.text = f"Done. QC verdict: {verdicts}."
        self.ui.qualityCollapsibleButton.enabled = True
        self.ui.qcTableView.setMRMLTableNode(results[0].qcTableNode)
        wasBlocked = self.ui.resultComboBox.blockSignals(True)
        self.ui.resultComboBox.clear()
        for result in results:
            self.ui.resultComboBox.addItem(result.targetVolumeNode.GetName())
        self.ui.resultComboBox.blockSignals(wasBlocked)
        first = results[0]
        slicer.util.setSliceViewerLayers(background=first.targetVolumeNode, foreground=None, fit=True)
        first.segmentationNode.GetDisplayNode().SetViewNodeIDs([])

    def onShowCycle(self, *unused):
        index = self.ui.resultComboBox.currentIndex
        if not self.results or index < 0 or index >= len(self.results):
            return
        scalarMap = "jacobian" if self.ui.mapComboBox.currentIndex == 0 else "inverse_consistency"
        shown = showCycleConsistency(self.results[index], self.ui.opacitySliderWidget.value, scalarMap)
        layoutManager = slicer.app.layoutManager()
        for viewName in shown:
            layoutManager.sliceWidget(viewName).sliceLogic().FitSliceToAll()

    def appendLog(self, message):
        self.ui.logTextEdit.appendPlainText(message)
        logging.info(message)

    # -- scene and module life -----------------------------------------------------------------
    def onSceneStartClose(self):
        """The scene is closing: stop a running transfer and forget results that point into it."""
        if self.job is not None:
            self.job.cancel()
            self.onTimer()
        self.results = []
        self.ui.resultComboBox.clear()
        self.ui.qualityCollapsibleButton.enabled = False

    def cleanup(self):
        """The module is closing: stop polling; a transfer still running is cancelled (no orphan process)."""
        self.timer.stop()
        if self.job is not None:
            self.job.cancel()
            self.logic.cleanUp(self.job)
            self.job = None
