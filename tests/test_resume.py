"""`ltnet train --resume` keeps the recipe of the run it resumes; `--paper` and the method switches reach the model;
`--snapshot-every` keeps the model along a run."""

import pytest
import torch
from sample_training import train_argv

from ltnet.cli import main
from ltnet.model_file import load_model
from ltnet.nn.cycle import CycleOptions


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def train_args(out, iterations, *flags):
    return train_argv(out, *flags, iterations=iterations, grid=(16, 16, 16), progress="jsonl")


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """A --paper run of one iteration on a small grid (4 U-Net levels need a multiple of 16)."""
    out = tmp_path_factory.mktemp("paper") / "paper.pt"
    assert main([str(a) for a in train_args(out, 1, "--paper", "--lr", "3e-4")]) == 0
    return out


def test_paper_sets_every_switch_and_the_model_keeps_them(paper_run):
    model = load_model(paper_run)
    assert model.cycle_options == CycleOptions.paper()
    assert (model.networks.config.levels, model.networks.config.grid_multiple) == (4, 16)
    assert all(n % 16 == 0 for n in model.grid.size)
    assert model.weights.coupling == 1.0 and model.weights.gan == 1.0
    settings = model.training["settings"]
    assert (settings["warmup"], settings["learning_rate"]) == (0.0, 3e-4)


def test_resume_without_flags_continues_with_the_stored_recipe(paper_run, tmp_path, capsys):
    out = tmp_path / "resumed.pt"
    out.write_bytes(paper_run.read_bytes())
    code, err = run(capsys, *train_args(out, 2, "--resume"))
    assert code == 0, err
    model = load_model(out)
    assert model.iteration == 2
    settings = model.training["settings"]
    assert (settings["warmup"], settings["learning_rate"], settings["lr_schedule"]) == (0.0, 3e-4, "constant")
    assert model.cycle_options == CycleOptions.paper() and model.weights.coupling == 1.0
    code, err = run(capsys, *train_args(out, 3, "--resume", "--paper", "--lr", "3e-4", "--warmup", "0"))
    assert code == 0, err  # flags that agree with the stored recipe are fine


@pytest.mark.parametrize(
    "flags, named",
    [
        (("--warmup", "0.3"), "--warmup 0.3"),
        (("--warmup", "0.5"), "--warmup 0.5"),  # the default of a new run, given explicitly
        (("--lr", "1e-4"), "--lr 0.0001"),
        (("--coupling", "0.1"), "--coupling 0.1"),
        (("--trans-units", "normalised"), "--trans-units normalised"),
        (("--unet-levels", "3"), "--unet-levels 3"),
        (("--no-adversarial",), "--no-adversarial"),
        (("--gan-weight", "0.5"), "--gan-weight 0.5"),
    ],
)
def test_resume_refuses_a_flag_that_contradicts_the_stored_recipe(paper_run, tmp_path, capsys, flags, named):
    out = tmp_path / "resumed.pt"
    out.write_bytes(paper_run.read_bytes())
    code, err = run(capsys, *train_args(out, 2, "--resume", *flags))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "resume it without" in lines[0], err
    assert load_model(out).iteration == 1  # nothing trained, nothing written


def test_resume_of_a_default_run_refuses_paper(tmp_path, capsys):
    out = tmp_path / "default.pt"
    assert run(capsys, *train_args(out, 1))[0] == 0
    kept = load_model(out).cycle_options
    assert kept == CycleOptions() and (kept.anatomy, kept.diff_cyc) == ("foreground", "balanced")
    assert load_model(out).networks.config.levels == 3
    code, err = run(capsys, *train_args(out, 2, "--resume", "--paper"))
    assert code != 0 and "--paper (which sets" in err and "resume it without" in err, err


def test_gan_weight_and_method_switches_reach_a_new_model(tmp_path, capsys):
    out = tmp_path / "switches.pt"
    flags = ("--gan-weight", "0.3", "--anatomy-cyc", "foreground", "--diff-cyc", "balanced", "--trans-order", "paper")
    code, err = run(capsys, *train_args(out, 1, *flags))
    assert code == 0, err
    model = load_model(out)
    assert model.weights.gan == 0.3
    assert model.cycle_options == CycleOptions(anatomy="foreground", diff_cyc="balanced", trans_order="paper")
    code, err = run(capsys, *train_args(tmp_path / "x.pt", 1, "--no-adversarial", "--gan-weight", "1"))
    assert code != 0 and "--gan-weight" in err


def test_snapshots_keep_the_model_at_each_multiple_across_a_resume_and_are_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run.pt"
    code, err = run(capsys, *train_args(out, 3, "--snapshot-every", "2"))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("run_it*.pt")) == ["run_it2.pt"]
    assert load_model(tmp_path / "run_it2.pt").iteration == 2
    code, err = run(capsys, *train_args(out, 4, "--resume", "--snapshot-every", "2"))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("run_it*.pt")) == ["run_it2.pt", "run_it4.pt"]
    at_four, final = load_model(tmp_path / "run_it4.pt"), load_model(out)
    assert at_four.iteration == final.iteration == 4
    for name, weight in final.networks.state_dict().items():
        assert torch.equal(weight, at_four.networks.state_dict()[name]), name
    snapshot_two = (tmp_path / "run_it2.pt").read_bytes()

    # a new run whose snapshot would land on an existing file is refused before any work
    (tmp_path / "again_it2.pt").write_bytes(snapshot_two)
    code, err = run(capsys, *train_args(tmp_path / "again.pt", 2, "--snapshot-every", "2"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "again_it2.pt: exists already" in lines[0], err
    assert not (tmp_path / "again.pt").exists() and (tmp_path / "again_it2.pt").read_bytes() == snapshot_two
    code, err = run(capsys, *train_args(tmp_path / "neg.pt", 1, "--snapshot-every", "-1"))
    assert code == 2 and "--snapshot-every -1" in err
