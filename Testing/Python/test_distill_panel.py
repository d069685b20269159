"""The distillation step of the LTNetTraining panel (LTNetTrainingLib.trainingPanel) driven through fake widgets,
with the real TrainingLogic (input checks, files for the child) and a fake child process: the Step selector shows
the distillation section, Start runs `ltnet distill` with the panel's values (read back by ltnet's own parser),
the lines of a real distillation drive the progress bar, ETA and loss table, an existing output is only replaced
after a yes, Resume passes --resume, and bad inputs start nothing."""

import sys
from dataclasses import asdict

import pytest

slicer = pytest.importorskip("slicer")

from LTNetTrainingLib import TrainingInputError, bundledModelPath  # noqa: E402
from test_distill_logic import DISTILL_LINES  # noqa: E402
from test_training_panel import makePanel  # noqa: E402

STEP_DISTILL = 1
SOURCE_TRAINED, SOURCE_BUNDLED, SOURCE_MODEL = 0, 1, 2  # items of distillSourceComboBox


@pytest.fixture
def panel(monkeypatch, scene, tmp_path):
    """(TrainingPanel on fake widgets in the distillation step, ui, launcher, charts shown)."""
    trainingPanel, ui, launcher, shown = makePanel(monkeypatch, scene, tmp_path)
    choose(ui.stepComboBox, STEP_DISTILL)
    yield trainingPanel, ui, launcher, shown
    sys.modules.pop("LTNetTrainingLib.trainingPanel", None)


def choose(comboBox, index):
    comboBox.currentIndex = index
    comboBox.emit("currentIndexChanged(int)", index)


def parsedArguments(launcher):
    from ltnet.cli import build_parser

    return build_parser().parse_args(launcher.arguments[-1])


def distilledModel(path, iterations=2):
    """A model file holding a distillation that can be resumed (the bundled model plus an untrained segmenter
    stored as `ltnet distill` stores its checkpoints)."""
    from ltnet.distill import DistillSettings
    from ltnet.model_file import load_model, save_model
    from ltnet.segmenter import Segmenter

    model = load_model(bundledModelPath())
    model.segmenter = Segmenter.new(len(model.atlas.values))
    model.segmenter.training = {"iteration": iterations, "settings": asdict(DistillSettings(iterations=iterations))}
    save_model(model, path)
    return path


def test_step_selector_shows_the_distillation_section_and_says_what_it_does(panel):
    trainingPanel, ui, launcher, _ = panel
    assert ui.distillCollapsibleButton.visible and not ui.settingsCollapsibleButton.visible
    assert not ui.modelCollapsibleButton.visible and not ui.advancedCollapsibleButton.visible
    assert not ui.atlasVolumeSelector.visible and not ui.atlasSegmentationLabel.visible
    assert ui.inputsCollapsibleButton.text == "Cohort" and ui.startButton.text == "Start distillation"
    explanation = ui.stepExplanationLabel.text
    assert "segmentation network" in explanation and "keeping the registration's QC" in explanation
    assert "2000 iterations" in explanation and "11 min" in explanation
    assert (
        ui.estimateLabel.text.startswith("Time: 2000 iterations;") and "0.47 s per iteration" in ui.estimateLabel.text
    )
    assert "docs/BENCHMARKS.md" in ui.distillIterationsSpinBox.toolTip

    # the training's output model does not exist yet: Start is enabled (the logic says so); no path: disabled
    assert ui.startButton.enabled
    ui.outputModelPathLineEdit.currentPath = ""
    ui.outputModelPathLineEdit.emit("currentPathChanged(QString)", "")
    assert not ui.startButton.enabled and "training's output model" in ui.startButton.toolTip
    choose(ui.distillSourceComboBox, SOURCE_MODEL)
    assert ui.distillSourcePathLineEdit.enabled and not ui.startButton.enabled
    assert ui.startButton.toolTip == "Choose the model file to distil."
    choose(ui.distillSourceComboBox, SOURCE_BUNDLED)
    assert ui.startButton.enabled and not ui.distillSourcePathLineEdit.enabled and not ui.resumeButton.enabled
    ui.cohortVolumesSelector.checked_nodes = []
    ui.cohortVolumesSelector.emit("checkedNodesChanged()")
    assert not ui.startButton.enabled and ui.startButton.toolTip.startswith("Choose the cohort")

    choose(ui.stepComboBox, 0)  # back to training: its sections and texts
    assert ui.settingsCollapsibleButton.visible and ui.atlasVolumeSelector.visible
    assert not ui.distillCollapsibleButton.visible and ui.startButton.text == "Start training"
    assert ui.inputsCollapsibleButton.text == "Atlas and cohort"
    assert not launcher.arguments


def test_start_runs_ltnet_distill_and_its_lines_drive_progress_eta_and_loss_plot(panel, tmp_path):
    trainingPanel, ui, launcher, shown = panel
    trained = tmp_path / "trained.pt"
    ui.outputModelPathLineEdit.currentPath = str(trained)  # the training step's output model is the source
    import shutil

    shutil.copyfile(bundledModelPath(), trained)
    ui.distillIterationsSpinBox.value = 40
    ui.distillRefineSpinBox.value = 0
    ui.distillAugmentCheckBox.checked = False
    ui.distillLearningRateSpinBox.value = 5e-4
    ui.distillSeedSpinBox.value = 4
    ui.distillCheckpointEverySpinBox.value = 10
    choose(ui.distillDeviceComboBox, 1)
    assert ui.estimateLabel.text.startswith("Time: 40 iterations;")
    ui.startButton.emit("clicked(bool)", False)

    parsed = parsedArguments(launcher)
    assert (parsed.command, parsed.model, parsed.out) == (
        "distill",
        str(trained),
        ui.distillOutputPathLineEdit.currentPath,
    )
    assert len(parsed.images) == 1 and parsed.images[0].endswith(".nrrd")  # the checked volume, written for the child
    assert (parsed.iterations, parsed.refine, parsed.lr, parsed.no_augment) == (40, 0, 5e-4, True)
    assert (parsed.device, parsed.seed, parsed.checkpoint_every, parsed.progress, parsed.resume) == (
        "cpu",
        4,
        10,
        "jsonl",
        False,
    )
    job = trainingPanel.job
    assert trainingPanel.timer.active and ui.cancelButton.enabled and not ui.startButton.enabled
    assert not ui.stepComboBox.enabled and not ui.distillCollapsibleButton.enabled  # locked while it runs
    assert shown == [job.chartNode] and job.tableNode.GetName() == "LTNet distillation losses"

    out = ui.distillOutputPathLineEdit.currentPath
    lines = [("stdout", line.replace("MODEL", out)) for line in DISTILL_LINES]
    launcher.process.lines += lines[:3]
    trainingPanel.timer.fire()
    assert job.lossPlot.columnNames() == ["iteration", "ce", "dice", "loss"] and job.tableNode.GetNumberOfRows() == 2
    assert ui.progressBar.value == 1000 and "Running on CPU" in ui.statusLabel.text
    assert ui.estimateLabel.text.startswith("<b>ETA 0 s</b> (0.52 s per iteration")

    launcher.process.lines.append(lines[3])
    launcher.process.running = False
    trainingPanel.timer.fire()
    assert job.status == "completed" and not trainingPanel.timer.active and ui.startButton.enabled
    assert ui.statusLabel.text == f"Done: model saved to {out}"
    assert "Distillation done at iteration 2: " + out in ui.logTextEdit.lines
    assert ui.estimateLabel.text.startswith("The last distillation took 1 s. Time: about 21 s (40 iterations x 0.52 s")


def test_existing_output_is_replaced_only_after_a_yes_and_resume_passes_resume(panel, tmp_path, monkeypatch):
    trainingPanel, ui, launcher, _ = panel
    choose(ui.distillSourceComboBox, SOURCE_BUNDLED)
    out = ui.distillOutputPathLineEdit.currentPath
    import os

    os.makedirs(os.path.dirname(out))
    distilledModel(out)
    ui.distillOutputPathLineEdit.emit("currentPathChanged(QString)", out)
    assert ui.resumeButton.enabled
    asked = []
    answer = False
    monkeypatch.setattr(slicer.util, "confirmYesNoDisplay", lambda text: asked.append(text) or answer)
    ui.startButton.emit("clicked(bool)", False)
    assert not launcher.arguments and os.path.isfile(out)
    assert asked == [f"{out} exists already. Overwrite it with a new distillation? (Resume continues it instead.)"]

    ui.resumeButton.emit("clicked(bool)", False)  # no question: it continues the file
    parsed = parsedArguments(launcher)
    assert parsed.resume and parsed.model == out and parsed.out == out and len(asked) == 1
    ui.cancelButton.emit("clicked(bool)", False)  # SIGTERM to the tree: ltnet writes a checkpoint
    assert launcher.process.killed and trainingPanel.job.status == "cancelled" and not trainingPanel.timer.active
    assert ui.statusLabel.text == f"Cancelled at iteration 0; the last checkpoint is kept in {out}"
    assert ui.startButton.enabled and ui.resumeButton.enabled

    answer = True
    ui.startButton.emit("clicked(bool)", False)
    parsed = parsedArguments(launcher)
    assert not parsed.resume and parsed.model == bundledModelPath() and not os.path.exists(out)  # replaced


def test_bad_inputs_raise_the_logic_message_and_start_nothing(panel, tmp_path):
    trainingPanel, ui, launcher, _ = panel
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a model")
    choose(ui.distillSourceComboBox, SOURCE_MODEL)
    ui.distillSourcePathLineEdit.currentPath = str(damaged)
    ui.distillSourcePathLineEdit.emit("currentPathChanged(QString)", str(damaged))
    assert ui.startButton.enabled
    with pytest.raises(TrainingInputError, match="cannot be read: .*is not an LTNet model or is damaged"):
        trainingPanel.onStart()  # in Slicer: shown by tryWithErrorDisplay ("Failed to start the distillation.")
    choose(ui.distillSourceComboBox, SOURCE_TRAINED)  # the training's output model, not written yet
    with pytest.raises(TrainingInputError, match="does not exist. Train a model first"):
        trainingPanel.onStart()
    assert not launcher.arguments and trainingPanel.job is None and not trainingPanel.timer.active
