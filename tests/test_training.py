"""Training on real hippocampus scans: the loss goes down, runs are deterministic, resume continues exactly."""

import os
import signal
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from sample_training import train_argv

from ltnet import sample
from ltnet.data.io import read_image, read_label_map
from ltnet.data.prepare import Atlas, prepare_scan
from ltnet.errors import LTNetError
from ltnet.model_file import LTNetModel, load_model
from ltnet.nn.cycle import generator_terms, run_cycle, weighted_total
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import LTNetNetworks, NetworkConfig
from ltnet.training import TrainSettings, check_losses, train

GRID = (32, 32, 32)


@pytest.fixture(scope="module")
def prepared():
    atlas_image = read_image(sample.atlas_image_path())
    atlas = Atlas.on_grid(atlas_image, read_label_map(sample.atlas_labels_path(), atlas_image), GRID, 8)
    scans = [prepare_scan(read_image(p), atlas).image for p in sample.training_scan_paths()[:2]]
    return atlas, scans


def new_model(atlas, seed=0) -> LTNetModel:
    torch.manual_seed(seed)
    return LTNetModel(LTNetNetworks(NetworkConfig()), atlas, LossWeights.paper())


def generator_loss(model: LTNetModel, scan: np.ndarray) -> float:
    nets = model.networks.eval()
    atlas = torch.from_numpy(model.atlas.image)[None, None]
    labels = torch.from_numpy(model.atlas.one_hot).float()[None]
    scan_t = torch.from_numpy(scan)[None, None]
    with torch.no_grad():
        cycle = run_cycle(nets, atlas, labels, scan_t)
        return float(weighted_total(generator_terms(nets, cycle, atlas, labels, scan_t, model.weights), model.weights))


def test_training_on_real_scans_lowers_the_loss(prepared, tmp_path):
    atlas, scans = prepared
    model = new_model(atlas)
    before = generator_loss(model, scans[0])
    train(
        model,
        scans[:1],
        tmp_path / "m.pt",
        TrainSettings(iterations=12, learning_rate=1e-3, checkpoint_every=100),
        torch.device("cpu"),
    )
    after = generator_loss(model, scans[0])
    assert after < before - 0.02, (before, after)


def test_same_seed_same_weights_and_resume_continues_exactly(prepared, tmp_path):
    atlas, scans = prepared
    settings = TrainSettings(iterations=4, learning_rate=1e-3, seed=3, checkpoint_every=1)
    straight = train(new_model(atlas), scans, tmp_path / "a.pt", settings, torch.device("cpu"))
    again = train(new_model(atlas), scans, tmp_path / "b.pt", settings, torch.device("cpu"))
    halfway = train(new_model(atlas), scans, tmp_path / "c.pt", TrainSettings(2, 1e-3, 3, 1), torch.device("cpu"))
    assert halfway.iteration == 2
    resumed = train(load_model(tmp_path / "c.pt"), scans, tmp_path / "c.pt", settings, torch.device("cpu"))
    assert resumed.iteration == 4 and load_model(tmp_path / "c.pt").iteration == 4
    kept = load_model(tmp_path / "c.pt").atlas.channels  # the atlas labels at their own resolution, geometry included
    assert np.array_equal(sitk.GetArrayViewFromImage(kept), sitk.GetArrayViewFromImage(atlas.channels))
    assert (kept.GetOrigin(), kept.GetSpacing(), kept.GetDirection()) == (
        atlas.channels.GetOrigin(),
        atlas.channels.GetSpacing(),
        atlas.channels.GetDirection(),
    )
    reference = straight.networks.state_dict()
    for other in (again, resumed):
        for name, value in other.networks.state_dict().items():
            assert torch.equal(value, reference[name]), name


def test_cosine_schedule_sets_adams_learning_rate_each_step(prepared, tmp_path):
    atlas, scans = prepared
    settings = TrainSettings(iterations=3, learning_rate=1e-3, checkpoint_every=1, lr_schedule="cosine")
    train(new_model(atlas), scans[:1], tmp_path / "m.pt", settings, torch.device("cpu"))
    state = load_model(tmp_path / "m.pt").training
    assert state["settings"]["lr_schedule"] == "cosine"
    assert [group["lr"] for group in state["optimizer_g"]["param_groups"]] == [
        settings.learning_rate_at(2)
    ]  # the last step's
    assert settings.learning_rate_at(2) == pytest.approx(0.25e-3)


def test_sigterm_stops_with_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "model.pt"
    command = [
        sys.executable,
        "-m",
        "ltnet",
        *train_argv(out, "--checkpoint-every", "1000", iterations=1000, grid=GRID, progress="jsonl"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if '"iteration": 2,' in line:
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    model = load_model(out)
    assert 2 <= model.iteration < 1000
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".ltnet-")]  # no temporary files left


def test_augmented_training_changes_the_result_and_resumes_exactly(prepared, tmp_path):
    atlas, scans = prepared
    settings = TrainSettings(iterations=4, learning_rate=1e-3, seed=3, checkpoint_every=1, augment=True)
    straight = train(new_model(atlas), scans, tmp_path / "a.pt", settings, torch.device("cpu"))
    plain = train(new_model(atlas), scans, tmp_path / "p.pt", replace(settings, augment=False), torch.device("cpu"))
    train(new_model(atlas), scans, tmp_path / "c.pt", replace(settings, iterations=2), torch.device("cpu"))
    resumed = train(load_model(tmp_path / "c.pt"), scans, tmp_path / "c.pt", settings, torch.device("cpu"))
    assert load_model(tmp_path / "a.pt").training["settings"]["augment"] is True
    reference = straight.networks.state_dict()
    assert all(torch.equal(value, reference[name]) for name, value in resumed.networks.state_dict().items())
    assert not all(torch.equal(value, reference[name]) for name, value in plain.networks.state_dict().items())


def test_training_in_bfloat16_as_on_a_gpu_follows_the_float32_losses(prepared, tmp_path, monkeypatch):
    atlas, scans = prepared
    settings = TrainSettings(iterations=3, learning_rate=1e-3, checkpoint_every=100)
    exact, mixed = [], []
    train(new_model(atlas), scans, tmp_path / "a.pt", settings, torch.device("cpu"), progress=exact.append)
    monkeypatch.setattr("ltnet.training.mixed_precision", lambda device: torch.autocast("cpu", dtype=torch.bfloat16))
    train(new_model(atlas), scans, tmp_path / "b.pt", settings, torch.device("cpu"), progress=mixed.append)
    for a, b in zip(exact, mixed, strict=True):
        assert -1.0 <= b["losses"]["sim"] <= 0.0  # LNCC in bfloat16 gave -2e6: no signal for G_F
        assert b["losses"]["sim"] == pytest.approx(a["losses"]["sim"], abs=0.02)
        assert all(np.isfinite(value) for value in b["losses"].values())


def test_a_numerical_breakdown_stops_training_with_a_clear_error(prepared, tmp_path):
    atlas, scans = prepared
    broken = scans[0].copy()
    broken[10:20, 10:20, 10:20] = np.nan
    with pytest.raises(
        LTNetError, match=r"m\.pt: training broke down numerically at iteration 1 \(sim = nan.*no model was written"
    ):
        train(
            new_model(atlas),
            [broken],
            tmp_path / "m.pt",
            TrainSettings(iterations=3, checkpoint_every=1),
            torch.device("cpu"),
        )
    assert not (tmp_path / "m.pt").exists()
    checkpoint = tmp_path / "c.pt"
    checkpoint.write_bytes(b"")  # only its existence counts here
    check_losses({"sim": -0.99, "smooth": 0.1}, 5, checkpoint, 4)  # in range: no error
    with pytest.raises(LTNetError, match=r"sim = -2\.13e\+06.*c\.pt keeps the checkpoint of iteration 4"):
        check_losses({"sim": -2129920.0, "smooth": 0.1}, 5, checkpoint, 4)  # what bfloat16 LNCC gave on a GPU
