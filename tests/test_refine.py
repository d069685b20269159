"""Test-time refinement fits the networks to one target without touching the model."""

import pytest
import torch

from ltnet import sample
from ltnet.data.io import read_image
from ltnet.data.prepare import prepare_scan
from ltnet.model_file import load_model
from ltnet.nn.cycle import generator_terms, run_cycle, weighted_total
from ltnet.refine import refine
from ltnet.transfer import transfer


def pair_loss(networks, weights, atlas, labels, scan):
    with torch.no_grad():
        cycle = run_cycle(networks, atlas, labels, scan)
        return float(weighted_total(generator_terms(networks, cycle, atlas, labels, scan, weights), weights))


@pytest.mark.skipif(not sample.demo_model_path().exists(), reason="needs the bundled demo model")
def test_refinement_lowers_the_loss_on_its_target_and_leaves_the_model_alone():
    model = load_model(sample.demo_model_path())
    target = read_image(sample.held_out_scan_paths()[0])
    scan = torch.from_numpy(prepare_scan(target, model.atlas).image)[None, None]
    atlas = torch.from_numpy(model.atlas.image)[None, None]
    labels = torch.from_numpy(model.atlas.one_hot)[None]
    weights = model.weights.__class__(**{**model.weights.to_dict(), "gan": 0.0})
    original = {k: v.clone() for k, v in model.networks.state_dict().items()}

    refined = refine(model.networks, model.weights, atlas, labels, scan, steps=10)

    assert pair_loss(refined, weights, atlas, labels, scan) < pair_loss(model.networks.eval(), weights, atlas, labels, scan) - 0.005
    assert all(torch.equal(v, original[k]) for k, v in model.networks.state_dict().items())
    result = transfer(model, target, refine_steps=2)
    assert result.labels.GetSize() == target.GetSize()
