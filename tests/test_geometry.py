"""Geometry is sacred: results lie exactly on the target's grid, oblique and anisotropic included."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from geometry_helpers import oblique_direction, resample_onto

from ltnet.data.grid import REFINE_MAX_VOXELS, NetworkGrid
from ltnet.data.io import LabelMap
from ltnet.data.labels import default_labels
from ltnet.data.prepare import Atlas
from ltnet.metrics import dice_per_label
from ltnet.model_file import LTNetModel
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import LTNetNetworks, NetworkConfig
from ltnet.nn.warp import field_on_grid
from ltnet.transfer import transfer


def identity_model(atlas_image, atlas_labels, content_size=None) -> LTNetModel:
    """A model whose forward network outputs exactly zero displacement (grid: the atlas's voxels, or
    ``content_size``)."""
    torch.manual_seed(0)
    networks = LTNetNetworks(NetworkConfig())
    for net in (networks.g_forward, networks.g_backward):
        torch.nn.init.zeros_(net.unet.net[1].final_conv_out.conv.weight)
    label_map = LabelMap(atlas_labels, default_labels([1, 2]))
    atlas = Atlas.on_grid(atlas_image, label_map, content_size or atlas_image.GetSize(), NetworkConfig().grid_multiple)
    return LTNetModel(networks, atlas, LossWeights.paper())


def test_network_grid_holds_the_atlas_and_is_padded():
    image = sitk.Image([50, 30, 20], sitk.sitkFloat32)
    image.SetSpacing([0.5, 1.0, 2.0])
    image.SetDirection(oblique_direction())
    grid = NetworkGrid.around(image, (25, 30, 40), 8)
    assert grid.size == (32, 32, 40) and grid.spacing == 1.0
    centre = image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()])
    reference = grid.reference()
    assert np.allclose(reference.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in grid.size]), centre)


def test_a_finer_grid_covers_the_same_box():
    grid = NetworkGrid((32, 40, 48), 2.0, (3.0, -4.0, 5.0), oblique_direction())
    finer = grid.finer(3)
    assert finer.size == (94, 118, 142) and finer.spacing == 2.0 / 3
    coarse, fine = grid.reference(), finer.reference()
    for index in ([0, 0, 0], [31, 39, 47], [5, 17, 30]):
        assert np.allclose(
            coarse.TransformIndexToPhysicalPoint(index), fine.TransformIndexToPhysicalPoint([3 * i for i in index])
        )


def test_a_grid_finer_by_a_factor_that_is_not_whole_covers_the_box_and_at_most_one_voxel_more():
    grid = NetworkGrid((32, 40, 48), 3.0, (3.0, -4.0, 5.0), oblique_direction())
    finer = grid.finer(1.5)
    assert finer.size == (48, 60, 72) and finer.spacing == 2.0  # 31·1.5 = 46.5 voxels up to the last centre, rounded up
    coarse, fine = grid.reference(), finer.reference()
    for index in ([0, 0, 0], [2, 4, 6], [30, 38, 46]):  # even indices land on fine voxels
        assert np.allclose(
            coarse.TransformIndexToPhysicalPoint(index), fine.TransformIndexToPhysicalPoint([i * 3 // 2 for i in index])
        )
    last = fine.TransformPhysicalPointToContinuousIndex(coarse.TransformIndexToPhysicalPoint([31, 39, 47]))
    assert np.allclose(last, [46.5, 58.5, 70.5]) and all(i <= n - 1 for i, n in zip(last, finer.size))


@pytest.mark.parametrize("factor", [2.0, 1.5, 0.5])
def test_a_field_moves_between_grids_with_its_values_in_the_new_voxels(factor):
    size = (9, 13, 11)
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in size], indexing="ij"))
    linear = (0.3 * index + torch.tensor([1.0, -2.0, 0.5]).view(3, 1, 1, 1))[
        None
    ]  # trilinear sampling keeps it exactly
    new_size = tuple(math.ceil((n - 1) * factor - 1e-6) + 1 for n in size)
    moved = field_on_grid(linear, factor, new_size)
    new_index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in new_size], indexing="ij"))
    within = (new_index / factor <= torch.tensor(size).view(3, 1, 1, 1) - 1).all(
        0
    )  # beyond the old grid: its edge value
    expected = factor * (0.3 * new_index / factor + torch.tensor([1.0, -2.0, 0.5]).view(3, 1, 1, 1))
    assert torch.allclose(moved[0][:, within], expected[:, within], atol=1e-4)
    if factor == 2.0:  # a whole factor: what upsampling with align_corners=True gives
        upsampled = 2.0 * torch.nn.functional.interpolate(linear, size=new_size, mode="trilinear", align_corners=True)
        assert torch.allclose(moved, upsampled, atol=1e-5)


def test_physical_displacement_follows_direction_and_spacing():
    grid = NetworkGrid((32, 32, 32), 2.0, (0.0, 0.0, 0.0), oblique_direction())
    displacement = np.zeros((3, 32, 32, 32))
    displacement[2] = 1.0  # one voxel along x (tensor axis W)
    vector = grid.displacement_to_physical(displacement)[0, 0, 0]
    assert np.allclose(vector, 2.0 * np.asarray(oblique_direction()).reshape(3, 3)[:, 0])


@pytest.mark.parametrize("finer_by", [None, 2.0, 1.5])
def test_oblique_anisotropic_target_gets_labels_on_its_own_grid(atlas_image, atlas_labels, finer_by, monkeypatch):
    # refined: a 2.2 mm network grid, refined on a 1.1 mm one (ltnet.refine.refinement_grid), or on 1.47 mm within a
    # smaller budget
    refine_on_a_finer_grid = finer_by is not None
    model = identity_model(atlas_image, atlas_labels, (18, 24, 18) if refine_on_a_finer_grid else None)
    if finer_by == 1.5:
        monkeypatch.setitem(REFINE_MAX_VOXELS, "cpu", math.prod(model.grid.finer(1.5).size))
    spacing, direction = (0.8, 1.3, 1.1), oblique_direction(25)
    size = [round(n / s) for n, s in zip(atlas_image.GetSize(), spacing)]
    target = resample_onto(atlas_image, size, spacing, direction)
    expected = resample_onto(atlas_labels, size, spacing, direction, sitk.sitkNearestNeighbor)

    result = transfer(model, target, prealign=False, refine_steps=3 if refine_on_a_finer_grid else 0)

    for image in (result.labels, result.warped_atlas, result.field, result.jacobian, result.inverse_consistency):
        assert image.GetSize() == target.GetSize()
        assert image.GetOrigin() == target.GetOrigin()
        assert image.GetSpacing() == target.GetSpacing()
        assert image.GetDirection() == target.GetDirection()
    dice = dice_per_label(result.labels, expected, [1, 2])
    assert min(dice.values()) > 0.85, dice
    if refine_on_a_finer_grid:  # 3 Adam steps of 0.5 voxel move the field by at most 1.5 voxels, without folding
        assert np.abs(sitk.GetArrayViewFromImage(result.field)).max() < 1.5 * model.grid.spacing / finer_by + 0.05
        assert sitk.GetArrayViewFromImage(result.jacobian).min() > 0  # on the scan
        assert result.qc["folded_fraction"] < 1e-4  # on the 63³ (48³) refinement grid: measured 2.4e-5 (6 voxels)
        size = 63 if finer_by == 2.0 else 48
        assert result.qc["refinement"] == {
            "steps": 3,
            "grid_size": [size] * 3,
            "spacing_mm": round(model.grid.spacing / finer_by, 4),
        }
        return
    # with a zero field, the displacement is zero and nothing folds
    assert np.abs(sitk.GetArrayViewFromImage(result.field)).max() < 1e-6
    assert np.allclose(sitk.GetArrayViewFromImage(result.jacobian), 1.0, atol=1e-5)
    assert result.qc["label_cycle_dice_mean"] > 0.999 and result.qc["folded_fraction"] == 0.0


def test_displacement_field_works_as_a_transform(atlas_image, atlas_labels, tmp_path):
    model = identity_model(atlas_image, atlas_labels)
    with torch.no_grad():  # a known field: every forward displacement is 2 voxels along tensor axis H (y)
        model.networks.g_forward.unet.net[1].final_conv_out.conv.bias.copy_(torch.tensor([0.0, 2.0, 0.0]))
    target = resample_onto(atlas_image, [30, 40, 36], (1.2, 1.2, 1.2), oblique_direction(10))
    result = transfer(model, target, prealign=False)
    field = sitk.GetArrayViewFromImage(result.field)
    expected = 2.0 * model.grid.spacing * np.asarray(model.grid.direction).reshape(3, 3)[:, 1]
    centre = tuple(s // 2 for s in field.shape[:3])
    assert np.allclose(field[centre], expected, atol=1e-4)
    transform = sitk.DisplacementFieldTransform(sitk.Image(result.field))
    sitk.WriteTransform(transform, str(tmp_path / "field.h5"))
    loaded = sitk.ReadTransform(str(tmp_path / "field.h5"))
    point = target.TransformIndexToPhysicalPoint(centre[::-1])
    assert np.allclose(loaded.TransformPoint(point), np.asarray(point) + expected, atol=1e-4)
