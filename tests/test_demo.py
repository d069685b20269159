"""``ltnet demo`` without matplotlib (a plain ``pip install``), and the figure's explanations."""

import json
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from ltnet import sample
from ltnet.cli import main
from ltnet.data.labels import LabelInfo
from ltnet.figure import CYCLE_ERROR_NOTE, FIGURE_HINT, missing_figure_support, row_title, slice_name

needs_demo_model = pytest.mark.skipif(
    not sample.demo_model_path().exists(), reason="the bundled demo model is built by benchmarks/build_demo_model.py"
)


def block_matplotlib(monkeypatch):
    """Make ``import matplotlib`` fail as it does where the package is not installed."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import then raises ModuleNotFoundError


@needs_demo_model
def test_demo_without_matplotlib_writes_labels_and_qc_and_says_how_to_get_the_figure(tmp_path, capsys, monkeypatch):
    block_matplotlib(monkeypatch)
    assert missing_figure_support() is not None
    code = main(["demo", "--out", str(tmp_path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    names = [p.name[: -len(".nii.gz")] for p in sample.held_out_scan_paths()]
    for name in names:
        labels = sitk.ReadImage(str(tmp_path / "labels" / f"{name}.nii.gz"))
        assert set(np.unique(sitk.GetArrayViewFromImage(labels))) == {0, 1, 2}
        assert json.loads((tmp_path / "qc" / f"{name}.json").read_text())["verdict"] in ("OK", "check", "likely failed")
        assert f"{name}: Dice LTNet" in err
    assert not (tmp_path / "demo.png").exists()
    hint = [line for line in err.splitlines() if FIGURE_HINT in line]
    assert len(hint) == 1 and "matplotlib" in hint[0], err
    assert "demo.png" not in err


def test_missing_figure_support_is_none_with_matplotlib():
    pytest.importorskip("matplotlib")
    assert missing_figure_support() is None


def oriented_image(direction) -> sitk.Image:
    image = sitk.Image(6, 5, 4, sitk.sitkFloat32)
    image.SetDirection(direction)
    return image


def test_slice_name_names_the_plane_from_the_direction():
    assert slice_name(oriented_image((1, 0, 0, 0, 1, 0, 0, 0, 1)), 2) == "axial slice 2 of 4"
    # third voxel axis along P (rows of the direction matrix are L, P, S): coronal slices
    assert slice_name(oriented_image((1, 0, 0, 0, 0, 1, 0, -1, 0)), 0) == "coronal slice 0 of 4"
    # third voxel axis mostly along L, slightly oblique: sagittal
    c, s = np.cos(0.2), np.sin(0.2)
    assert slice_name(oriented_image((0, 0, c, 0, 1, 0, -1, 0, s)), 3).startswith("sagittal slice 3")


def test_row_title_holds_dice_and_qc_verdict():
    title = row_title("scan_1", {1: 0.731, 2: 0.694}, {"verdict": "check", "score": 0.8295})
    assert title == "scan_1, Dice 0.73 / 0.69 (mean 0.71), QC verdict check (score 0.83)"
    assert row_title("scan_1", None, None) == "scan_1"


def test_figure_explains_itself(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from ltnet.figure import build_figure, transfer_figure

    labels = sitk.Image(8, 8, 6, sitk.sitkUInt8)
    labels[2:5, 2:5, 3] = 1
    labels[5:7, 5:7, 3] = 2
    image = sitk.Cast(labels, sitk.sitkFloat32)
    row = {
        "atlas": image,
        "atlas_labels": labels,
        "target": image,
        "labels": labels,
        "cycle_error": image * 0.01,
        "name": "scan_1",
        "dice": {1: 0.9, 2: 0.8},
        "qc": {"verdict": "OK", "score": 1.02, "image_cycle_error": 0.0251},
    }
    info = [LabelInfo(1, "Anterior hippocampus", (0.85, 0.4, 0.25)), LabelInfo(2, "Posterior", (0.25, 0.6, 0.85))]
    fig = build_figure([row], info)
    from matplotlib.text import Text

    texts = [t.get_text() for t in fig.findobj(Text)]
    assert "Anterior hippocampus" in texts and "Posterior" in texts  # the legend
    assert "scan_1, Dice 0.90 / 0.80 (mean 0.85), QC verdict OK (score 1.02)" in texts
    assert "atlas, axial slice 3 of 6" in texts and "transferred labels, axial slice 3 of 6" in texts
    assert "image cycle error on the atlas slice (mean 0.025)" in texts
    assert any(t.startswith("|l - l̄|") for t in texts)  # the colour bar's label
    assert CYCLE_ERROR_NOTE in texts
    plt.close(fig)
    transfer_figure(tmp_path / "f.png", [row], info)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
