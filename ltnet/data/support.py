"""Where an image shows anatomy (its support), and the image on a working grid that does not depend on its frame.

A scan resampled onto a larger or oblique grid is padded with zeros: the padding is part of its grid but shows
nothing. The support is every voxel but the zeros connected to the grid's border. The pre-alignment
(``ltnet.data.prealign``) registers a scan on a working grid built from its support alone: the atlas's direction,
one isotropic spacing, the support's bounding box; so the same anatomy sampled on different grids gives nearly
the same working image.
"""

import math

import numpy as np
import SimpleITK as sitk

from ltnet.data.grid import no_finer_than


def support(image: sitk.Image) -> sitk.Image:
    """uint8 mask on ``image``'s grid: 1 everywhere but on the zero voxels connected (by faces) to the border.

    An image without such zeros is all support; an image of zeros only too (nothing to tell apart).
    """
    zero = sitk.Cast(sitk.Equal(image, 0.0), sitk.sitkUInt8)
    shell = sitk.ConstantPad(zero, [1] * 3, [1] * 3, 1)  # a border of "zero" joins every border region
    outside = sitk.ConnectedThreshold(shell, seedList=[(0, 0, 0)], lower=1, upper=1)
    mask = sitk.Cast(1 - sitk.Crop(outside, [1] * 3, [1] * 3), sitk.sitkUInt8)
    mask.CopyInformation(image)
    if not sitk.GetArrayViewFromImage(mask).any():
        mask = sitk.Cast(mask + 1, sitk.sitkUInt8)
    return mask


def inner_support(image: sitk.Image) -> sitk.Image:
    """``support`` less its outermost layer of voxels (one voxel along each axis, the grid's border included): the
    voxels a metric can trust. Where a scan was resampled onto a padded grid, the support's edge voxels mix the
    anatomy with the padding (linear interpolation), and where it was not, the border layer is the crop's edge; both
    frames lose the same thin shell, so both leave the metric the same anatomy. On the 59 hippocampus scans reframed
    as in ``ltnet.data.reframe`` this about halved the pre-alignment's change with the frame (the mean distance over
    the atlas labels between the two frames' affines: 0.94 to 0.50 mm; docs/BENCHMARKS.md, "Frame invariance"). A
    support too thin to lose a layer is kept whole.
    """
    whole = support(image)
    inner = box_eroded(sitk.GetArrayViewFromImage(whole) > 0)
    if not inner.any():
        return whole
    mask = sitk.GetImageFromArray(inner.view(np.uint8))
    mask.CopyInformation(whole)
    return mask


def box_eroded(mask: np.ndarray) -> np.ndarray:
    """``mask`` (bool, any shape) less every voxel with a neighbour outside it, by face, edge or corner, or outside the
    grid: the erosion by a box of 3 voxels a side (SimpleITK's ``BinaryErode`` with radius 1, ``sitkBox`` and the
    border as background), one axis at a time, several times faster at a whole-brain grid."""
    eroded = mask.copy()
    for axis in range(mask.ndim):
        inside = np.moveaxis(eroded, axis, 0)  # a view: writing it writes ``eroded``
        kept = inside[1:-1] & inside[:-2] & inside[2:]
        inside[1:-1] = kept
        inside[[0, -1]] = False
    return eroded


def working_spacing(image: sitk.Image, max_voxels: int) -> float:
    """The isotropic spacing (mm) at which ``image``'s grid holds at most ``max_voxels``, no finer than its own."""
    volume = math.prod(n * s for n, s in zip(image.GetSize(), image.GetSpacing()))
    return max(min(image.GetSpacing()), (volume / max_voxels) ** (1 / 3))


def on_working_grid(
    image: sitk.Image, spacing: float, direction, max_voxels: int, region: sitk.Image | None = None
) -> tuple[sitk.Image, sitk.Image]:
    """``image`` (float32, linear) and ``region`` (uint8 mask on ``image``'s grid, nearest neighbour; None: the
    whole grid, all ones) on a grid in ``direction`` (row-major 3x3) at ``spacing`` mm, coarser if needed to stay
    within ``max_voxels``, covering ``region``'s bounding box. An image already in ``direction`` at ``spacing``
    keeps its voxel centres (no interpolation blur).
    """
    if region is None:
        region = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
        region.CopyInformation(image)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(region)
    start, size = np.split(np.asarray(shape.GetBoundingBox(1), dtype=float), 2)
    corners = [start - 0.5 + size * np.asarray(c) for c in np.ndindex(2, 2, 2)]  # voxel edges, continuous index
    rows = np.asarray(direction, dtype=float).reshape(3, 3)
    along = np.asarray([rows.T @ image.TransformContinuousIndexToPhysicalPoint(c.tolist()) for c in corners])
    low, extent = along.min(axis=0), np.ptp(along, axis=0)
    spacing = max(spacing, (math.prod(extent) / max_voxels) ** (1 / 3))
    grid = sitk.Image([max(1, math.ceil(e / spacing - 1e-6)) for e in extent], sitk.sitkFloat32)
    grid.SetSpacing([spacing] * 3)
    grid.SetDirection(rows.flatten().tolist())
    grid.SetOrigin((rows @ (low + spacing / 2)).tolist())
    coarse = no_finer_than(image, spacing)
    resampled = sitk.Resample(coarse, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return resampled, sitk.Resample(region, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
