"""TrainingLogic against a real MRML scene and the real `ltnet train` child process.

Trainings are a few iterations on the smallest grid, so they finish in seconds
on two CPU cores. Only the sample bundled with `ltnet` is used.
"""

import json
import math
import shutil
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import slicer
from fakes import FakeTrainingProcess
from LTNetCommonLib.recentModels import recentModels
from LTNetTrainingLib import CANCELLED, COMPLETED, SubprocessLauncher, TrainingJob, TrainingLogic
from LTNetTrainingLib.lossPlot import ITERATION_COLUMN, LossPlot

SMALL = dict(grid=(32, 32, 32), device="cpu", checkpointEvery=1, seed=1, teachStage=0)
RENAMED = "renamed in Slicer"


@pytest.fixture(autouse=True)
def recentModelsFile(tmp_path, monkeypatch):
    """Keep the shared list of recent models inside the test's folder."""
    path = tmp_path / "recent_models.json"
    monkeypatch.setenv("LTNET_RECENT_MODELS_FILE", str(path))
    return path


def readVolume(scene, path, className="vtkMRMLScalarVolumeNode"):
    """A volume node read by Slicer's own storage node (slicer.util.loadVolume needs slicer.app)."""
    node = scene.AddNewNodeByClass(className, str(path).split("/")[-1].split(".")[0])
    storageNode = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storageNode.SetFileName(str(path))
    assert storageNode.ReadData(node), path
    return node


def loadSample(scene):
    """(atlas volume node, atlas segmentation node, scan paths) from the bundled sample, in `scene`."""
    sample = pytest.importorskip("ltnet.sample")
    atlas = readVolume(scene, sample.atlas_image_path())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "atlas labels")
    storageNode = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storageNode.SetFileName(str(sample.atlas_labels_path()))
    assert storageNode.ReadData(segmentation)
    segmentation.GetSegmentation().GetNthSegment(0).SetName(RENAMED)  # names come from the scene, not the file
    scans = [str(path) for path in sample.scan_paths()[:2]]
    assert len(scans) == 2
    return atlas, segmentation, scans


@pytest.fixture
def sample(scene):
    """(atlas volume node, atlas segmentation node, scan paths) from the bundled sample."""
    return loadSample(scene)


@pytest.fixture(scope="module")
def shortTraining(module_scene, tmp_path_factory):
    """One short real training shared by the tests of this module (a training costs seconds of CPU):
    (job, scene, sample, output model path, recent models right after it finished)."""
    sample = loadSample(module_scene)
    atlas, segmentation, scans = sample
    folder = tmp_path_factory.mktemp("shortTraining")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LTNET_RECENT_MODELS_FILE", str(folder / "recent_models.json"))
        cohort = [readVolume(module_scene, scans[0]), scans[1]]  # a volume node and a file
        outputPath = folder / "models" / "model.pt"
        job = TrainingLogic().start(atlas, segmentation, cohort, outputPath, iterations=2, **SMALL)
        assert job.wait(timeout=600) == COMPLETED, job.errorMessage()
        recent = recentModels()
    return job, module_scene, sample, outputPath, recent


def waitForIteration(job, iteration, timeout=180):
    deadline = time.monotonic() + timeout
    while job.isRunning and job.iteration < iteration:
        assert time.monotonic() < deadline, f"no iteration {iteration} after {timeout} s:\n" + "\n".join(job.log)
        job.poll()
        time.sleep(0.1)
    assert job.isRunning, "\n".join(job.log)


def processTree(pid):
    parent = psutil.Process(pid)
    return [parent] + parent.children(recursive=True)


def isGone(process):
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_short_training_writes_a_model_that_transfer_accepts(shortTraining, tmp_path):
    job, scene, sample, outputPath, recent = shortTraining
    atlas, segmentation, scans = sample

    # progress lines became rows of the loss table, and the plot series read that table
    table = job.tableNode.GetTable()
    assert table.GetNumberOfRows() == 2
    assert list(slicer.util.arrayFromTableColumn(job.tableNode, ITERATION_COLUMN)) == [1, 2]
    assert set(job.progressEvents[-1]["losses"]) == set(job.seriesNodes)
    assert job.chartNode.GetNumberOfPlotSeriesNodes() == len(job.seriesNodes) > 0
    for lossName, seriesNode in job.seriesNodes.items():
        assert seriesNode.GetTableNodeID() == job.tableNode.GetID()
        assert seriesNode.GetXColumnName() == ITERATION_COLUMN and seriesNode.GetYColumnName() == lossName
        assert np.isfinite(slicer.util.arrayFromTableColumn(job.tableNode, lossName)).all()
    assert job.fraction == 1.0 and job.doneEvent["iteration"] == 2

    # the model keeps the segment names, and `ltnet transfer` accepts it
    from ltnet.model_file import load_model

    model = load_model(str(outputPath))
    segments = segmentation.GetSegmentation()
    names = [segments.GetNthSegment(index).GetName() for index in range(segments.GetNumberOfSegments())]
    assert [label.name for label in model.labels] == names and names[0] == RENAMED
    out = tmp_path / "transferred.seg.nrrd"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltnet",
            "transfer",
            "--model",
            str(outputPath),
            "--target",
            scans[1],
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file()

    # offered to LTNetTransfer through the shared list of recent models
    assert recent[0] == str(outputPath.resolve())
    assert job.workFolder is None  # temporary input files removed


def test_resume_continues_the_count_and_cancel_kills_the_process_tree(shortTraining, scene, sample, tmp_path):
    """Resume the shared short training (a copy), then cancel it: the whole tree ends within seconds and
    the last checkpoint stays loadable, with the iterations done since."""
    atlas, segmentation, scans = sample
    outputPath = tmp_path / "model.pt"
    shutil.copyfile(shortTraining[3], outputPath)
    from ltnet.model_file import load_model

    start = load_model(str(outputPath)).iteration
    job = TrainingLogic().resume(atlas, segmentation, scans, outputPath, iterations=500, **SMALL)
    waitForIteration(job, start + 2)
    assert job.progressEvents[0]["iteration"] == start + 1  # the count goes on from the checkpoint
    tree = processTree(job.process.pid)

    started = time.monotonic()
    job.cancel()
    job.wait()
    assert time.monotonic() - started < 10
    assert job.status == CANCELLED
    assert all(isGone(process) for process in tree)
    checkpoint = load_model(str(outputPath))  # the last good checkpoint is loadable
    assert checkpoint.iteration >= start + 2


def test_blocking_train_for_batch_scripts_and_fine_tuning(shortTraining, scene, sample, tmp_path, monkeypatch):
    """`train()` blocks until done; "Start from: bundled model" passes that model to --init (here the model of
    the shared short training stands in for the bundled one, whose grid is larger than these tests')."""
    atlas, segmentation, scans = sample
    bundled = str(shortTraining[3])
    from LTNetTrainingLib import trainingLogic

    monkeypatch.setattr(trainingLogic, "bundledModelPath", lambda: bundled)
    assert TrainingLogic().resolveInitModel("bundled") == bundled
    started = []

    class RecordingLauncher(SubprocessLauncher):
        def start(self, arguments, environment=None):
            started.append(list(arguments))
            return super().start(arguments, environment)

    seen = []
    modelPath = TrainingLogic(RecordingLauncher()).train(
        atlas,
        segmentation,
        scans,
        tmp_path / "tuned.pt",
        initModel="bundled",
        iterations=1,
        progressCallback=seen.append,
        pollInterval=0.1,
        **SMALL,
    )
    assert started[0][started[0].index("--init") + 1] == bundled
    assert modelPath == str((tmp_path / "tuned.pt").resolve())
    assert {event["iteration"] for event in seen} == {1}  # fine-tuning starts a new count
    assert recentModels() == [modelPath]


def test_settings_become_options_that_ltnet_train_accepts(tmp_path):
    from LTNetTrainingLib import TrainingSettings

    from ltnet.cli import build_parser
    from ltnet.commands.train_recipe import fill_new_run

    settings = TrainingSettings(
        iterations=7,
        learningRate=2e-5,
        grid=(32, 40, 48),
        lambda1=5.0,
        lambda2=1.5,
        adversarial=False,
        diffeomorphic=True,
        fieldDownsize=2,
        augment=True,
        teach=10.0,
        prealign=False,
        prealignFixed="scan",
        device="cpu",
        seed=3,
        checkpointEvery=2,
    )
    arguments = TrainingLogic().commandArguments(
        "a.nii.gz", "a.seg.nrrd", ["s1.nii.gz", "s2.nii.gz"], "m.pt", settings, initPath="init.pt", resume=False
    )
    parsed = build_parser().parse_args(arguments)
    assert (parsed.iterations, parsed.lr, parsed.grid, parsed.lambda1, parsed.lambda2) == (
        7,
        2e-5,
        [32, 40, 48],
        5.0,
        1.5,
    )
    assert (parsed.adversarial, parsed.diffeomorphic, parsed.field_downsize, parsed.augment, parsed.no_prealign) == (
        False,
        True,
        2,
        True,
        True,
    )
    assert parsed.prealign_fixed == "scan" and parsed.teach == 10.0
    assert (parsed.device, parsed.seed, parsed.checkpoint_every, parsed.progress) == ("cpu", 3, 2, "jsonl")
    assert (parsed.init, parsed.resume, parsed.images) == ("init.pt", False, ["s1.nii.gz", "s2.nii.gz"])
    defaults = build_parser().parse_args(
        TrainingLogic().commandArguments("a", "b", ["c"], "m.pt", TrainingSettings(), initPath=None, resume=True)
    )
    assert defaults.grid is None and defaults.resume and defaults.init is None  # grid auto: ltnet's default
    assert (
        defaults.field_downsize == 1
        and not defaults.augment
        and defaults.teach == 0
        and defaults.prealign_fixed is None
    )  # on resume: the model's own
    core = build_parser().parse_args(
        ["train", "--atlas-image", "a", "--atlas-labels", "b", "--images", "c", "--out", "m.pt"]
    )  # the panel's defaults are ltnet's
    fill_new_run(core)  # flags left out take ltnet's new-run defaults
    coreLambda2 = 3.0 if core.lambda2 is None else core.lambda2  # None: ltnet's LT-Net default, 3
    assert (
        defaults.iterations,
        defaults.lr,
        defaults.lambda1,
        defaults.lambda2,
        defaults.checkpoint_every,
        defaults.seed,
        defaults.device,
        defaults.warmup,
        defaults.coupling,
        defaults.adversarial,
    ) == (
        core.iterations,
        core.lr,
        core.lambda1,
        coreLambda2,
        core.checkpoint_every,
        core.seed,
        core.device,
        core.warmup,
        core.coupling,
        core.adversarial,
    )


def progressLine(iteration, **losses):
    return (
        "stdout",
        json.dumps(
            {
                "event": "progress",
                "iteration": iteration,
                "total": 3,
                "losses": losses,
                "elapsed_s": iteration * 1.0,
                "eta_s": (3 - iteration) * 1.0,
            }
        ),
    )


def test_progress_lines_become_table_rows_and_log(scene, tmp_path):
    lines = [
        ("stdout", "some text that is not JSON"),
        progressLine(1, sim=-0.5, smooth=0.1),
        ("stderr", "a warning"),
        progressLine(2, sim=-0.6, smooth=0.09, gan=0.7),
        ("stdout", json.dumps({"event": "done", "model": str(tmp_path / "m.pt"), "iteration": 2})),
    ]
    (tmp_path / "m.pt").write_bytes(b"model")
    logged = []
    job = TrainingJob(FakeTrainingProcess(lines), tmp_path / "m.pt", LossPlot(scene), logCallback=logged.append)
    assert job.statusText().startswith("Starting")
    progress = job.poll()
    assert progress["iteration"] == 2 and job.status == COMPLETED
    assert job.tableNode.GetNumberOfRows() == 2
    gan = slicer.util.arrayFromTableColumn(job.tableNode, "gan")
    assert math.isnan(gan[0]) and gan[1] == pytest.approx(0.7)  # a term that appears later: NaN before
    assert list(job.seriesNodes) == ["sim", "smooth", "gan"]
    assert "some text that is not JSON" in logged and "a warning" in logged
    assert recentModels() == [str((tmp_path / "m.pt").resolve())]


def test_failed_training_reports_the_error_line(scene, tmp_path):
    lines = [("stderr", "ltnet: error: /x/atlas.nrrd: is constant (0.0); give an image with content.")]
    job = TrainingJob(FakeTrainingProcess(lines, code=2), tmp_path / "m.pt", LossPlot(scene))
    job.wait()
    assert job.status == "failed"
    assert "is constant" in job.statusText()
    assert recentModels() == []


def test_closing_the_scene_stops_writing_into_the_removed_plot_nodes(scene, tmp_path):
    process = FakeTrainingProcess([progressLine(1, sim=-0.5)], running=True)
    job = TrainingJob(process, tmp_path / "m.pt", LossPlot(scene))
    job.poll()
    table, chart, series = job.tableNode, job.chartNode, job.seriesNodes["sim"]
    assert table.GetNumberOfRows() == 1 and job.lossPlot.inScene

    scene.Clear(0)  # File > Close scene while the training runs
    assert table.GetScene() is None
    process.lines += [progressLine(2, sim=-0.6, smooth=0.1), progressLine(3, sim=-0.7, smooth=0.09)]
    job.poll()  # no exception, and nothing written into the nodes that left
    assert job.iteration == 3 and not job.lossPlot.inScene
    assert table.GetNumberOfRows() == 1 and table.GetNumberOfColumns() == 2
    assert scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 0

    shown = job.lossPlot.showInScene()  # a new plot holding every row so far
    assert shown is job.chartNode is not chart and shown.GetScene() is scene
    assert list(slicer.util.arrayFromTableColumn(job.tableNode, ITERATION_COLUMN)) == [1, 2, 3]
    assert math.isnan(slicer.util.arrayFromTableColumn(job.tableNode, "smooth")[0])
    assert job.seriesNodes["sim"] is not series and job.seriesNodes["sim"].GetTableNodeID() == job.tableNode.GetID()
    process.lines.append(progressLine(4, sim=-0.8, smooth=0.08))
    job.poll()
    assert job.tableNode.GetNumberOfRows() == 4 and table.GetNumberOfRows() == 1
    assert job.lossPlot.showInScene() is shown  # in the scene: kept as it is


def test_start_line_says_what_the_child_runs_on_and_the_speed_is_measured(scene, tmp_path):
    start = {
        "event": "start",
        "torch": "2.13.0+cpu",
        "cuda": None,
        "device": "cpu",
        "device_name": "Test CPU",
        "precision": "float32",
        "gpu_visible_but_unused": True,
    }
    process = FakeTrainingProcess([("stdout", json.dumps(start))], running=True)
    logged = []
    job = TrainingJob(process, tmp_path / "m.pt", LossPlot(scene), logCallback=logged.append)
    job.poll()
    assert job.startEvent == start and job.secondsPerIteration is None
    assert job.statusText() == "Starting (loading data and networks)... " + job.runtime + "."
    assert "torch 2.13.0+cpu" in job.runtime and "CPU" in job.runtime
    assert any(line.startswith("Warning:") and "GPU" in line for line in logged)
    first = {"event": "progress", "iteration": 1, "total": 100, "losses": {}, "elapsed_s": 9.0, "eta_s": 891.0}
    process.lines.append(("stdout", json.dumps(first)))
    job.poll()
    assert job.secondsPerIteration == pytest.approx(9.0) and job.etaSeconds == 891.0  # one line: ltnet's own
    later = {**first, "iteration": 11, "elapsed_s": 29.0, "eta_s": 236.4}
    process.lines.append(("stdout", json.dumps(later)))
    job.poll()
    assert job.secondsPerIteration == pytest.approx(2.0)  # between lines: the start-up does not count
    assert job.etaSeconds == pytest.approx(89 * 2.0)  # the iterations left at the measured speed
    assert job.statusText().startswith("ETA 2 min 58 s: iteration 11/100, 2 s per iteration, elapsed 29 s.")
