"""Teaching G_F with its own refined fields (`ltnet train --init M --teach W`, `ltnet.teach`)."""

import pytest
import torch

from ltnet import sample
from ltnet.cli import main
from ltnet.data.io import read_image
from ltnet.data.prepare import prepare_scan
from ltnet.model_file import load_model
from ltnet.refine import refine
from ltnet.teach import RefinedFields, teach_term

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


def test_fine_tuning_with_teach_moves_g_f_toward_its_refined_field(tmp_path, capsys):
    out = tmp_path / "taught.pt"
    args = ["train", "--atlas-image", sample.atlas_image_path(), "--atlas-labels", sample.atlas_labels_path(),
            "--images", sample.training_scan_paths()[0], "--out", out, "--iterations", 5, "--device", "cpu",
            "--init", sample.demo_model_path(), "--teach", 100, "--lr", 1e-4, "--progress", "jsonl"]
    assert main([str(a) for a in args]) == 0
    assert '"teach"' in capsys.readouterr().out  # a loss term of its own in the progress, as Slicer's curves show it
    before, after = load_model(sample.demo_model_path()), load_model(out)
    assert after.weights.teach == 100  # the weight given, whatever the --init model was taught with (the bundled one: 10)
    atlas, scan = pair(before)
    target = refine(before.networks.g_forward, before.weights, atlas, scan, 20)
    with torch.no_grad():
        distance = {name: teach_term(m.networks.g_forward(atlas, scan), target).item() for name, m in (("before", before), ("after", after))}
    assert distance["after"] < 0.8 * distance["before"], distance  # measured 0.118 against 0.163; --teach 0 left it at 0.165


@pytest.mark.parametrize("extra, words", [([], ["--teach", "--init"]), (["--init", "MODEL", "--augment"], ["--teach", "--augment"]),
                                          (["--init", "MODEL", "--teach", "-1"], ["--teach -1"])])
def test_teach_is_refused_where_it_cannot_work(tmp_path, capsys, extra, words):
    out = tmp_path / "m.pt"
    extra = [str(sample.demo_model_path()) if e == "MODEL" else e for e in extra]
    teach = [] if "--teach" in extra else ["--teach", "10"]
    args = ["train", "--atlas-image", sample.atlas_image_path(), "--atlas-labels", sample.atlas_labels_path(),
            "--images", sample.training_scan_paths()[0], "--out", out, "--iterations", 1, "--device", "cpu", *teach, *extra]
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not out.exists()
