"""A new ``ltnet train`` run registers, then teaches ``G_F`` its own refined fields: one run in the progress, with
the measured recipe's defaults, and resumable in either stage."""

import json
import os
import signal

import pytest
import torch
from sample_training import train_argv

from ltnet.cli import build_parser, main
from ltnet.commands import train_recipe
from ltnet.model_file import load_model
from ltnet.training import TEACH_STAGE

GRID = (16, 16, 16)


def stage_args(out, *flags):
    """Three registration and three teaching iterations, a checkpoint after each."""
    return train_argv(out, "--checkpoint-every", "1", *flags, iterations=3, grid=GRID, progress="jsonl", teach_stage=3)


def events(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def test_a_new_run_registers_then_teaches_and_reports_one_run(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(stage_args(out)) == 0
    progress = [e for e in events(capsys.readouterr().out) if e["event"] == "progress"]
    assert [e["iteration"] for e in progress] == [1, 2, 3, 4, 5, 6]
    assert {e["total"] for e in progress} == {6}
    assert ["teach" in e["losses"] for e in progress] == [False] * 3 + [True] * 3
    model = load_model(out)
    assert model.iteration == 6 and model.weights.teach == TEACH_STAGE["weight"]
    settings = model.training["settings"]
    assert (settings["iterations"], settings["teach_stage"], settings["teaching"]) == (3, 3, True)
    assert (settings["learning_rate"], settings["warmup"]) == (TEACH_STAGE["learning_rate"], TEACH_STAGE["warmup"])


@pytest.mark.parametrize(
    "flags, expected",
    [
        ((), (1500, 3e-4, 600)),  # the recipe measured best, in one command
        (("--init", "m.pt"), (2000, 1e-4, 0)),  # fine-tuning keeps its defaults
        (("--voxelmorph",), (1500, 3e-4, 0)),  # other methods are trained as they are, on the same budget
        (("--paper",), (1500, 3e-4, 0)),
        (("--teach-stage", "0", "--iterations", "10", "--lr", "1e-3"), (10, 1e-3, 0)),
    ],
)
def test_new_run_defaults(flags, expected):
    argv = ["train", "--atlas-image", "a", "--atlas-labels", "l", "--images", "i", "--out", "o", *flags]
    args = build_parser().parse_args(argv)
    train_recipe.apply_paper(args)
    train_recipe.fill_new_run(args)
    assert (args.iterations, args.lr, args.teach_stage) == expected


class StopAt:
    """A progress reporter that sends this process SIGTERM at one iteration, as Slicer's Cancel does."""

    def __init__(self, iteration: int):
        self.iteration, self.seen = iteration, []

    def __call__(self, event: dict) -> None:
        self.seen.append(event)
        if event.get("iteration") == self.iteration and event["event"] == "progress":
            os.kill(os.getpid(), signal.SIGTERM)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("stop_at, stopped_at", [(1, 2), (3, 3), (4, 5)])
def test_a_run_stopped_in_either_stage_resumes_to_its_end(tmp_path, capsys, monkeypatch, stop_at, stopped_at):
    straight = tmp_path / "straight.pt"
    assert main(stage_args(straight)) == 0
    out = tmp_path / "stopped.pt"
    with monkeypatch.context() as patched:
        patched.setattr("ltnet.commands.train.start_progress", lambda *args: StopAt(stop_at))
        assert main(stage_args(out)) == 130
    assert load_model(out).iteration == stopped_at
    assert main(stage_args(out, "--resume")) == 0  # the same command line again, with --resume
    resumed, reference = load_model(out), load_model(straight)
    assert resumed.iteration == 6 and resumed.weights.teach == TEACH_STAGE["weight"]
    assert resumed.training["settings"] == reference.training["settings"]
    if stopped_at <= 3:  # the teaching stage ran whole after the resume: the same networks as without the stop
        for name, value in resumed.networks.state_dict().items():
            assert torch.equal(value, reference.networks.state_dict()[name]), name
    capsys.readouterr()


def test_a_finished_registration_stage_cannot_grow(tmp_path, capsys):
    out = tmp_path / "m.pt"
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr("ltnet.commands.train.start_progress", lambda *args: StopAt(4))
        assert main(stage_args(out)) == 130
    capsys.readouterr()
    argv = train_argv(out, "--resume", iterations=5, grid=GRID, progress="jsonl", teach_stage=None)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "teaching stage" in err[0] and "--iterations 5" in err[0], err
    assert load_model(out).iteration == 5  # nothing trained, nothing written
