"""The one list of recent models (LTNetCommonLib.recentModels): LTNetTraining adds, LTNetTransfer offers."""

import ast
from pathlib import Path

import pytest
from LTNetCommonLib import recentModels as recent

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def recentFile(tmp_path, monkeypatch):
    path = tmp_path / "recent_models.json"
    monkeypatch.setenv(recent.ENVIRONMENT_VARIABLE, str(path))
    return path


def test_newest_first_without_repeats_or_missing_files(tmp_path):
    first, second = tmp_path / "first.pt", tmp_path / "sub" / "second.pt"
    second.parent.mkdir()
    for path in (first, second):
        path.write_bytes(b"model")
    recent.addRecentModel(first)
    recent.addRecentModel(second)
    recent.addRecentModel(first)
    assert recent.recentModels() == [str(first.resolve()), str(second.resolve())]
    second.unlink()
    assert recent.recentModels() == [str(first.resolve())]


def test_the_list_is_kept_short(tmp_path):
    for index in range(recent.MAXIMUM_COUNT + 3):
        path = tmp_path / f"m{index}.pt"
        path.write_bytes(b"model")
        recent.addRecentModel(path)
    models = recent.recentModels()
    assert len(models) == recent.MAXIMUM_COUNT and models[0].endswith(f"m{recent.MAXIMUM_COUNT + 2}.pt")


def test_a_broken_list_file_reads_as_empty(recentFile):
    recentFile.write_text("{not json")
    assert recent.recentModels() == []
    assert recent.recentModelChoices() == []


def test_choices_name_the_file_and_its_folder(tmp_path):
    path = tmp_path / "brain.pt"
    path.write_bytes(b"model")
    recent.addRecentModel(path)
    assert recent.recentModelChoices() == [(f"brain.pt ({tmp_path.resolve()})", str(path.resolve()))]


def test_a_finished_training_is_offered_by_the_transfer_module(scene, tmp_path):
    """TrainingJob adds its model; LTNetTransferLogic.recentModelChoices (the model selector) offers it."""
    import json

    from LTNetTrainingLib.lossPlot import LossPlot
    from LTNetTrainingLib.trainingJob import COMPLETED, TrainingJob

    model = tmp_path / "trained.pt"
    model.write_bytes(b"model")

    class Finished:
        pid = 0

        def drainLines(self):
            lines, self.lines = (
                getattr(
                    self, "lines", [("stdout", json.dumps({"event": "done", "model": str(model), "iteration": 1}))]
                ),
                [],
            )
            return lines

        def returnCode(self):
            return 0

        def wait(self, timeout=None):
            return 0

    job = TrainingJob(Finished(), model, LossPlot(scene))
    job.poll()
    assert job.status == COMPLETED
    assert [path for _, path in recent.recentModelChoices()] == [str(model.resolve())]


def test_the_transfer_model_selector_reads_the_shared_list():
    """LTNetTransferLogic.recentModelChoices (it fills the widget's Recent models box; the module file
    needs Slicer's Qt to import, so its source is read) is the shared implementation."""
    tree = ast.parse((REPO / "LTNetTransfer" / "LTNetTransfer.py").read_text(encoding="utf-8"))
    method = next(
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "recentModelChoices"
    )
    imports = [
        (node.module, [alias.name for alias in node.names])
        for node in ast.walk(method)
        if isinstance(node, ast.ImportFrom)
    ]
    assert imports == [("LTNetCommonLib.recentModels", ["recentModelChoices"])]


def test_both_modules_use_the_one_shared_list():
    for path in [
        REPO / "LTNetTraining" / "LTNetTrainingLib" / "trainingJob.py",
        REPO / "LTNetTraining" / "LTNetTrainingLib" / "trainingPanel.py",
    ]:
        assert "from LTNetCommonLib.recentModels import" in path.read_text(encoding="utf-8"), path
    assert list(REPO.glob("LTNet*/*/recentModels.py")) == [
        REPO / "LTNetTransfer" / "LTNetCommonLib" / "recentModels.py"
    ]
