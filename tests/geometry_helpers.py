"""Images with chosen geometry for the core tests (a plain module: both conftest files share the name `conftest`)."""

import numpy as np
import SimpleITK as sitk


def oblique_direction(degrees: float = 20.0) -> tuple[float, ...]:
    """A rotation about an oblique axis, as a row-major 3x3 direction."""
    axis = np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])
    angle = np.deg2rad(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    return tuple(rotation.flatten())


def resample_onto(image: sitk.Image, size, spacing, direction, interpolator=sitk.sitkLinear) -> sitk.Image:
    """``image`` resampled onto a new grid with the same physical centre."""
    reference = sitk.Image([int(s) for s in size], image.GetPixelID())
    reference.SetSpacing(spacing)
    reference.SetDirection(direction)
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
    offset = np.asarray(direction).reshape(3, 3) @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2)
    reference.SetOrigin((centre - offset).tolist())
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, 0.0, image.GetPixelID())
