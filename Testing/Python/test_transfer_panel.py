"""The Qt side of LTNetTransfer (LTNetTransferLib.transferPanel) driven with stand-ins for Qt widgets:
Apply turns into Cancel while a job runs, the timer polls, Cancel kills the child and brings Apply back,
a failure is shown in a message (and leaves no work folder), an incomplete atlas override keeps Apply disabled,
progress moves within a target, the results list is worst first and choosing a row shows exactly that result,
and the refinement steps follow the device."""

import importlib
import sys
import types

import pytest

slicer = pytest.importorskip("slicer")

import numpy as np  # noqa: E402
from fakes import FakeChild, FakeQtWidget, FakeTransferLauncher  # noqa: E402
from fakes import FakeQtTimer as FakeTimer  # noqa: E402
from LTNetTransferLib import TransferLogic  # noqa: E402
from LTNetTransferLib.job import TransferJob  # noqa: E402


class FakeWidget(FakeQtWidget):
    """`fakes.FakeQtWidget` with what the transfer panel also uses: combo items with data, visibility, a
    QTableWidget's cells and headers."""

    def __init__(self, **properties):
        super().__init__()
        self.currentText, self.collapsed, self.cells, self.headers, self.rowCount = "auto", True, {}, [], 0
        self.visible, self.maximum = True, 100
        self.__dict__.update(properties)

    def setVisible(self, visible):
        self.visible = visible

    def blockSignals(self, block):
        return False

    def clear(self):
        self.items, self.lines = [], []

    def addItem(self, text, data=None):
        self.items.append((text, data))

    def itemData(self, index):
        return self.items[index][1]

    def setCurrentIndex(self, index):
        self.currentIndex = index

    def appendPlainText(self, line):
        self.lines.append(line)

    def setMRMLTableNode(self, node):
        self.tableNode = node

    # QTableWidget
    def setColumnCount(self, count):
        self.headers = [FakeItem("") for _ in range(count)]

    def setRowCount(self, count):
        self.rowCount, self.cells = count, {}

    def setHorizontalHeaderLabels(self, labels):
        for item, label in zip(self.headers, labels):
            item.text = label

    def horizontalHeaderItem(self, column):
        return self.headers[column]

    def setItem(self, row, column, item):
        self.cells[row, column] = item

    def setCurrentCell(self, row, column):
        self.currentRow = row


class FakeItem:
    """A QTableWidgetItem: text, tooltip, background color."""

    def __init__(self, text):
        self.text, self.toolTip, self.background = text, "", None

    def setToolTip(self, text):
        self.toolTip = text

    def setFlags(self, flags):
        pass

    def setBackground(self, brush):
        self.background = brush


class FakeLayoutManager:
    def sliceWidget(self, name):
        logic = types.SimpleNamespace(FitSliceToAll=lambda: None)
        return types.SimpleNamespace(sliceLogic=lambda: logic)


class FakeLogic:
    """LTNetTransferLogic's surface used by the panel, with a fake child process."""

    def __init__(self, child):
        self.child, self.started, self.cleaned = child, [], []

    def demoModelPath(self):
        return "/demo_model.pt"

    def gpuDescription(self):
        return None

    def recentModelChoices(self):
        return [("trained.pt (/models)", "/models/trained.pt")]

    def start(self, modelPath, targets, **options):
        self.started.append((modelPath, targets, options))
        return TransferJob(
            lambda arguments, folder: self.child,
            ["transfer"],
            self.folder,
            targets,
            [None] * len(targets),
            lambda message: None,
        )

    def loadResults(self, job):
        job.raiseIfFailed()
        return []

    def cleanUp(self, job):
        self.cleaned.append(job)


@pytest.fixture
def panelClass(monkeypatch):
    fakeQt = types.ModuleType("qt")
    fakeQt.QTimer = FakeTimer
    fakeQt.QTableWidgetItem = FakeItem
    fakeQt.QColor = lambda *rgb: tuple(rgb)
    fakeQt.QBrush = lambda color: color
    fakeQt.Qt = types.SimpleNamespace(WaitCursor=3, ItemIsSelectable=1, ItemIsEnabled=32)
    fakeQt.QApplication = types.SimpleNamespace(
        setOverrideCursor=lambda cursor: None, restoreOverrideCursor=lambda: None
    )
    monkeypatch.setitem(sys.modules, "qt", fakeQt)
    monkeypatch.setattr(
        slicer,
        "app",
        types.SimpleNamespace(
            setOverrideCursor=lambda cursor: None,
            restoreOverrideCursor=lambda: None,
            testingEnabled=lambda: False,
            processEvents=lambda: None,
            layoutManager=lambda: FakeLayoutManager(),
        ),
        raising=False,
    )
    errors = []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, **keywords: errors.append(text))
    sys.modules.pop("LTNetTransferLib.transferPanel", None)
    module = importlib.import_module("LTNetTransferLib.transferPanel")
    yield module.TransferPanel, errors
    sys.modules.pop("LTNetTransferLib.transferPanel", None)


def makePanel(panelClass, logic, scene, tmp_path):
    target = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "scan")
    names = [
        "progressBar",
        "applyButton",
        "targetVolumesComboBox",
        "modelPathLineEdit",
        "useDemoModelCheckBox",
        "atlasVolumeSelector",
        "atlasSegmentationSelector",
        "recentModelsComboBox",
        "showCycleButton",
        "mapComboBox",
        "resultsTableWidget",
        "labelDiceTableWidget",
        "outputSegmentationSelector",
        "qcVolumesCheckBox",
        "show3DCheckBox",
        "exportLabelMapButton",
        "childLabel",
        "deviceComboBox",
        "refineStepsSpinBox",
        "opacitySliderWidget",
        "gpuLabel",
        "statusLabel",
        "logTextEdit",
        "qualityCollapsibleButton",
        "qcTableView",
    ]
    ui = types.SimpleNamespace(**{name: FakeWidget() for name in names})
    ui.useDemoModelCheckBox.checked = True
    ui.refineStepsSpinBox.value = 3
    ui.opacitySliderWidget.value = 0.5
    ui.targetVolumesComboBox.checked_nodes = [target, scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "b")]
    parameters = types.SimpleNamespace(
        device="cpu", prealign=False, refineSteps=20, atlasVolume=None, atlasSegmentation=None
    )
    logic.folder = tmp_path
    return panelClass(ui, logic, lambda: parameters), ui


def test_apply_becomes_cancel_and_cancel_brings_apply_back(panelClass, scene, tmp_path):
    TransferPanel, errors = panelClass
    child = FakeChild(['{"event": "progress", "done": 1, "total": 2, "target": "scan"}'], code=None)
    logic = FakeLogic(child)
    panel, ui = makePanel(TransferPanel, logic, scene, tmp_path)
    assert ui.applyButton.enabled and ui.applyButton.text == ""
    assert ui.recentModelsComboBox.enabled and ui.recentModelsComboBox.items[1][1] == "/models/trained.pt"

    ui.applyButton.emit("clicked(bool)", False)
    assert logic.started[0][0] == "/demo_model.pt" and logic.started[0][2]["device"] == "cpu"
    assert logic.started[0][2]["refineSteps"] == 20
    assert ui.applyButton.text == "Cancel" and ui.applyButton.enabled and panel.timer.active
    panel.timer.fire()
    assert ui.progressBar.value == 50 and ui.statusLabel.text == "Target 2 of 2: b..."
    ui.useDemoModelCheckBox.checked = False
    panel.updateButtons()
    assert ui.applyButton.enabled, "while running, the button stays Cancel whatever the inputs"

    ui.applyButton.emit("clicked(bool)", False)  # Cancel
    assert child.killed
    panel.timer.fire()
    assert not panel.timer.active and panel.job is None and logic.cleaned
    assert ui.applyButton.text == "Apply" and ui.statusLabel.text == "Cancelled." and not errors


def test_a_failed_run_is_shown_in_a_message(panelClass, scene, tmp_path):
    TransferPanel, errors = panelClass
    logic = FakeLogic(FakeChild(code=2, stderr="ltnet: error: m.pt: not an LTNet model; choose another file."))
    panel, ui = makePanel(TransferPanel, logic, scene, tmp_path)
    ui.applyButton.emit("clicked(bool)", False)
    panel.timer.fire()
    assert ui.applyButton.text == "Apply" and not panel.timer.active
    assert errors == ["Transfer failed: m.pt: not an LTNet model; choose another file."]
    assert ui.statusLabel.text.startswith("Failed:")


def test_incomplete_inputs_keep_apply_disabled_with_the_reason(panelClass, scene, tmp_path):
    TransferPanel, _ = panelClass
    panel, ui = makePanel(TransferPanel, FakeLogic(FakeChild(code=None)), scene, tmp_path)
    ui.atlasVolumeSelector.node = ui.targetVolumesComboBox.checked_nodes[0]
    ui.atlasVolumeSelector.emit("currentNodeChanged(vtkMRMLNode*)", ui.atlasVolumeSelector.node)
    assert not ui.applyButton.enabled and "Atlas override" in ui.applyButton.toolTip
    ui.atlasVolumeSelector.node = None
    ui.useDemoModelCheckBox.checked = False
    panel.updateButtons()
    assert not ui.applyButton.enabled and "Choose a model" in ui.applyButton.toolTip
    ui.recentModelsComboBox.emit("activated(int)", 1)
    assert ui.modelPathLineEdit.currentPath == "/models/trained.pt" and ui.applyButton.enabled
    ui.targetVolumesComboBox.checked_nodes = []
    panel.updateButtons()
    assert not ui.applyButton.enabled and "target volume" in ui.applyButton.toolTip


def test_progress_moves_within_a_target_and_the_child_report_is_shown(panelClass, scene, tmp_path):
    TransferPanel, _ = panelClass
    lines = [
        '{"event": "start", "torch": "2.13.0+cpu", "cuda": null, "device": "cpu", "precision": "float32"}',
        '{"event": "stage", "target": "x", "index": 1, "total": 2, "stage": "prealign", "step": 1, "steps": 1}',
        '{"event": "stage", "target": "x", "index": 1, "total": 2, "stage": "refine", "step": 3, "steps": 5}',
        '{"event": "progress", "done": 1, "total": 2, "target": "x"}',
        '{"event": "stage", "target": "y", "index": 2, "total": 2, "stage": "network", "step": 1, "steps": 1}',
    ]
    logic = FakeLogic(FakeChild(lines, code=None))
    panel, ui = makePanel(TransferPanel, logic, scene, tmp_path)
    ui.applyButton.emit("clicked(bool)", False)
    seen = []
    for _ in lines:
        panel.timer.fire()
        seen.append((ui.progressBar.value, ui.statusLabel.text))
    assert ui.childLabel.text.startswith("Running on CPU") and "torch 2.13.0+cpu" in ui.childLabel.text
    assert panel.job.childReport["precision"] == "float32"
    assert seen[1] == (0, "Target 1 of 2 (scan): affine pre-alignment...")
    assert seen[2] == (26, "Target 1 of 2 (scan): refinement step 3 of 5...")  # (0.35 + 0.45 * 2/5) / 2
    assert seen[3][0] == 50 and seen[4] == (57, "Target 2 of 2 (b): network...")
    assert [value for value, _ in seen] == sorted(value for value, _ in seen)


class RealLogic(TransferLogic):
    """The real Qt-free logic with the module logic's extra surface, and a stand-in child (fakes.py)."""

    def demoModelPath(self):
        return str(self.model)

    def gpuDescription(self):
        return None

    def recentModelChoices(self):
        return []


def realPanel(panelClass, scene, tmp_path, launcher, names=("first", "second")):
    TransferPanel, errors = panelClass
    model = tmp_path / "model.pt"
    model.write_bytes(b"stand-in")
    logic = RealLogic(launcher)
    logic.model = model
    panel, ui = makePanel(TransferPanel, FakeLogic(None), scene, tmp_path)
    panel.logic = logic
    ui.targetVolumesComboBox.checked_nodes = [
        slicer.util.addVolumeFromArray(np.random.default_rng(1).random((10, 12, 14)).astype(np.float32), name=name)
        for name in names
    ]
    return panel, ui, errors


def runToEnd(panel, ui):
    ui.applyButton.emit("clicked(bool)", False)
    job = panel.job
    for _ in range(100):
        if panel.job is None:
            break
        panel.timer.fire()
    return job


def test_a_failed_child_leaves_no_work_folder(panelClass, scene, tmp_path):
    launcher = FakeTransferLauncher(code=2, stderr="ltnet: error: model.pt: not an LTNet model.\n")
    panel, ui, errors = realPanel(panelClass, scene, tmp_path, launcher)
    job = runToEnd(panel, ui)
    assert errors == ["Transfer failed: model.pt: not an LTNet model."]
    assert not job.workFolder.exists()


def add_slice_views(scene):
    for name in ("Red", "Yellow", "Green"):
        scene.AddNewNodeByClass("vtkMRMLSliceNode").SetLayoutName(name)
        scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode").SetLayoutName(name)


def composite(scene, name):
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLSliceCompositeNode")
        if node.GetLayoutName() == name:
            return node


def visible(segmentationNode):
    return bool(segmentationNode.GetDisplayNode().GetVisibility())


def test_results_are_listed_worst_first_and_choosing_one_shows_exactly_it(panelClass, scene, tmp_path):
    add_slice_views(scene)
    panel, ui, errors = realPanel(panelClass, scene, tmp_path, FakeTransferLauncher(scores=(0.97, 0.5)))
    ui.qcVolumesCheckBox.checked = True
    job = runToEnd(panel, ui)
    assert not errors and not job.workFolder.exists()
    first, second = panel.results
    table = ui.resultsTableWidget
    assert [table.cells[row, 0].text for row in range(2)] == ["second", "first"]  # likely failed before OK
    assert table.cells[0, 1].text == "likely failed" and table.cells[0, 1].background == (220, 60, 50)
    assert table.cells[1, 1].background == (60, 170, 75)
    assert [header.text for header in table.headers] == ["Target", "Verdict", "Score", "Cycle Dice"]
    assert all(header.toolTip for header in table.headers)
    assert visible(second.segmentationNode) and composite(scene, "Red").GetForegroundVolumeID() == (
        second.warpedAtlasNode.GetID()
    )
    assert ui.labelDiceTableWidget.cells[0, 0].text == "Posterior hippocampus (2)"  # lowest cycle Dice first

    table.emit("currentCellChanged(int,int,int,int)", 1, 0, 0, 0)  # the user picks "first"
    assert visible(first.segmentationNode) and visible(first.reconstructedSegmentationNode)
    assert not visible(second.segmentationNode) and not visible(second.reconstructedSegmentationNode)
    assert composite(scene, "Red").GetForegroundVolumeID() == first.warpedAtlasNode.GetID()
    assert composite(scene, "Green").GetForegroundVolumeID() == first.jacobianNode.GetID()

    ui.show3DCheckBox.checked = True
    ui.show3DCheckBox.emit("toggled(bool)", True)
    assert first.segmentationNode.GetDisplayNode().GetVisibility3D()
    ui.exportLabelMapButton.emit("clicked(bool)", False)
    labelMaps = scene.GetNodesByClass("vtkMRMLLabelMapVolumeNode")
    assert labelMaps.GetNumberOfItems() == 1 and labelMaps.GetItemAsObject(0).GetName() == "first LTNet label map"


def test_refinement_steps_follow_the_device_unless_the_user_chose_them(panelClass, scene, tmp_path):
    TransferPanel, _ = panelClass
    panel, ui = makePanel(TransferPanel, FakeLogic(FakeChild(code=None)), scene, tmp_path)
    assert ui.refineStepsSpinBox.value == 3  # auto without a GPU: the CPU's
    ui.deviceComboBox.currentText = "cuda"
    ui.deviceComboBox.emit("currentIndexChanged(int)", 2)
    assert ui.refineStepsSpinBox.value == 20
    ui.deviceComboBox.currentText = "cpu"
    ui.deviceComboBox.emit("currentIndexChanged(int)", 1)
    assert ui.refineStepsSpinBox.value == 3
    ui.refineStepsSpinBox.value = 7
    ui.deviceComboBox.currentText = "cuda"
    ui.deviceComboBox.emit("currentIndexChanged(int)", 2)
    assert ui.refineStepsSpinBox.value == 7
