"""The same scan in another frame: an oblique, anisotropic, larger grid over the same physical space.

What a different acquisition of the same anatomy looks like to the pre-alignment: the anatomy stays where it is
(LPS mm), only the grid it is sampled on changes (direction, spacing, field of view). Used to check that the
labels a transfer gives do not depend on the frame (tests/test_frame_invariance.py, benchmarks/frame.py).
"""

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

SPACINGS_MM = (1.0, 1.3, 1.7)  # per axis, in a random order
ANGLES_DEG = (10.0, 25.0)  # rotation of the grid about a random axis, drawn uniformly in this range
FIELD_OF_VIEW = 1.3  # the new grid's extent per axis, as a multiple of the image's own


@dataclass(frozen=True)
class Frame:
    """A grid's rotation (``angle_deg`` about the unit ``axis``, LPS), ``spacing`` (mm, x y z) and extent factor."""

    angle_deg: float
    axis: tuple[float, float, float]
    spacing: tuple[float, float, float]
    field_of_view: float = FIELD_OF_VIEW

    @classmethod
    def random(cls, rng: np.random.Generator, spacings=SPACINGS_MM) -> "Frame":
        """A frame drawn from ``rng``: angle in ``ANGLES_DEG``, uniform axis, ``spacings`` (mm) in a random order."""
        axis = rng.normal(size=3)
        return cls(
            float(rng.uniform(*ANGLES_DEG)),
            tuple((axis / np.linalg.norm(axis)).tolist()),
            tuple(float(s) for s in rng.permutation(spacings)),
        )

    def rotation(self) -> np.ndarray:
        """The 3x3 rotation matrix (Rodrigues)."""
        k = np.asarray(self.axis)
        cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        angle = np.deg2rad(self.angle_deg)
        return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def reframe_grid(image: sitk.Image, frame: Frame) -> sitk.Image:
    """An empty float32 image on ``frame``'s grid around ``image``: same centre, direction rotated, each axis
    ``field_of_view`` times the image's extent (mm) at ``frame.spacing``."""
    direction = frame.rotation() @ np.asarray(image.GetDirection()).reshape(3, 3)
    extent = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing()) * frame.field_of_view
    size = np.ceil(extent / np.asarray(frame.spacing)).astype(int)
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
    origin = centre - direction @ (np.asarray(frame.spacing) * (size - 1) / 2)
    grid = sitk.Image(size.tolist(), sitk.sitkFloat32)
    grid.SetSpacing(frame.spacing)
    grid.SetDirection(direction.flatten().tolist())
    grid.SetOrigin(origin.tolist())
    return grid


def reframe(image: sitk.Image, frame: Frame, labels: bool = False) -> sitk.Image:
    """``image`` resampled onto ``reframe_grid`` (linear; nearest neighbour for ``labels``), 0 outside it."""
    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    pixel = image.GetPixelID() if labels else sitk.sitkFloat32
    return sitk.Resample(image, reframe_grid(image, frame), sitk.Transform(), interpolator, 0.0, pixel)
