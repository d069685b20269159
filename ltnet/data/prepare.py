"""From files' images to arrays on the network grid (and the transform that links them)."""

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ltnet.data.grid import (
    REFINE_MAX_VOXELS,
    NetworkGrid,
    argmax_labels,
    default_content_size,
    label_values,
    no_finer_than,
    resample,
    resample_labels,
)
from ltnet.data.intensity import normalise
from ltnet.data.io import LabelMap, read_image, read_label_map
from ltnet.data.labels import LabelInfo
from ltnet.data.prealign import affine_prealign


@dataclass
class Atlas:
    """The atlas on the network grid: image ``(D, H, W)`` in [0, 1], soft one-hot labels ``(K, D, H, W)``.

    ``values[k]`` is the label value of one-hot channel ``k`` (``values[0] == 0``);
    ``labels`` describes every value but the background. ``channels`` is the label
    map at the atlas's own resolution and geometry as channel indices ``k``: what
    transfer samples, so labels stay as fine as the atlas however coarse the grid.
    ``source_image`` is the image as refinement on a grid finer than the network's
    matches it (``refinement_source``); None where no such grid is possible, and for
    models written before LTNet kept it (then refinement stays on the network grid).
    ``channels`` is None for models written before LTNet kept it (then the grid
    labels stand in). ``prealign_fixed`` is the image the affine pre-alignment of
    scans holds fixed (``ltnet.data.prealign``): the model's networks learned from
    scans aligned so; "atlas" for models written before the choice existed.
    """

    grid: NetworkGrid
    image: np.ndarray
    one_hot: np.ndarray
    values: list[int]
    labels: list[LabelInfo]
    channels: sitk.Image | None = None
    source_image: sitk.Image | None = None
    prealign_fixed: str = "atlas"

    @classmethod
    def on_grid(cls, image: sitk.Image, label_map: LabelMap, content_size, multiple: int) -> "Atlas":
        grid = NetworkGrid.around(image, content_size, multiple)
        reference = grid.reference()
        values = label_values(label_map.image)
        described = {label.value: label for label in label_map.labels}
        labels = [described[v] if v in described else LabelInfo(v, f"Label {v}", (0.5, 0.5, 0.5)) for v in values[1:]]
        # rounded to float16 as the model file stores it, so a resumed run sees exactly the same atlas
        one_hot = resample_labels(label_map.image, values, reference).astype(np.float16).astype(np.float32)
        normalised = normalise(image)
        image_on_grid = sitk.GetArrayFromImage(resample(normalised, reference))
        return cls(
            grid,
            image_on_grid,
            one_hot,
            values,
            labels,
            channel_indices(label_map.image, values),
            refinement_source(normalised, grid),
        )

    @classmethod
    def from_files(cls, image_path, labels_path, content_size, multiple: int) -> "Atlas":
        """The atlas read from its image and label files (checked: same grid, non-empty labels).

        ``content_size`` None takes ``default_content_size`` of the image.
        """
        image = read_image(image_path)
        label_map = read_label_map(labels_path, image, image_path)
        return cls.on_grid(image, label_map, content_size or default_content_size(image), multiple)

    def image_sitk(self) -> sitk.Image:
        return self.grid.image_from_array(self.image.astype(np.float32))

    def labels_sitk(self) -> sitk.Image:
        return self.grid.image_from_array(argmax_labels(self.one_hot, self.values))

    def channels_sitk(self) -> sitk.Image:
        """``channels``, or for an older model the channel indices of the grid labels."""
        if self.channels is not None:
            return self.channels
        return self.grid.image_from_array(np.argmax(self.one_hot, axis=0).astype(np.int16))


def finest_refinement_grid(grid: NetworkGrid, atlas_spacing: float) -> NetworkGrid:
    """The finest grid test-time refinement can reach over ``grid`` (``REFINE_MAX_VOXELS`` on a GPU) for an atlas
    whose finest spacing is ``atlas_spacing`` (mm); ``grid`` itself when none finer is possible."""
    return grid.finest_within(atlas_spacing, max(REFINE_MAX_VOXELS.values()))


def refinement_source(normalised: sitk.Image, grid: NetworkGrid) -> sitk.Image | None:
    """The atlas image (normalised, own geometry) as the model keeps it for test-time refinement on a grid finer
    than ``grid`` (``ltnet.refine``): bin-averaged to no finer than ``finest_refinement_grid``, values rounded to
    float16 as the model file stores them; None when that grid is ``grid`` itself (an atlas no finer than the
    network grid, or a grid already near the budget)."""
    finest = finest_refinement_grid(grid, min(normalised.GetSpacing()))
    if finest == grid:
        return None
    kept = no_finer_than(normalised, finest.spacing)
    rounded = sitk.GetImageFromArray(sitk.GetArrayFromImage(kept).astype(np.float16).astype(np.float32))
    rounded.CopyInformation(kept)
    return rounded


def channel_indices(label_image: sitk.Image, values: list[int]) -> sitk.Image:
    """``label_image`` with each label value replaced by its index in ``values`` (uint8, int16 past 256 labels); same
    geometry."""
    array = sitk.GetArrayViewFromImage(label_image)
    channels = np.zeros(array.shape, np.uint8 if len(values) <= 256 else np.int16)
    for k, value in enumerate(values):
        channels[array == value] = k
    image = sitk.GetImageFromArray(channels)
    image.CopyInformation(label_image)
    return image


@dataclass
class PreparedScan:
    """A scan on the network grid, ``(D, H, W)`` in [0, 1], and ``to_scan``: grid (atlas) points -> scan points."""

    image: np.ndarray
    to_scan: sitk.Transform


def prepare_scan(scan: sitk.Image, atlas: Atlas, prealign: bool = True, seed: int = 0) -> PreparedScan:
    """Normalise ``scan``, align it affinely to the atlas (or only centre it) and resample it on the grid."""
    scan = normalise(scan)
    if prealign:
        to_scan = affine_prealign(atlas.image_sitk(), scan, seed, atlas.prealign_fixed)
    else:
        to_scan = sitk.AffineTransform(3)
    return PreparedScan(sitk.GetArrayFromImage(resample(scan, atlas.grid.reference(), to_scan)), to_scan)
