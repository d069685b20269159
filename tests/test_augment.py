"""Training-scan augmentation: the identity leaves a scan alone, shifts and rotations are in voxel units, gamma acts
on values."""

import math

import numpy as np
import pytest
import torch

from ltnet.augment import Augmentation, apply


def parameters(angles=(0.0, 0.0, 0.0), scales=(1.0, 1.0, 1.0), shifts=(0.0, 0.0, 0.0), gamma=1.0) -> torch.Tensor:
    return torch.tensor([[*angles, *scales, *shifts, gamma]])


def test_identity_parameters_leave_the_scan_unchanged():
    scan = torch.rand(1, 1, 9, 12, 15)
    assert torch.allclose(apply(scan, parameters()), scan, atol=1e-5)


def test_a_shift_is_in_voxels_along_x_y_z():
    scan = torch.rand(1, 1, 9, 12, 15)  # (D, H, W) = (z, y, x)
    moved = apply(scan, parameters(shifts=(1.0, 0.0, 2.0)))  # sampled at p + shift: x + 1 and z + 2
    assert torch.allclose(moved[..., :-2, :, :-1], scan[..., 2:, :, 1:], atol=1e-5)


def test_a_rotation_keeps_distances_in_voxels_on_a_non_cubic_grid():
    scan = torch.zeros(1, 1, 9, 13, 21)
    scan[0, 0, 4, 6 + 3, 10] = 1.0  # 3 voxels from the centre along y
    moved = apply(scan, parameters(angles=(0.0, 0.0, math.pi / 2)))  # about z: output (x, y) samples input (-y, x)
    # 3 voxels from the centre along x, not 3 scaled by the axes' lengths
    assert np.unravel_index(int(moved.argmax()), moved.shape[2:]) == (4, 6, 10 + 3)
    assert float(moved.max()) == pytest.approx(1.0, abs=1e-4)


def test_gamma_changes_contrast_and_values_stay_in_zero_one():
    scan = torch.full((1, 1, 8, 8, 8), 0.25)
    assert torch.allclose(apply(scan, parameters(gamma=2.0)), torch.full_like(scan, 0.0625))
    wild = apply(
        torch.rand(4, 1, 8, 8, 8),
        Augmentation(rotation_deg=30, scale=0.3, shift_voxels=3).draw(torch.Generator().manual_seed(0), 4),
    )
    assert float(wild.min()) >= 0.0 and float(wild.max()) <= 1.0


def test_draws_are_seeded_and_within_the_stated_bounds():
    augmentation = Augmentation()
    drawn = augmentation.draw(torch.Generator().manual_seed(5), 1000)
    assert torch.equal(drawn, augmentation.draw(torch.Generator().manual_seed(5), 1000))
    assert drawn[:, :3].abs().max() <= math.radians(augmentation.rotation_deg)
    assert (drawn[:, 3:6] - 1).abs().max() <= augmentation.scale
    assert drawn[:, 6:9].abs().max() <= augmentation.shift_voxels
    assert drawn[:, 9].log().std() == pytest.approx(augmentation.log_gamma_std, rel=0.1)
