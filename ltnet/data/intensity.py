"""Robust intensity normalisation to [0, 1]."""

import numpy as np
import SimpleITK as sitk


def normalise(image: sitk.Image, low_percentile: float = 0.5, high_percentile: float = 99.5) -> sitk.Image:
    """Map the ``low``/``high`` percentiles of the non-zero voxels to 0 and 1 and clip; geometry kept.

    Percentiles ignore exact zeros (background of skull-stripped or padded scans).
    """
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    foreground = array[array != 0]
    sample = foreground if foreground.size > array.size // 10 else array.ravel()
    low, high = np.percentile(sample, [low_percentile, high_percentile])
    scaled = np.clip((array - low) / max(high - low, 1e-6), 0.0, 1.0).astype(np.float32)
    result = sitk.GetImageFromArray(scaled)
    result.CopyInformation(image)
    return result
