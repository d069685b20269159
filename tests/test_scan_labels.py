"""Labels onto the scan grid in torch agree with SimpleITK resampling along the same composite transform,
and keep the atlas's own resolution however coarse the network grid."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from geometry_helpers import oblique_direction

from ltnet.data.grid import NetworkGrid, argmax_labels, resample
from ltnet.data.prepare import channel_indices
from ltnet.scan_labels import (
    affine_matrix,
    labels_at,
    labels_on_scan,
    near_foreground,
    trilinear_votes,
    with_background_border,
)

VALUES = [0, 3, 17]


def atlas_label_map() -> sitk.Image:
    """Label values 3 and 17 as two nested blobs on an oblique, anisotropic atlas grid (not the network grid's)."""
    size = (34, 27, 19)
    z, y, x = np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij")
    radius = np.sqrt(((z - 9.5) / 19) ** 2 + ((y - 12) / 27) ** 2 + ((x - 18) / 34) ** 2)
    labels = sitk.GetImageFromArray(np.where(radius < 0.18, 17, np.where(radius < 0.33, 3, 0)).astype(np.int16))
    labels.SetSpacing([0.9, 1.2, 1.6])
    labels.SetDirection(oblique_direction(-14.0))
    labels.SetOrigin([-16.0, -15.0, -14.0])
    return labels


def oblique_scan() -> sitk.Image:
    scan = sitk.Image([37, 29, 23], sitk.sitkFloat32)
    scan.SetSpacing([0.9, 1.1, 2.3])
    scan.SetDirection(oblique_direction(25.0))
    scan.SetOrigin([-14.0, -20.0, -22.0])
    return scan


def to_grid_affine() -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([1.05, 0.08, -0.03, -0.06, 0.97, 0.05, 0.02, -0.04, 1.02])
    transform.SetTranslation([1.5, -2.0, 0.7])
    transform.SetCenter([3.0, 1.0, -2.0])
    return transform


def test_labels_on_scan_match_simpleitk_along_the_composite_transform():
    grid = NetworkGrid((16, 24, 16), 2.1, (-15.0, -19.0, -16.0), oblique_direction(-10.0))
    atlas = atlas_label_map()
    generator = torch.Generator().manual_seed(0)
    forward = torch.nn.functional.avg_pool3d(
        3 * torch.randn(1, 3, 16, 24, 16, generator=generator), 5, stride=1, padding=2
    )[0]
    scan, to_grid = oblique_scan(), to_grid_affine()

    labels = labels_on_scan(channel_indices(atlas, VALUES), VALUES, forward, grid, scan, to_grid)

    to_atlas = sitk.CompositeTransform([grid.displacement_transform(forward.numpy()), to_grid])
    masks = [sitk.Cast(atlas == value, sitk.sitkFloat32) for value in VALUES]
    expected = argmax_labels(
        np.stack(
            [
                sitk.GetArrayFromImage(resample(m, scan, to_atlas, default=1.0 if k == 0 else 0.0))
                for k, m in enumerate(masks)
            ]
        ),
        VALUES,
    )
    got = sitk.GetArrayFromImage(labels)
    assert labels.GetSize() == scan.GetSize()
    assert (
        labels.GetOrigin() == scan.GetOrigin()
        and labels.GetSpacing() == scan.GetSpacing()
        and labels.GetDirection() == scan.GetDirection()
    )
    assert set(np.unique(got)) == set(VALUES)  # all labels land on the scan
    assert (got == expected).mean() > 0.998  # SimpleITK differs only within half a voxel of the atlas's border


def test_a_coarse_grid_keeps_one_voxel_thin_atlas_labels():
    """With a zero field and no pre-alignment, transfer onto the atlas's own grid gives back its labels exactly,
    though the grid is 3-5 times coarser."""
    atlas = sitk.Image([40, 36, 32], sitk.sitkUInt8)
    atlas.SetSpacing([1.0, 0.8, 1.4])
    atlas.SetDirection(oblique_direction(30.0))
    array = np.zeros((32, 36, 40), np.uint8)
    array[8:24, 10:26, 12:28] = 3  # a block, with a one-voxel sheet of label 17 through it and a one-voxel line off it
    array[8:24, 17, 12:28] = 17
    array[16, 30, 5:35] = 17
    labels = sitk.GetImageFromArray(array)
    labels.CopyInformation(atlas)
    grid = NetworkGrid.around(labels, (10, 8, 12), 8)
    assert grid.spacing > 2.5 * max(labels.GetSpacing())

    got = labels_on_scan(
        channel_indices(labels, VALUES), VALUES, torch.zeros(3, *grid.size[::-1]), grid, labels, sitk.AffineTransform(3)
    )

    assert (sitk.GetArrayFromImage(got) == array).all()


def test_votes_are_the_trilinear_weights_of_the_neighbouring_labels():
    channels = torch.tensor([[[0, 1], [2, 1]], [[1, 1], [0, 2]]], dtype=torch.uint8)  # (D, H, W) = (2, 2, 2)
    points = [
        [0.5, 0.5, 0.5],
        [0.0, 0.0, 0.0],
        [0.25, 1.0, 0.0],
        [-0.5, 0.0, 0.0],
        [1.0, 1.5, 1.0],
        [7.0, -3.0, 0.5],
        [0.5, 0.5, 9.0],
    ]
    votes = trilinear_votes(with_background_border(channels), torch.tensor(points, dtype=torch.float64), 3)
    np.testing.assert_allclose(votes[0], [2 / 8, 4 / 8, 2 / 8])  # the cube's centre: each of the 8 voxels weighs 1/8
    np.testing.assert_allclose(votes[1], [1, 0, 0])  # on a voxel: that voxel's label
    np.testing.assert_allclose(votes[2], [0, 0.25, 0.75])  # between (x 0, y 1, z 0) = 2 and (x 1, y 1, z 0) = 1
    np.testing.assert_allclose(votes[3], [1, 0, 0])  # half outside, half on a background voxel: background
    np.testing.assert_allclose(votes[4], [0.5, 0, 0.5])  # half a voxel past (x 1, y 1, z 1) = 2
    np.testing.assert_allclose(votes[5:], [[1, 0, 0], [1, 0, 0]])  # far outside: background
    np.testing.assert_allclose(votes.sum(1), 1.0)


def test_points_far_from_any_label_take_the_background_without_votes_and_the_rest_their_largest_vote():
    channels = torch.zeros(12, 10, 14, dtype=torch.uint8)
    channels[4:7, 3:5, 6:9] = 1
    channels[5, 4, 7] = 2  # one voxel of the second label inside the first
    padded = with_background_border(channels)
    near = near_foreground(padded)
    table = torch.tensor([0, 3, 17], dtype=torch.int32)
    points = torch.rand(20000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    points = points * torch.tensor([18.0, 14.0, 16.0], dtype=torch.float64) - 2.0  # x y z, past every border
    expected = table[trilinear_votes(padded, points, 3).argmax(1)]
    got = labels_at(padded, near, points, table)
    assert torch.equal(got, expected)
    assert (got == 3).sum() > 50 and (got == 17).sum() > 0 and (got == 0).sum() > 10000  # all three cases met
    cells = (near.sum().item(), near.numel())
    assert cells == (4 * 3 * 4, 13 * 11 * 15)  # 3x2x3 foreground voxels touch 4x3x4 of the (D+1)(H+1)(W+1) cells


def test_affine_matrix_reproduces_the_transform_and_rejects_a_non_affine_one():
    transform = to_grid_affine()
    matrix = affine_matrix(transform)
    point = np.array([4.0, -9.0, 2.5])
    np.testing.assert_allclose(
        matrix[:3, :3] @ point + matrix[:3, 3], transform.TransformPoint(point.tolist()), atol=1e-9
    )
    field = sitk.Image([8, 8, 8], sitk.sitkVectorFloat64)
    field.SetPixel([3, 4, 5], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="not affine"):
        affine_matrix(sitk.DisplacementFieldTransform(field))
