"""Writes the Sample Data thumbnails of the bundled sample (LTNetTransfer/Resources/Icons/LTNet*.png): the middle
axial slice of each image, 128x128, gray levels between its 1st and 99th percentile; the atlas with its labels
in their segment colors, half transparent.

    .venv/bin/python Testing/Python/sample_thumbnails.py
"""

import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[2]
SIZE = 128


def middleSlice(image):
    """(rows, columns) float array: the middle slice along k, resampled to SIZE x SIZE (linear)."""
    array = sitk.GetArrayFromImage(image).astype(np.float32)  # (k, j, i)
    plane = sitk.GetImageFromArray(array[array.shape[0] // 2])
    return plane, array


def resized(plane, interpolator):
    size = plane.GetSize()
    spacing = [size[0] / SIZE, size[1] / SIZE]
    return sitk.GetArrayFromImage(
        sitk.Resample(plane, [SIZE, SIZE], sitk.Transform(), interpolator, (0, 0), spacing, (1, 0, 0, 1), 0)
    )


def thumbnail(imagePath, labelsPath=None):
    """(SIZE, SIZE, 3) uint8 RGB."""
    image = sitk.ReadImage(str(imagePath))
    plane, volume = middleSlice(image)
    low, high = np.percentile(volume, [1, 99])
    gray = np.clip((resized(plane, sitk.sitkLinear) - low) / max(high - low, 1e-6), 0, 1)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    if labelsPath is not None:
        labels = sitk.ReadImage(str(labelsPath))
        labelPlane, _ = middleSlice(labels)
        values = resized(labelPlane, sitk.sitkNearestNeighbor)
        index = 0
        while labels.HasMetaDataKey(f"Segment{index}_LabelValue"):
            value = int(labels.GetMetaData(f"Segment{index}_LabelValue"))
            color = [float(c) for c in labels.GetMetaData(f"Segment{index}_Color").split()]
            rgb[values == value] = 0.5 * rgb[values == value] + 0.5 * np.array(color)
            index += 1
    return np.round(rgb[::-1] * 255).astype(np.uint8)  # rows from the top (anterior or superior up)


def thumbnails():
    """{thumbnail path: RGB array} of every registered sample."""
    sys.path.insert(0, str(REPO / "LTNetTransfer"))
    from LTNetCommonLib.sampleData import ICONS, sampleDataSources

    result = {}
    for source in sampleDataSources():
        paths = [Path(uri[len("file://") :]) for uri in source["uris"]]
        result[Path(source["thumbnailFileName"])] = thumbnail(*paths) if len(paths) == 2 else thumbnail(paths[0])
    assert all(path.parent == ICONS for path in result)
    return result


def main():
    for path, rgb in thumbnails().items():
        sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(path))
        print(path)


if __name__ == "__main__":
    main()
