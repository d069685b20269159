"""Teaching G_F with its own refined fields (`ltnet train --init M --teach W`, `ltnet.teach`)."""

import pytest
import torch
from sample_training import train_argv

from ltnet import sample
from ltnet.cli import main
from ltnet.data.io import read_image
from ltnet.data.prepare import prepare_scan
from ltnet.model_file import load_model
from ltnet.refine import refine
from ltnet.teach import LABEL_FLOOR, LABEL_REACH, RefinedFields, label_weights, teach_term

pytestmark = pytest.mark.skipif(not sample.demo_model_path().exists(), reason="needs the bundled demo model")


def pair(model):
    scan = prepare_scan(read_image(sample.training_scan_paths()[0]), model.atlas).image
    return torch.from_numpy(model.atlas.image).float()[None, None], torch.from_numpy(scan).float()[None, None]


def test_each_scan_is_refined_once_and_the_term_measures_the_distance_to_it():
    model = load_model(sample.demo_model_path())
    atlas, scan = pair(model)
    fields = RefinedFields(model.networks.g_forward, model.weights, atlas, steps=3)
    first = fields(7, scan)
    assert fields(7, scan) is first and list(fields.fields) == [7]
    assert torch.allclose(first, refine(model.networks.g_forward, model.weights, atlas, scan, 3))
    with torch.no_grad():
        network = model.networks.g_forward(atlas, scan)
    assert teach_term(first, first) == 0
    assert teach_term(network, first) == pytest.approx(((network - first) ** 2).mean().item())
    assert teach_term(network, first) > 0.01  # 3 refinement steps move the field by a fraction of a voxel or more


def cube_labels(size: int = 16, low: int = 6, high: int = 10) -> torch.Tensor:
    """One-hot ``(1, 2, size, size, size)``: a cube of label 1 over ``[low, high)`` on every axis."""
    foreground = torch.zeros(1, 1, size, size, size)
    foreground[..., low:high, low:high, low:high] = 1.0
    return torch.cat([1 - foreground, foreground], dim=1)


def test_the_term_counts_the_voxels_near_the_labels_where_the_refined_field_carries_them():
    labels = cube_labels()
    refined = torch.zeros(1, 3, 16, 16, 16)
    refined[:, 0] = 2.0  # every voxel samples the atlas 2 voxels further along the first axis: the cube moves back by 2
    weights = label_weights(labels, refined)
    low, high = (
        6 - 2 - LABEL_REACH,
        10 - 2 + LABEL_REACH,
    )  # along the first axis; the others keep 6 - reach .. 10 + reach
    inside = weights[0, 0, low:high, 6 - LABEL_REACH : 10 + LABEL_REACH, 6 - LABEL_REACH : 10 + LABEL_REACH]
    assert torch.allclose(inside, torch.ones_like(inside))
    assert weights.sum() == pytest.approx(inside.numel() + LABEL_FLOOR * (weights.numel() - inside.numel()))
    far = refined.clone()
    far[..., 0:2, 0:2, 0:2] += 3.0  # a corner far from the labels
    near = refined.clone()
    near[..., 5, 7, 7] += 3.0  # a voxel inside the moved cube
    assert teach_term(far, refined, weights) == pytest.approx(LABEL_FLOOR * 8 * 3 * 9 / (3 * weights.sum().item()))
    assert teach_term(near, refined, weights) == pytest.approx(3 * 9 / (3 * weights.sum().item()))


def test_fine_tuning_with_teach_moves_g_f_toward_its_refined_field(tmp_path, capsys):
    out = tmp_path / "taught.pt"
    args = train_argv(
        out, "--init", sample.demo_model_path(), "--teach", 100, "--lr", 1e-4, iterations=5, progress="jsonl"
    )
    assert main(args) == 0
    assert '"teach"' in capsys.readouterr().out  # a loss term of its own in the progress, as Slicer's curves show it
    before, after = load_model(sample.demo_model_path()), load_model(out)
    assert (
        after.weights.teach == 100
    )  # the weight given, whatever the --init model was taught with (the bundled one: 10)
    atlas, scan = pair(before)
    target = refine(before.networks.g_forward, before.weights, atlas, scan, 20)
    weights = label_weights(torch.from_numpy(before.atlas.one_hot).float()[None], target)  # where the term counts
    with torch.no_grad():
        distance = {
            name: teach_term(m.networks.g_forward(atlas, scan), target, weights).item()
            for name, m in (("before", before), ("after", after))
        }
    assert distance["after"] < 0.7 * distance["before"], (
        distance
    )  # measured 0.045 against 0.085; --teach 0 left it at 0.073


@pytest.mark.parametrize(
    "extra, words",
    [
        ([], ["--teach", "--init"]),
        (["--init", "MODEL", "--augment"], ["--teach", "--augment"]),
        (["--init", "MODEL", "--teach", "-1"], ["--teach -1"]),
    ],
)
def test_teach_is_refused_where_it_cannot_work(tmp_path, capsys, extra, words):
    out = tmp_path / "m.pt"
    extra = [str(sample.demo_model_path()) if e == "MODEL" else e for e in extra]
    teach = [] if "--teach" in extra else ["--teach", "10"]
    args = train_argv(out, *teach, *extra, iterations=1)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not out.exists()
