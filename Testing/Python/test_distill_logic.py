"""The distillation step of LTNetTraining (`TrainingLogic.startDistillation`, `ltnet distill`) against a real MRML
scene: the command line ltnet's own parser reads, every bad input refused before a process starts, the progress
lines of a real `ltnet distill --progress jsonl` feeding the loss table, and a real child (the bundled model
distilled on two bundled scans for 2 iterations, `--refine 0`), resumed and cancelled."""

import os
import shutil
import time

import pytest
import slicer
from fakes import FakeTrainingProcess
from LTNetCommonLib.recentModels import recentModels
from LTNetTrainingLib import CANCELLED, COMPLETED, DistillSettings, TrainingInputError, TrainingJob, TrainingLogic
from LTNetTrainingLib.lossPlot import ITERATION_COLUMN, LossPlot
from test_training_logic import isGone, loadSample, processTree, readVolume

SMALL = dict(refine=0, device="cpu", checkpointEvery=1, seed=1)

# The lines of `ltnet distill --model demo_model.pt --images hippocampus_035.nii.gz hippocampus_036.nii.gz
# --iterations 2 --refine 0 --device cpu --progress jsonl --checkpoint-every 1` (torch 2.13.0+cpu).
DISTILL_LINES = [
    '{"event": "start", "torch": "2.13.0+cpu", "cuda": null, "device": "cpu", "device_name": "AMD EPYC", '
    '"precision": "float32", "gpu_visible_but_unused": false}',
    '{"event": "progress", "iteration": 1, "total": 2, "losses": {"ce": 1.2680094242095947, "dice": 0.906019389629364,'
    ' "loss": 2.1740288734436035}, "elapsed_s": 0.453, "eta_s": 0.5}',
    '{"event": "progress", "iteration": 2, "total": 2, "losses": {"ce": 1.1839888095855713, "dice": '
    '0.8962786197662354, "loss": 2.0802674293518066}, "elapsed_s": 0.976, "eta_s": 0.0}',
    '{"event": "done", "model": "MODEL", "iteration": 2}',
]


@pytest.fixture(autouse=True)
def recentModelsFile(tmp_path, monkeypatch):
    """Keep the shared list of recent models inside the test's folder."""
    monkeypatch.setenv("LTNET_RECENT_MODELS_FILE", str(tmp_path / "recent_models.json"))


def bundled():
    import ltnet.sample

    return str(ltnet.sample.demo_model_path())


class RefusingLauncher:
    """Fails the test if any process is started."""

    def start(self, arguments, environment=None):
        raise AssertionError(f"a process was started: {arguments}")


def test_distill_arguments_are_what_ltnet_distill_reads():
    from ltnet.cli import build_parser

    settings = DistillSettings(
        iterations=50, refine=0, learningRate=5e-4, augment=False, device="cpu", seed=3, checkpointEvery=7
    )
    logic = TrainingLogic(launcher=RefusingLauncher())
    parsed = build_parser().parse_args(
        logic.distillArguments("m.pt", ["s1.nrrd", "s2.nii.gz"], "d.pt", settings, False)
    )
    assert (parsed.command, parsed.model, parsed.images, parsed.out, parsed.progress) == (
        "distill",
        "m.pt",
        ["s1.nrrd", "s2.nii.gz"],
        "d.pt",
        "jsonl",
    )
    assert (parsed.iterations, parsed.refine, parsed.lr, parsed.no_augment) == (50, 0, 5e-4, True)
    assert (parsed.device, parsed.seed, parsed.checkpoint_every, parsed.resume) == ("cpu", 3, 7, False)

    resumed = build_parser().parse_args(logic.distillArguments("d.pt", ["s"], "d.pt", DistillSettings(), True))
    assert resumed.resume and resumed.model == "d.pt"
    core = build_parser().parse_args(["distill", "--model", "m.pt", "--images", "s", "--out", "d.pt"])
    assert (resumed.iterations, resumed.refine, resumed.lr, resumed.no_augment) == (
        core.iterations,
        core.refine,
        core.lr,
        core.no_augment,
    )  # the panel's defaults are ltnet's
    assert (resumed.device, resumed.seed, resumed.checkpoint_every) == (core.device, core.seed, core.checkpoint_every)


def test_bad_inputs_start_nothing_and_say_what_to_do(scene, tmp_path):
    atlas, segmentation, scans = loadSample(scene)
    logic = TrainingLogic(launcher=RefusingLauncher(), cudaAvailable=lambda: False)
    out = str(tmp_path / "out" / "distilled.pt")

    def refused(match, source="bundled", cohort=scans, output=out, **keywords):
        with pytest.raises(TrainingInputError, match=match) as raised:
            logic.startDistillation(source, cohort, output, iterations=2, **{"device": "cpu", **keywords})
        return str(raised.value)

    for source in (None, "", "trained"):
        assert "Train a model first" in refused("No model to distil is chosen", source)
    assert "choose an existing .pt file" in refused("does not exist", str(tmp_path / "nothing.pt"))
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a torch file")
    message = refused("cannot be read", str(damaged))
    assert str(damaged) in message and "is not an LTNet model or is damaged" in message
    assert "for the networks to learn from" in refused("The cohort is empty", cohort=[])
    assert "Remove it from the cohort" in refused("does not exist", cohort=[str(tmp_path / "gone.nii.gz")])
    assert "Choose another output file" in refused("is the model to distil", output=bundled())
    assert "Choose CPU or auto" in refused("GPU was asked for", device="cuda")
    assert "Start a distillation first" in refused("Nothing to resume", resume=True)
    shutil.copyfile(bundled(), out)
    assert "confirm overwriting it" in refused("exists already")
    assert "Start a new distillation" in refused("holds no distillation", resume=True)  # a model, not distilled


def test_progress_lines_of_ltnet_distill_feed_the_loss_table(scene, tmp_path):
    model = tmp_path / "distilled.pt"
    model.write_bytes(b"model")
    lines = [("stdout", line.replace("MODEL", str(model))) for line in DISTILL_LINES]
    logged = []
    arguments = ["distill", "--model", "m.pt", "--images", "s", "--out", str(model)]
    job = TrainingJob(FakeTrainingProcess(lines[:2], running=True), model, LossPlot(scene, "LTNet distillation"),
                      logCallback=logged.append, arguments=arguments)  # fmt: skip
    job.poll()
    assert job.name == "distillation" and job.isRunning and "torch 2.13.0+cpu" in job.runtime
    assert job.statusText().startswith("ETA 0 s: iteration 1/2,")
    job.process.lines += lines[2:]
    job.process.running = False
    job.poll()
    assert job.status == COMPLETED and job.fraction == 1.0
    assert job.tableNode.GetName() == "LTNet distillation losses"
    assert job.lossPlot.columnNames() == [ITERATION_COLUMN, "ce", "dice", "loss"]
    assert list(job.seriesNodes) == ["ce", "dice", "loss"]
    assert list(slicer.util.arrayFromTableColumn(job.tableNode, "loss")) == pytest.approx([2.1740288, 2.0802674])
    assert f"Distillation done at iteration 2: {model}" in logged
    assert job.statusText() == f"Done: model saved to {model}"
    assert recentModels() == [str(model.resolve())]

    failed = TrainingJob(
        FakeTrainingProcess([("stderr", "ltnet: error: x.pt: no such model file")], code=2),
        model,
        LossPlot(scene),
        arguments=arguments,
    )
    failed.wait()
    assert failed.log[-1] == "ltnet distill failed (exit status 2)." and "no such model" in failed.statusText()


@pytest.fixture(scope="module")
def shortDistillation(module_scene, tmp_path_factory):
    """The bundled model distilled for 2 iterations on two bundled scans (a volume node and a file) by the real
    `ltnet distill` child: (job, scene, scans, output model path, recent models right after)."""
    atlas, segmentation, scans = loadSample(module_scene)
    folder = tmp_path_factory.mktemp("shortDistillation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LTNET_RECENT_MODELS_FILE", str(folder / "recent_models.json"))
        cohort = [readVolume(module_scene, scans[0]), scans[1]]
        outputPath = folder / "models" / "distilled.pt"
        job = TrainingLogic().startDistillation("bundled", cohort, outputPath, iterations=2, **SMALL)
        assert job.wait(timeout=300) == COMPLETED, job.errorMessage()
        recent = recentModels()
    return job, module_scene, scans, outputPath, recent


def test_real_distillation_writes_a_model_with_the_segmenter(shortDistillation):
    job, scene, scans, outputPath, recent = shortDistillation
    from ltnet.model_file import load_model

    assert job.arguments[:3] == ["distill", "--model", bundled()]
    assert job.tableNode.GetNumberOfRows() == 2
    assert job.lossPlot.columnNames() == [ITERATION_COLUMN, "ce", "dice", "loss"]
    assert list(slicer.util.arrayFromTableColumn(job.tableNode, ITERATION_COLUMN)) == [1, 2]
    assert job.startEvent["device"] == "cpu" and job.doneEvent["iteration"] == 2
    assert any(line.startswith("Distillation done at iteration 2") for line in job.log)
    model = load_model(str(outputPath))
    assert model.segmenter is not None and model.segmenter.iteration == 2
    assert model.segmenter.training["settings"]["refine_steps"] == 0
    assert recent[0] == str(outputPath.resolve())
    assert job.workFolder is None  # the cohort volume's temporary file is removed


def test_a_model_on_a_grid_coarser_than_its_atlas_gets_ltnets_note_in_the_log(module_scene, tmp_path):
    from ltnet.distill import coarse_grid_note
    from ltnet.model_file import load_model, save_model

    model = load_model(bundled())
    model.atlas.channels.SetSpacing([0.4] * 3)  # the atlas's labels 2.5 times finer than its 1 mm grid
    coarse = tmp_path / "coarse.pt"
    save_model(model, coarse)
    _, _, scans = loadSample(module_scene)
    job = TrainingLogic().startDistillation(str(coarse), scans[:2], tmp_path / "distilled.pt", iterations=1, **SMALL)
    assert job.wait(timeout=300) == COMPLETED, job.errorMessage()
    assert f"ltnet: note: {coarse_grid_note(model)}" in job.log  # a note: the distillation still ran to its end


def test_resume_continues_the_count_and_cancel_keeps_the_checkpoint(shortDistillation, tmp_path):
    job, scene, scans, outputPath, recent = shortDistillation
    from ltnet.model_file import load_model

    resumed = tmp_path / "distilled.pt"
    shutil.copyfile(outputPath, resumed)
    job = TrainingLogic().resumeDistillation(None, scans, resumed, iterations=500, **SMALL)
    assert "--resume" in job.arguments and job.arguments[2] == str(resumed)  # ltnet continues --out
    deadline = time.monotonic() + 180
    while job.isRunning and job.iteration < 4:
        assert time.monotonic() < deadline, "\n".join(job.log)
        job.poll()
        time.sleep(0.1)
    assert job.isRunning, "\n".join(job.log)
    assert job.progressEvents[0]["iteration"] == 3 and job.total == 500
    tree = processTree(job.process.pid)
    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < 10 and job.status == CANCELLED
    assert all(isGone(process) for process in tree)
    assert job.statusText().startswith(f"Cancelled at iteration {job.iteration}")
    assert load_model(str(resumed)).segmenter.iteration >= 4  # the checkpoint written on SIGTERM, loadable
    assert os.path.getsize(outputPath) > 0
