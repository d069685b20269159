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
from LTNetCommonLib.torchReport import describeTorchStart

from . import qcView
from .command import recommendedRefineSteps
from .display import hideResult, setOverlayOpacity, showResult
from .errors import TransferError
from .logic import exportResultLabelMap
from .outputs import setShow3D

POLL_INTERVAL_MS = 250


class TransferPanel:
    """Drives the widgets of the .ui (`ui`, from childWidgetVariables) with `logic` (an LTNetTransferLogic).

    parameterNode: a callable returning the module's current parameter node (device, prealign, refinement
    steps, atlas override).
    """

    def __init__(self, ui, logic, parameterNode):
        self.ui = ui
        self.logic = logic
        self.parameterNode = parameterNode
        self.job = None
        self.results = []
        self.rows = []  # qcView.ResultRow per line of the results table, worst first
        self.shownIndex = None  # index in self.results of the result shown in the views
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self.onTimer)
        self.ui.progressBar.setVisible(False)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.targetVolumesComboBox.connect("checkedNodesChanged()", self.updateButtons)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.updateButtons)
        self.ui.useDemoModelCheckBox.connect("toggled(bool)", self.updateButtons)
        for selector in (
            self.ui.atlasVolumeSelector,
            self.ui.atlasSegmentationSelector,
            self.ui.outputSegmentationSelector,
        ):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.ui.recentModelsComboBox.connect("activated(int)", self.onRecentModelChosen)
        self.ui.showCycleButton.connect("clicked(bool)", self.onShowCycle)
        self.ui.mapComboBox.connect("currentIndexChanged(int)", self.onShowCycle)
        self.ui.resultsTableWidget.connect("currentCellChanged(int,int,int,int)", self.onResultRowChanged)
        self.ui.show3DCheckBox.connect("toggled(bool)", self.onShow3D)
        self.ui.exportLabelMapButton.connect("clicked(bool)", self.onExportLabelMap)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.followRecommendedRefineSteps)
        self.ui.opacitySliderWidget.connect(
            "valueChanged(double)", lambda value: setOverlayOpacity(slicer.mrmlScene, value)
        )
        gpu = self.logic.gpuDescription()
        self.gpuFound = bool(gpu)
        self.ui.gpuLabel.text = f"GPU: {gpu}" if gpu else "No CUDA GPU found: the CPU is used."
        self.recommendedRefineSteps = recommendedRefineSteps("cpu", False)  # the parameter node's default
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
        if self.ui.outputSegmentationSelector.currentNode() is not None and (
            len(self.ui.targetVolumesComboBox.checkedNodes()) > 1
        ):
            return "An existing output segmentation takes one target: check one, or choose Create new."
        return ""

    def followRecommendedRefineSteps(self, *unused):
        """Set the refinement steps to the device's recommendation, unless the user chose another number."""
        recommended = recommendedRefineSteps(self.ui.deviceComboBox.currentText, self.gpuFound)
        if self.ui.refineStepsSpinBox.value == self.recommendedRefineSteps:
            self.ui.refineStepsSpinBox.value = recommended
        self.recommendedRefineSteps = recommended

    def updateButtons(self, *unused):
        self.ui.modelPathLineEdit.enabled = not self.ui.useDemoModelCheckBox.checked
        self.followRecommendedRefineSteps()
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
            self.ui.childLabel.text = ""
            self.job = self.logic.start(
                self.modelPath(),
                self.ui.targetVolumesComboBox.checkedNodes(),
                device=parameters.device,
                prealign=parameters.prealign,
                refineSteps=parameters.refineSteps,
                atlasVolumeNode=parameters.atlasVolume,
                atlasSegmentationNode=parameters.atlasSegmentation,
                qcVolumes=self.ui.qcVolumesCheckBox.checked,
                outputSegmentationNode=self.ui.outputSegmentationSelector.currentNode(),
            )
            self.ui.applyButton.text = "Cancel"
            self.ui.applyButton.toolTip = "Stop the transfer (kills the ltnet process and its children)."
            self.ui.applyButton.enabled = True
            self.ui.progressBar.setVisible(True)
            self.ui.progressBar.maximum = 100  # moves within a target too, as its stages are reported
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
        if job.childReport and not self.ui.childLabel.text:
            report = describeTorchStart(job.childReport)
            self.ui.childLabel.text = report.status + (f"\n{report.warning}" if report.warning else "")
            if report.warning:
                logging.warning(report.warning)
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
        """The run's results in the quality-check section: the per-target list (worst first, verdict colored),
        the QC table; the worst target is selected and shown."""
        for old in self.results:  # a new run replaces what the views showed
            hideResult(old)
        self.results, self.shownIndex = results, None
        names = [result.targetVolumeNode.GetName() for result in results]
        self.rows = qcView.resultRows(names, [result.qc for result in results])
        counts = {}
        for row in self.rows:
            counts[row.verdict or "?"] = counts.get(row.verdict or "?", 0) + 1
        summary = ", ".join(f"{count} {verdict}" for verdict, count in counts.items())
        self.ui.statusLabel.text = f"Done: {len(results)} target(s), QC {summary}."
        self.ui.qualityCollapsibleButton.enabled = True
        self.ui.qualityCollapsibleButton.collapsed = False
        self.ui.qcTableView.setMRMLTableNode(results[0].qcTableNode)
        fillTable(
            self.ui.resultsTableWidget,
            qcView.RESULT_COLUMNS,
            [(row.cells(), row.color, row.tooltip) for row in self.rows],
        )
        wasBlocked = self.ui.resultsTableWidget.blockSignals(True)
        self.ui.resultsTableWidget.setCurrentCell(0, 0)  # the worst target, shown below
        self.ui.resultsTableWidget.blockSignals(wasBlocked)
        self.onResultRowChanged(0)

    def onResultRowChanged(self, row, *unused):
        if row is None or row < 0 or row >= len(self.rows):
            return
        self.showResultAt(self.rows[row].index)

    def showResultAt(self, index):
        """Show exactly `self.results[index]` in the views: its overlays, its per-label cycle Dice, 3-D if on."""
        if not self.results or index < 0 or index >= len(self.results):
            return
        self.shownIndex = index
        result = self.results[index]
        scalarMap = "jacobian" if self.ui.mapComboBox.currentIndex == 0 else "inverse_consistency"
        shown = showResult(self.results, index, self.ui.opacitySliderWidget.value, scalarMap)
        setShow3D(result.segmentationNode, self.ui.show3DCheckBox.checked)
        fillTable(
            self.ui.labelDiceTableWidget,
            qcView.LABEL_COLUMNS,
            [
                ([label, dice], qcView.verdictColor("check") if low else None, "")
                for label, dice, low in qcView.labelRows(result.qc)
            ],
        )
        self.ui.exportLabelMapButton.enabled = True
        if shown:
            layoutManager = slicer.app.layoutManager()
            for viewName in shown:
                layoutManager.sliceWidget(viewName).sliceLogic().FitSliceToAll()

    def onShowCycle(self, *unused):
        if self.shownIndex is not None:
            self.showResultAt(self.shownIndex)

    def onShow3D(self, checked):
        if self.shownIndex is not None:
            setShow3D(self.results[self.shownIndex].segmentationNode, bool(checked))

    def onExportLabelMap(self, *unused):
        if self.shownIndex is None:
            return
        with slicer.util.tryWithErrorDisplay("Could not export the label map.", waitCursor=True):
            labelMap = exportResultLabelMap(self.results[self.shownIndex])
            self.ui.statusLabel.text = f"Exported '{labelMap.GetName()}' (atlas label values and colors)."

    def appendLog(self, message):
        self.ui.logTextEdit.appendPlainText(message)
        logging.info(message)

    # -- scene and module life -----------------------------------------------------------------
    def onSceneStartClose(self):
        """The scene is closing: stop a running transfer and forget results that point into it."""
        if self.job is not None:
            self.job.cancel()
            self.onTimer()
        self.results, self.rows, self.shownIndex = [], [], None
        fillTable(self.ui.resultsTableWidget, qcView.RESULT_COLUMNS, [])
        fillTable(self.ui.labelDiceTableWidget, qcView.LABEL_COLUMNS, [])
        self.ui.qualityCollapsibleButton.enabled = False

    def cleanup(self):
        """The module is closing: stop polling; a transfer still running is cancelled (no orphan process)."""
        self.timer.stop()
        if self.job is not None:
            self.job.cancel()
            self.logic.cleanUp(self.job)
            self.job = None


def fillTable(tableWidget, columns, rows):
    """Fill a QTableWidget: columns [(header, tooltip)], rows [(cells, color (r, g, b) or None, tooltip)];
    a row's color paints its second cell (the verdict)."""
    tableWidget.clear()
    tableWidget.setColumnCount(len(columns))
    tableWidget.setRowCount(len(rows))
    tableWidget.setHorizontalHeaderLabels([header for header, _ in columns])
    for column, (_, tooltip) in enumerate(columns):
        tableWidget.horizontalHeaderItem(column).setToolTip(tooltip)
    for rowIndex, (cells, color, tooltip) in enumerate(rows):
        for column, text in enumerate(cells):
            item = qt.QTableWidgetItem(text)
            item.setFlags(qt.Qt.ItemIsSelectable | qt.Qt.ItemIsEnabled)
            if tooltip:
                item.setToolTip(tooltip)
            if color is not None and column == 1:
                item.setBackground(qt.QBrush(qt.QColor(*color)))
            tableWidget.setItem(rowIndex, column, item)
