"""The Qt side of LTNetTransfer (LTNetTransferLib.transferPanel) driven with stand-ins for Qt widgets:
Apply turns into Cancel while a job runs, the timer polls, Cancel kills the child and brings Apply back,
a failure is shown in a message, and an incomplete atlas override keeps Apply disabled."""

import importlib
import sys
import types

import pytest

slicer = pytest.importorskip("slicer")

from fakes import FakeChild  # noqa: E402
from LTNetTransferLib.job import TransferJob  # noqa: E402


class FakeWidget:
    """Enough of a Qt widget for the panel: properties are attributes, `connect` records the slot."""

    def __init__(self, **properties):
        self.slots, self.items, self.lines = {}, [], []
        self.enabled, self.checked, self.currentPath, self.text, self.toolTip = True, False, "", "", ""
        self.visible, self.value, self.maximum, self.currentIndex, self.node, self.checked_nodes = (
            True,
            0,
            100,
            0,
            None,
            [],
        )
        self.__dict__.update(properties)

    def connect(self, signal, slot):
        self.slots.setdefault(signal, []).append(slot)

    def emit(self, signal, *arguments):
        for slot in self.slots.get(signal, []):
            slot(*arguments)

    def checkedNodes(self):
        return list(self.checked_nodes)

    def currentNode(self):
        return self.node

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


class FakeTimer:
    def __init__(self):
        self.active, self.slots = False, []

    def setInterval(self, milliseconds):
        pass

    def connect(self, signal, slot):
        self.slots.append(slot)

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def fire(self):
        for slot in self.slots:
            slot()


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
    fakeQt.Qt = types.SimpleNamespace(WaitCursor=3)
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
        "resultComboBox",
        "opacitySliderWidget",
        "gpuLabel",
        "statusLabel",
        "logTextEdit",
        "qualityCollapsibleButton",
        "qcTableView",
    ]
    ui = types.SimpleNamespace(**{name: FakeWidget() for name in names})
    ui.useDemoModelCheckBox.checked = True
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
