"""The network grid Ω and the moves between an image's own grid and it.

The network grid lies in the atlas's physical space (LPS mm, as ITK): the
atlas's direction, an isotropic spacing chosen so the atlas fits the requested
size, centred on the atlas, and padded up to the multiple the U-Net needs.
Arrays on it are ``(D, H, W)`` = SimpleITK's ``(z, y, x)`` order.
"""

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

MIN_SIZE = 32  # voxels per axis: the discriminator's three stride-2 layers need at least this
#: The most voxels test-time refinement takes a grid finer than the network's to, per device type (``ltnet.refine``).
#: CPU: a step costs about 0.4 µs per voxel on one core, so 20 steps at 2^21 take about 16 s
#: (IBSR at 2 mm, docs/BENCHMARKS.md);
#: CUDA: 20 steps at 160x192x224 (6.9 million voxels) took 2.0 s in 4.5 GiB on an H100; an IBSR scan refined at
#: 190x142x190 (5.1 million) took about 2.6 s on an H200, pre-alignment included.
REFINE_MAX_VOXELS = {"cpu": 2**21, "cuda": 2**23}
#: Steps between the factors ``NetworkGrid.finest_within`` tries: a 3 mm grid refines at 2 mm (x1.5) within the CPU
#: budget.
FINER_STEP = 0.5


@dataclass(frozen=True)
class NetworkGrid:
    """Size (x, y, z voxels), isotropic spacing (mm), origin (LPS mm) and direction (row-major 3x3)."""

    size: tuple[int, int, int]
    spacing: float
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def around(cls, image: sitk.Image, content_size, multiple: int) -> "NetworkGrid":
        """A grid holding all of ``image`` in ``content_size`` voxels (x, y, z), padded to ``multiple`` and at least
        32."""
        extent = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())
        spacing = float(max(extent / np.asarray(content_size, dtype=float)))
        size = tuple(max(MIN_SIZE, int(math.ceil(c / multiple) * multiple)) for c in content_size)
        direction = np.asarray(image.GetDirection()).reshape(3, 3)
        centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
        origin = centre - direction @ (spacing * (np.asarray(size) - 1) / 2)
        if np.allclose(image.GetSpacing(), spacing, rtol=1e-4):  # keep grid voxels on atlas voxels: no half-voxel blur
            origin = np.asarray(
                image.TransformContinuousIndexToPhysicalPoint(
                    np.round(image.TransformPhysicalPointToContinuousIndex(origin.tolist())).tolist()
                )
            )
        return cls(size, spacing, tuple(origin.tolist()), tuple(direction.flatten().tolist()))

    def reference(self) -> sitk.Image:
        """An empty float32 image on this grid, for resampling onto it."""
        image = sitk.Image(list(self.size), sitk.sitkFloat32)
        image.SetSpacing([self.spacing] * 3)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def image_from_array(self, array: np.ndarray) -> sitk.Image:
        """A SimpleITK image on this grid from a ``(D, H, W)`` array."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
        image.CopyInformation(self.reference())
        return image

    def finer(self, factor: float) -> "NetworkGrid":
        """The same box with ``factor`` times the voxels per mm: spacing ``/ factor``, the same origin, and
        size ``(n - 1)·factor + 1`` (rounded up, so a factor that is not whole covers the box and at most one
        voxel more).

        Index ``i`` here is index ``factor·i`` there; a whole factor keeps the last voxel centre too, so a
        field upsampled with ``align_corners=True`` lands on it exactly (``ltnet.nn.warp.field_on_grid``
        handles any factor).
        """
        return NetworkGrid(
            tuple(math.ceil((n - 1) * factor - 1e-6) + 1 for n in self.size),
            self.spacing / factor,
            self.origin,
            self.direction,
        )

    def finest_within(self, spacing: float, max_voxels: int) -> "NetworkGrid":
        """This grid made finer (``finer``) by the largest factor, in steps of ``FINER_STEP``, that keeps its
        spacing no finer than ``spacing`` (mm) and its size within ``max_voxels``; itself when none above 1 does."""
        factor = 1.0
        while (
            self.spacing / (factor + FINER_STEP) >= spacing * 0.99
            and math.prod(self.finer(factor + FINER_STEP).size) <= max_voxels
        ):
            factor += FINER_STEP
        return self.finer(factor) if factor > 1.0 else self

    def displacement_to_physical(self, displacement: np.ndarray) -> np.ndarray:
        """Voxel displacements ``(3, D, H, W)`` (tensor axis order) -> LPS mm vectors ``(D, H, W, 3)``."""
        index_xyz = displacement[::-1].reshape(3, -1) * self.spacing
        physical = np.asarray(self.direction).reshape(3, 3) @ index_xyz
        return physical.T.reshape(*displacement.shape[1:], 3)

    def displacement_transform(self, displacement: np.ndarray) -> sitk.Transform:
        """An ITK transform ``p -> p + Δ(p)`` (LPS mm) from voxel displacements ``(3, D, H, W)`` on this grid."""
        field = sitk.GetImageFromArray(self.displacement_to_physical(displacement).astype(np.float64), isVector=True)
        field.CopyInformation(self.reference())
        return sitk.DisplacementFieldTransform(field)

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "spacing": self.spacing,
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    @classmethod
    def from_dict(cls, values: dict) -> "NetworkGrid":
        return cls(tuple(values["size"]), float(values["spacing"]), tuple(values["origin"]), tuple(values["direction"]))


def default_content_size(image: sitk.Image, max_voxels: int = 128) -> tuple[int, int, int]:
    """Network grid content (x, y, z voxels): the image at its finest spacing, coarsened until no axis exceeds
    ``max_voxels``."""
    extent = [n * s for n, s in zip(image.GetSize(), image.GetSpacing())]
    spacing = max(min(image.GetSpacing()), max(extent) / max_voxels)
    return tuple(max(8, round(e / spacing)) for e in extent)


def no_finer_than(image: sitk.Image, spacing: float) -> sitk.Image:
    """``image`` bin-averaged along each axis by the whole factor that brings it closest below ``spacing`` (mm)."""
    factors = [max(1, int(spacing / s)) for s in image.GetSpacing()]
    return sitk.BinShrink(image, factors) if max(factors) > 1 else image


def resample(
    image: sitk.Image, reference: sitk.Image, transform: sitk.Transform | None = None, default: float = 0.0
) -> sitk.Image:
    """Linear resampling of ``image`` onto ``reference``'s grid; ``transform`` maps reference points to ``image``
    points."""
    return sitk.Resample(image, reference, transform or sitk.Transform(), sitk.sitkLinear, default, sitk.sitkFloat32)


def label_values(label_image: sitk.Image) -> list[int]:
    """Label values present, background 0 first."""
    values = np.unique(sitk.GetArrayViewFromImage(label_image)).tolist()
    return [0] + [int(v) for v in values if v != 0]


def resample_labels(
    label_image: sitk.Image, values: list[int], reference: sitk.Image, transform: sitk.Transform | None = None
) -> np.ndarray:
    """Soft one-hot ``(K, D, H, W)`` of ``label_image`` on ``reference``: each label's mask resampled linearly.

    ``values[k]`` is the label value of channel ``k`` (``values[0] == 0`` is the
    background, which is 1 outside the image).
    """
    array = sitk.GetArrayViewFromImage(label_image)
    channels = []
    for k, value in enumerate(values):
        mask = sitk.GetImageFromArray((array == value).astype(np.float32))
        mask.CopyInformation(label_image)
        channels.append(sitk.GetArrayFromImage(resample(mask, reference, transform, default=1.0 if k == 0 else 0.0)))
    return np.stack(channels)


def argmax_labels(one_hot: np.ndarray, values: list[int]) -> np.ndarray:
    """``(K, D, H, W)`` soft one-hot -> ``(D, H, W)`` int32 label values."""
    return np.asarray(values, dtype=np.int32)[np.argmax(one_hot, axis=0)]
