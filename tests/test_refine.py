"""Test-time refinement fits the networks to one target without touching the model."""

import torch

from ltnet import sample
from ltnet.data.io import read_image, read_label_map
from ltnet.data.prepare import Atlas, prepare_scan
from ltnet.nn.cycle import generator_terms, run_cycle, weighted_total
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import LTNetNetworks, NetworkConfig
from ltnet.refine import refine


def pair_loss(networks, weights, atlas, labels, scan):
    with torch.no_grad():
        cycle = run_cycle(networks, atlas, labels, scan)
        return float(weighted_total(generator_terms(networks, cycle, atlas, labels, scan, weights), weights))


def test_refinement_lowers_the_loss_on_its_target_and_leaves_the_model_alone():
    atlas_image = read_image(sample.atlas_image_path())
    atlas = Atlas.on_grid(atlas_image, read_label_map(sample.atlas_labels_path(), atlas_image), (32, 32, 32), 8)
    scan = torch.from_numpy(prepare_scan(read_image(sample.held_out_scan_paths()[0]), atlas).image)[None, None]
    atlas_t = torch.from_numpy(atlas.image)[None, None]
    labels_t = torch.from_numpy(atlas.one_hot)[None]
    torch.manual_seed(0)
    networks = LTNetNetworks(NetworkConfig()).eval()
    weights = LossWeights.paper(adversarial=False)
    original = {k: v.clone() for k, v in networks.state_dict().items()}

    refined = refine(networks, weights, atlas_t, labels_t, scan, steps=8, learning_rate=1e-3)

    assert pair_loss(refined, weights, atlas_t, labels_t, scan) < pair_loss(networks, weights, atlas_t, labels_t, scan) - 0.01
    assert all(torch.equal(v, original[k]) for k, v in networks.state_dict().items())
