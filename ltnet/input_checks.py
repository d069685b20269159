"""Refusing a label map (or a Slicer segmentation) given where a grey-value scan is expected.

A model trained with a label map as its atlas image, or a transfer onto a label map, runs without an error and
its QC can still say OK; so such inputs are refused unless the user says they are meant (a flag such as
``--allow-label-like-images``). A scan is taken for labels when it is a segmentation file (``.seg.nrrd``, or an
NRRD whose header holds ``Segment0_`` keys) or when its voxel type is an integer type and it holds at most
``MAX_LABEL_VALUES`` distinct values, all non-negative, 0 the most common. Real scans hold far more
(``benchmarks/label_like_inputs.py``; docs/CORE_CONTRACT.md has the numbers).
"""

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ltnet.errors import LTNetError

ALLOW_FLAG = "--allow-label-like-images"  # the flag of `ltnet train` and `ltnet transfer` that skips the check
MAX_LABEL_VALUES = 16
SAMPLE_VOXELS = 2**18  # the strided first look covers about this many voxels


def refuse_label_like(path: Path, image: sitk.Image, allow_flag: str) -> None:
    """Raise an ``LTNetError`` naming ``path``, the reason and ``allow_flag`` if ``image`` looks like labels."""
    reason = label_like_reason(path, image)
    if reason:
        raise LTNetError(
            f"{path}: looks like a label map, not a scan ({reason}); give the grey-value image, "
            f"or pass {allow_flag} if this really is the image to use."
        )


def label_like_reason(path: Path, image: sitk.Image) -> str | None:
    """Why ``image`` (as read from ``path``, before any cast) looks like a label map, or None."""
    if Path(path).name.lower().endswith(".seg.nrrd") or any(k.startswith("Segment0_") for k in image.GetMetaDataKeys()):
        return "it is a Slicer segmentation"
    values = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(values.dtype, np.integer):
        return None
    step = max(1, round((values.size / SAMPLE_VOXELS) ** (1 / 3)))
    if len(np.unique(values[::step, ::step, ::step])) > MAX_LABEL_VALUES:
        return None  # a scan: no need to count them all
    present, counts = np.unique(values, return_counts=True)
    if len(present) > MAX_LABEL_VALUES or present[0] < 0 or present[np.argmax(counts)] != 0:
        return None
    shown = ", ".join(str(v) for v in present[:6]) + (", ..." if len(present) > 6 else "")
    return f"integer voxels with only {len(present)} distinct values ({shown}), 0 the most common"
