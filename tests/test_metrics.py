"""Scoring helpers on grids large enough that a dangling array view would crash (regression: HD95 segfaulted on
brains)."""

import numpy as np
import SimpleITK as sitk

from ltnet.metrics import dice_per_label, hausdorff95_mm


def _box(shape, start, stop, spacing) -> sitk.Image:
    array = np.zeros(shape, np.uint8)
    array[tuple(slice(a, b) for a, b in zip(start, stop))] = 1
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


def test_hausdorff95_on_a_brain_sized_grid_is_the_shift_in_mm():
    shape = (256, 128, 256)  # z, y, x as in IBSR
    a = _box(shape, (60, 30, 60), (200, 100, 200), (1.0, 1.5, 1.0))
    b = _box(shape, (60, 30, 63), (200, 100, 203), (1.0, 1.5, 1.0))  # shifted 3 voxels = 3 mm along x
    assert hausdorff95_mm(a, b, 1) == 3.0
    assert 0.97 < dice_per_label(a, b, [1])[1] < 0.98
