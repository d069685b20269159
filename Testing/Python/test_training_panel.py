"""The Qt side of LTNetTraining (LTNetTrainingLib.trainingPanel) driven through fake widgets, with the real
TrainingLogic (input checks, files for the child) and a fake child process: the fine-tuning recipe becomes the
`ltnet train` options the benchmarks measured, the time line shows the estimate then the ETA, and closing the
scene while a training runs leaves the removed plot nodes alone."""

import importlib
import json
import sys
import types

import pytest

slicer = pytest.importorskip("slicer")

from fakes import FakeQtSettings, FakeQtTimer, FakeQtWidget, FakeTrainingProcess  # noqa: E402
from LTNetTrainingLib import TrainingLogic, bundledModelPath  # noqa: E402
from test_training_logic import loadSample  # noqa: E402

WIDGETS = {  # name: properties, as the .ui sets them (the parameter node's defaults)
    "recipeComboBox": dict(items=["Fine-tune the model on my cohort (recommended)", "Custom settings"]),
    "startFromComboBox": dict(items=["Bundled model", "Another model (fine-tune)", "From scratch"]),
    "initModelPathLineEdit": {},
    "outputModelPathLineEdit": {},
    "atlasVolumeSelector": {},
    "atlasSegmentationSelector": {},
    "cohortVolumesSelector": {},
    "cohortFolderPathLineEdit": {},
    "cohortCountLabel": {},
    "iterationsSpinBox": dict(value=600),
    "learningRateSpinBox": dict(value=1e-4),
    "gridXSpinBox": dict(value=32),
    "gridYSpinBox": dict(value=32),
    "gridZSpinBox": dict(value=32),
    "lambda1SpinBox": dict(value=10.0),
    "lambda2SpinBox": dict(value=3.0),
    "adversarialCheckBox": {},
    "diffeomorphicCheckBox": {},
    "prealignCheckBox": dict(checked=True),
    "prealignFixedComboBox": dict(items=["", "scan", "atlas"]),  # as the parameter node's binding fills it
    "deviceComboBox": dict(items=["auto", "cpu", "cuda"]),
    "seedSpinBox": {},
    "checkpointEverySpinBox": dict(value=100),
    "teachSpinBox": dict(value=10.0),
    "warmupSpinBox": dict(value=0.5),
    "couplingSpinBox": dict(value=0.1),
    "augmentCheckBox": {},
    "fieldDownsizeSpinBox": dict(value=1),
    "inputsCollapsibleButton": {},
    "modelCollapsibleButton": {},
    "settingsCollapsibleButton": dict(collapsed=True),
    "advancedCollapsibleButton": dict(collapsed=True),
    "estimateLabel": {},
    "startButton": {},
    "resumeButton": {},
    "cancelButton": {},
    "progressBar": {},
    "statusLabel": {},
    "showPlotButton": {},
    "logTextEdit": {},
    "stepComboBox": dict(items=["Train the registration networks", "Distil a model into a segmentation network"]),
    "stepExplanationLabel": {},
    "atlasVolumeLabel": {},
    "atlasSegmentationLabel": {},
    "distillCollapsibleButton": {},
    "distillSourceComboBox": dict(items=["Output model of the training step", "Bundled model", "Another model file"]),
    "distillSourcePathLineEdit": {},
    "distillOutputPathLineEdit": {},
    "distillIterationsSpinBox": dict(value=2000),
    "distillRefineSpinBox": dict(value=3),
    "distillLearningRateSpinBox": dict(value=1e-3),
    "distillAugmentCheckBox": dict(checked=True),
    "distillDeviceComboBox": dict(items=["auto", "cpu", "cuda"]),
    "distillSeedSpinBox": {},
    "distillCheckpointEverySpinBox": dict(value=100),
}


class RecordingLauncher:
    """Starts no process: records the `ltnet` arguments and hands out one `FakeTrainingProcess` that runs."""

    def __init__(self):
        self.arguments, self.process = [], FakeTrainingProcess(running=True)

    def start(self, arguments, environment=None):
        self.arguments.append(arguments)
        return self.process


@pytest.fixture
def panel(monkeypatch, scene, tmp_path):
    """(TrainingPanel on fake widgets with the bundled sample chosen, ui, launcher, charts shown)."""
    yield makePanel(monkeypatch, scene, tmp_path)
    sys.modules.pop("LTNetTrainingLib.trainingPanel", None)


def makePanel(monkeypatch, scene, tmp_path):
    """A TrainingPanel on fake widgets (WIDGETS) with a fake qt, slicer.app and plots module, the bundled sample's
    atlas chosen and checked as a cohort of one, and a RecordingLauncher: (panel, ui, launcher, charts shown).
    The caller removes `LTNetTrainingLib.trainingPanel` from sys.modules at the end (it was imported with the
    fake qt)."""
    monkeypatch.setenv("LTNET_RECENT_MODELS_FILE", str(tmp_path / "recent_models.json"))
    fakeQt = types.SimpleNamespace(QTimer=FakeQtTimer, QSettings=FakeQtSettings, Qt=types.SimpleNamespace(WaitCursor=3))
    monkeypatch.setitem(sys.modules, "qt", fakeQt)
    monkeypatch.setattr(FakeQtSettings, "stored", {})
    app = types.SimpleNamespace(
        defaultScenePath=str(tmp_path),
        processEvents=lambda: None,
        testingEnabled=lambda: True,
        setOverrideCursor=lambda cursor: None,
        restoreOverrideCursor=lambda: None,
    )
    monkeypatch.setattr(slicer, "app", app, raising=False)
    shown = []
    plots = types.SimpleNamespace(logic=lambda: types.SimpleNamespace(ShowChartInLayout=shown.append))
    monkeypatch.setattr(slicer, "modules", types.SimpleNamespace(plots=plots), raising=False)
    sys.modules.pop("LTNetTrainingLib.trainingPanel", None)
    module = importlib.import_module("LTNetTrainingLib.trainingPanel")
    monkeypatch.setattr(module, "ensureDependencies", lambda confirm, title: True)
    ui = types.SimpleNamespace(**{name: FakeQtWidget(name, **dict(props)) for name, props in WIDGETS.items()})
    atlas, segmentation, scans = loadSample(scene)
    ui.atlasVolumeSelector.node, ui.atlasSegmentationSelector.node = atlas, segmentation
    ui.cohortFolderPathLineEdit.currentPath = str(tmp_path / "no scans here")
    (tmp_path / "no scans here").mkdir()
    ui.cohortVolumesSelector.checked_nodes = [atlas]  # a volume in the scene, as a cohort of one
    ui.outputModelPathLineEdit.currentPath = str(tmp_path / "out" / "model.pt")
    launcher = RecordingLauncher()
    trainingPanel = module.TrainingPanel(ui, TrainingLogic(launcher=launcher, cudaAvailable=lambda: False))
    return trainingPanel, ui, launcher, shown


def parsedArguments(launcher):
    """The arguments of the last `ltnet train` started, as ltnet resolves them for a new run (flags left out take
    their defaults)."""
    from ltnet.cli import build_parser
    from ltnet.commands.train_recipe import fill_new_run

    arguments = build_parser().parse_args(launcher.arguments[-1])
    fill_new_run(arguments)
    return arguments


def setValue(widget, value, signal="valueChanged(int)"):
    widget.value = value
    widget.emit(signal, value)


def test_fine_tune_recipe_starts_ltnet_train_as_measured(panel):
    trainingPanel, ui, launcher, _ = panel
    assert ui.recipeComboBox.currentIndex == 0, "the defaults are the fine-tuning recipe"
    assert ui.prealignFixedComboBox.items[1] == "scan (small crops, e.g. hippocampus)"
    assert "0.784" in ui.recipeComboBox.toolTip and ui.startButton.enabled
    ui.prealignFixedComboBox.currentIndex = 1
    ui.deviceComboBox.currentIndex = 1
    ui.deviceComboBox.emit("currentIndexChanged(int)", 1)
    assert ui.estimateLabel.text.startswith("Time: 600 iterations; the ETA shows after the first iterations")

    ui.startButton.emit("clicked(bool)", False)
    parsed = parsedArguments(launcher)
    assert (parsed.init, parsed.teach, parsed.iterations, parsed.lr) == (bundledModelPath(), 10.0, 600, 1e-4)
    assert (parsed.prealign_fixed, parsed.device, parsed.augment, parsed.warmup, parsed.coupling) == (
        "scan",
        "cpu",
        False,
        0.5,
        0.1,
    )
    assert trainingPanel.timer.active and ui.cancelButton.enabled and not ui.startButton.enabled
    assert not ui.advancedCollapsibleButton.enabled, "settings are locked while the training runs"
    launcher.process.killTree()
    trainingPanel.timer.fire()


def test_recipe_follows_the_settings_and_choosing_it_sets_them_back(panel):
    trainingPanel, ui, launcher, _ = panel
    setValue(ui.iterationsSpinBox, 2000)
    assert ui.recipeComboBox.currentIndex == 1  # custom
    ui.startFromComboBox.currentIndex = 2  # from scratch: no teaching
    ui.startFromComboBox.emit("currentIndexChanged(int)", 2)
    assert trainingPanel.settings().teach == 0.0

    ui.recipeComboBox.emit("activated(int)", 0)
    assert (ui.iterationsSpinBox.value, ui.learningRateSpinBox.value, ui.teachSpinBox.value) == (600, 1e-4, 10.0)
    assert ui.startFromComboBox.currentIndex == 0 and ui.recipeComboBox.currentIndex == 0  # the bundled model
    ui.recipeComboBox.emit("activated(int)", 1)
    assert not ui.settingsCollapsibleButton.collapsed

    ui.startFromComboBox.currentIndex = 2
    setValue(ui.warmupSpinBox, 0.0, "valueChanged(double)")
    setValue(ui.fieldDownsizeSpinBox, 2)
    ui.startButton.emit("clicked(bool)", False)
    parsed = parsedArguments(launcher)
    assert (parsed.init, parsed.teach, parsed.warmup, parsed.field_downsize) == (None, 0.0, 0.0, 2)
    assert parsed.prealign_fixed is None  # the starting model's own (atlas for a new model)
    launcher.process.killTree()
    trainingPanel.timer.fire()


def test_teaching_with_augmentation_keeps_start_disabled_with_the_reason(panel):
    trainingPanel, ui, launcher, _ = panel
    ui.augmentCheckBox.checked = True
    ui.augmentCheckBox.emit("toggled(bool)", True)
    assert not ui.startButton.enabled and "Teaching and augmentation" in ui.startButton.toolTip
    assert ui.recipeComboBox.currentIndex == 1
    setValue(ui.teachSpinBox, 0.0, "valueChanged(double)")
    assert ui.startButton.enabled and not launcher.arguments


def progress(iteration, elapsed, total=600):
    event = {
        "event": "progress",
        "iteration": iteration,
        "total": total,
        "losses": {"sim": -0.5 - 0.01 * iteration},
        "elapsed_s": elapsed,
        "eta_s": round(elapsed / iteration * (total - iteration), 1),
    }
    return ("stdout", json.dumps(event))


def test_eta_then_scene_close_leaves_the_removed_plot_nodes_alone(panel, scene):
    trainingPanel, ui, launcher, shown = panel
    ui.startButton.emit("clicked(bool)", False)
    job = trainingPanel.job
    assert shown == [job.chartNode]
    start = {"event": "start", "torch": "2.13.0+cpu", "cuda": None, "device": "cpu", "precision": "float32"}
    launcher.process.lines += [("stdout", json.dumps(start)), progress(1, 12.0), progress(2, 14.0)]
    trainingPanel.timer.fire()
    assert ui.estimateLabel.text == "<b>ETA 19 min 56 s</b> (2 s per iteration on this computer)"
    assert ui.statusLabel.text.startswith("ETA 19 min 56 s: iteration 2/600, 2 s per iteration")
    assert "torch 2.13.0+cpu" in ui.statusLabel.text and "ETA 19 min 56 s" in ui.progressBar.format
    table = job.tableNode
    assert table.GetNumberOfRows() == 2

    trainingPanel.onSceneStartClose()
    scene.Clear(0)
    launcher.process.lines += [progress(3, 16.0), progress(4, 18.0)]
    trainingPanel.timer.fire()  # no exception; nothing written into the nodes that left the scene
    assert table.GetNumberOfRows() == 2 and job.iteration == 4 and job.isRunning
    ui.showPlotButton.emit("clicked(bool)", False)  # a new plot with every row so far
    assert shown[-1] is job.chartNode and job.chartNode.GetScene() is scene
    assert job.tableNode.GetNumberOfRows() == 4

    launcher.process.lines.append(("stdout", json.dumps({"event": "done", "model": job.outputModelPath})))
    launcher.process.running = False
    trainingPanel.timer.fire()
    assert job.status == "completed" and not trainingPanel.timer.active and ui.startButton.enabled
    assert FakeQtSettings.stored["LTNet/RecentModels"] == [job.outputModelPath]  # offered in LTNet Transfer
    assert "about 20 min 00 s (600 iterations x 2 s, measured by the last training" in ui.estimateLabel.text
