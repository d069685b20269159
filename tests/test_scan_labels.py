"""Labels onto the scan grid in torch agree with SimpleITK resampling along the same composite transform."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from geometry_helpers import oblique_direction
from ltnet.data.grid import NetworkGrid, argmax_labels, resample
from ltnet.scan_labels import affine_matrix, labels_on_scan

VALUES = [0, 3, 17]


def atlas_labels_on_grid(grid: NetworkGrid) -> torch.Tensor:
    """Soft one-hot ``(3, D, H, W)``: two nested blobs (values 3 and 17), smoothed so borders are partial."""
    d, h, w = grid.size[2], grid.size[1], grid.size[0]
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    radius = np.sqrt(((z - d / 2) / d) ** 2 + ((y - h / 2.3) / h) ** 2 + ((x - w / 1.8) / w) ** 2)
    hard = np.where(radius < 0.18, 2, np.where(radius < 0.33, 1, 0))
    one_hot = torch.from_numpy(np.stack([hard == k for k in range(3)]).astype(np.float32))
    return torch.nn.functional.avg_pool3d(one_hot[None], 3, stride=1, padding=1)[0]


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
    grid = NetworkGrid((24, 32, 24), 1.3, (-15.0, -19.0, -16.0), oblique_direction(-10.0))
    one_hot = atlas_labels_on_grid(grid)
    generator = torch.Generator().manual_seed(0)
    forward = torch.nn.functional.avg_pool3d(4 * torch.randn(1, 3, 24, 32, 24, generator=generator), 7, stride=1, padding=3)[0]
    scan, to_grid = oblique_scan(), to_grid_affine()

    labels = labels_on_scan(one_hot, forward, grid, scan, to_grid, VALUES)

    to_atlas = sitk.CompositeTransform([grid.displacement_transform(forward.numpy()), to_grid])
    expected = argmax_labels(
        np.stack([sitk.GetArrayFromImage(resample(grid.image_from_array(c), scan, to_atlas, default=1.0 if k == 0 else 0.0)) for k, c in enumerate(one_hot.numpy())]),
        VALUES,
    )
    got = sitk.GetArrayFromImage(labels)
    assert labels.GetSize() == scan.GetSize()
    assert labels.GetOrigin() == scan.GetOrigin() and labels.GetSpacing() == scan.GetSpacing() and labels.GetDirection() == scan.GetDirection()
    assert set(np.unique(got)) == set(VALUES)  # all labels land on the scan
    assert (got == expected).mean() > 0.999


def test_affine_matrix_reproduces_the_transform_and_rejects_a_non_affine_one():
    transform = to_grid_affine()
    matrix = affine_matrix(transform)
    point = np.array([4.0, -9.0, 2.5])
    np.testing.assert_allclose(matrix[:3, :3] @ point + matrix[:3, 3], transform.TransformPoint(point.tolist()), atol=1e-9)
    field = sitk.Image([8, 8, 8], sitk.sitkVectorFloat64)
    field.SetPixel([3, 4, 5], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="not affine"):
        affine_matrix(sitk.DisplacementFieldTransform(field))
