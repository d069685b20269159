"""Scoring against reference labels (benchmarks, tests and the demo; never used in training)."""

import numpy as np
import SimpleITK as sitk


def dice_per_label(result: sitk.Image, reference: sitk.Image, values) -> dict[int, float]:
    """Dice of each label value between two label maps on the same grid (1.0 when both lack the label)."""
    a, b = sitk.GetArrayViewFromImage(result), sitk.GetArrayViewFromImage(reference)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in size: {a.shape} vs {b.shape}")
    scores = {}
    for value in values:
        x, y = a == value, b == value
        total = int(x.sum() + y.sum())
        scores[int(value)] = 1.0 if total == 0 else 2.0 * float((x & y).sum()) / total
    return scores


def labels_without_registration(atlas_labels: sitk.Image, target: sitk.Image) -> sitk.Image:
    """The atlas labels taken at the same physical points of the target (identity transform), nearest neighbour."""
    return sitk.Resample(atlas_labels, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0, atlas_labels.GetPixelID())


def labels_with_transform(atlas_labels: sitk.Image, target: sitk.Image, to_atlas: sitk.Transform) -> sitk.Image:
    """The atlas labels resampled onto the target through ``to_atlas`` (target points -> atlas points), nearest
    neighbour."""
    return sitk.Resample(atlas_labels, target, to_atlas, sitk.sitkNearestNeighbor, 0, atlas_labels.GetPixelID())


def hausdorff95_mm(result: sitk.Image, reference: sitk.Image, value: int) -> float:
    """95th percentile of the symmetric surface distance (mm) between one label in two maps on the same grid.

    NaN when either map lacks the label.
    """
    a = sitk.Cast(result == value, sitk.sitkUInt8)
    b = sitk.Cast(reference == value, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(a).any() or not sitk.GetArrayViewFromImage(b).any():
        return float("nan")
    distances = []
    for surface_of, distance_to in ((a, b), (b, a)):
        # GetArrayFromImage (a copy): a view of a temporary image dangles once the image is freed (segfault on large
        # grids).
        surface = sitk.GetArrayFromImage(sitk.LabelContour(surface_of)) > 0
        distance = sitk.GetArrayFromImage(
            sitk.Abs(sitk.SignedMaurerDistanceMap(distance_to, squaredDistance=False, useImageSpacing=True))
        )
        distances.append(distance[surface])
    return float(np.percentile(np.concatenate(distances), 95))
