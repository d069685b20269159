"""Reading and writing images and label maps, with clear errors for bad input.

Images: NIfTI, NRRD, MHA (anything SimpleITK reads) or a folder holding one
DICOM series. Label maps: integer NIfTI/NRRD/MHA, or Slicer ``.seg.nrrd``
(segment names, colors and terminology kept, via ``slicerio``).
Every error is an ``LTNetError`` that names the file, the problem and what to do.
"""

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ltnet.data.labels import LabelInfo, default_labels
from ltnet.errors import LTNetError

SEG_NRRD = ".seg.nrrd"
MIN_SIZE = 4  # voxels along each axis; fewer is a 2-D image or a slab

_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK  # what open() gives: results stay readable by colleagues as the folder allows


@dataclass
class LabelMap:
    """A label map image (integer values, 0 = background) and the description of each value present."""

    image: sitk.Image
    labels: list[LabelInfo]


def read_image(path, refuse_labels_unless: str | None = None) -> sitk.Image:
    """A 3-D scalar image as float32, checked: 3-D, at least 4 voxels per axis, finite values.

    ``refuse_labels_unless``: the command-line flag that allows a label-map-like image; when given, a segmentation
    or an image that looks like a label map is refused with an error naming that flag (``ltnet.input_checks``).
    """
    from ltnet.input_checks import refuse_label_like  # imports this module

    path = Path(path)
    image = _read(path)
    _check_3d(image, path)
    if refuse_labels_unless:
        refuse_label_like(path, image, refuse_labels_unless)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise LTNetError(
            f"{path}: has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "give a scalar (grey-value) image."
        )
    image = sitk.Cast(image, sitk.sitkFloat32)
    values = sitk.GetArrayViewFromImage(image)
    if not np.isfinite(values).all():
        raise LTNetError(f"{path}: contains NaN or infinite values; fix or mask them before using the image.")
    if values.min() == values.max():
        raise LTNetError(f"{path}: is constant ({values.min()}); give an image with content.")
    return image


def read_label_map(path, reference: sitk.Image | None = None, reference_path=None) -> LabelMap:
    """A label map with integer values, checked to be non-empty and, if given, on ``reference``'s grid."""
    path = Path(path)
    if path.name.endswith(SEG_NRRD):
        label_map = _read_seg_nrrd(path)
    else:
        image = _read(path)
        _check_3d(image, path)
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise LTNetError(f"{path}: has several components per voxel; give a label map with one integer per voxel.")
        values = sitk.GetArrayViewFromImage(image)
        if not np.issubdtype(values.dtype, np.integer):
            if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise LTNetError(f"{path}: holds non-integer values; a label map must hold integer label values.")
        image = sitk.Cast(image, sitk.sitkInt32)
        present = np.unique(sitk.GetArrayViewFromImage(image))
        label_map = LabelMap(image, default_labels(v for v in present if v != 0))
    values = sitk.GetArrayViewFromImage(label_map.image)
    if values.min() < 0:
        raise LTNetError(
            f"{path}: holds negative label values; use 0 for background and positive values for structures."
        )
    if not values.any():
        raise LTNetError(f"{path}: is empty (no voxel has a label); give the atlas's label map.")
    if reference is not None and not same_grid(label_map.image, reference):
        raise LTNetError(
            f"{path}: is not on the grid of its image {reference_path or ''} "
            f"(size {label_map.image.GetSize()} vs {reference.GetSize()}, spacing, origin or direction differ); "
            "resample the label map onto the image first."
        )
    return label_map


def same_grid(a: sitk.Image, b: sitk.Image, tolerance: float = 1e-4) -> bool:
    """Whether two images share size, spacing, origin and direction (within ``tolerance``, mm or unitless)."""
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance * max(1.0, max(map(abs, a.GetSpacing()))))
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=tolerance)
    )


def write_image(image: sitk.Image, path) -> None:
    """Write any image atomically (``atomic_write``)."""
    path = Path(path)
    atomic_write(path, lambda tmp: sitk.WriteImage(image, str(tmp), True))


def write_text(text: str, path) -> None:
    """Write a text file (e.g. a QC JSON) atomically (``atomic_write``)."""
    atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def write_label_map(image: sitk.Image, path, labels: list[LabelInfo]) -> None:
    """Write a label map: ``.seg.nrrd`` with segment names/colors, otherwise an integer image."""
    path = Path(path)
    if path.name.endswith(SEG_NRRD):
        atomic_write(path, lambda tmp: _write_seg_nrrd(image, tmp, labels))
        return
    values = sitk.GetArrayViewFromImage(image)
    pixel = sitk.sitkUInt8 if values.max() < 256 else sitk.sitkUInt16 if values.max() < 65536 else sitk.sitkInt32
    write_image(sitk.Cast(image, pixel), path)


def output_suffix(path) -> str:
    """The file-type suffix of ``path`` (``.nii.gz`` and ``.seg.nrrd`` count as one)."""
    name = Path(path).name
    for double in (".nii.gz", SEG_NRRD):
        if name.endswith(double):
            return double
    return Path(path).suffix


def show_itk_warnings(show: bool) -> None:
    """Whether ITK's own warnings reach the terminal while images are read (the ``--verbose`` of the commands)."""
    global _show_itk_warnings
    _show_itk_warnings = show


_show_itk_warnings = False
_warning_lock = threading.Lock()  # ITK's switch is process-wide; reads may run in a writer thread as well


@contextmanager
def _itk_warnings_muted():
    """ITK's global warning display off for the block (unless ``show_itk_warnings(True)``), then restored."""
    if _show_itk_warnings:
        yield
        return
    with _warning_lock:
        previous = sitk.ProcessObject.GetGlobalWarningDisplay()
        sitk.ProcessObject.SetGlobalWarningDisplay(False)
        try:
            yield
        finally:
            sitk.ProcessObject.SetGlobalWarningDisplay(previous)


FOLDER_CONTENT = (
    "a folder must hold image files (NIfTI .nii/.nii.gz, NRRD .nrrd/.nhdr, MetaImage .mha/.mhd) or the files of "
    "one DICOM series"
)


def _read(path: Path) -> sitk.Image:
    if not path.exists():
        raise LTNetError(f"{path}: no such file or folder; check the path.")
    try:
        with _itk_warnings_muted():
            if path.is_dir():
                return _read_dicom_folder(path)
            return sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown reason"
        raise LTNetError(
            f"{path}: cannot be read as an image ({reason}); give a NIfTI, NRRD, MHA file or a DICOM folder."
        ) from error


def _read_dicom_folder(path: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(path))
    if not series:
        what = "is empty" if not any(path.iterdir()) else "holds no image files and no DICOM series"
        raise LTNetError(f"{path}: folder {what}; {FOLDER_CONTENT}.")
    if len(series) > 1:
        raise LTNetError(f"{path}: folder holds {len(series)} DICOM series; put each series in its own folder.")
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series[0]))
    return reader.Execute()


def _check_3d(image: sitk.Image, path: Path) -> None:
    if image.GetDimension() != 3:
        raise LTNetError(f"{path}: is a {image.GetDimension()}-D image; LTNet needs a single 3-D volume.")
    if min(image.GetSize()) < MIN_SIZE:
        raise LTNetError(
            f"{path}: has only {min(image.GetSize())} voxel(s) along one axis (size {image.GetSize()}), so it is 2-D; "
            "LTNet needs a 3-D volume."
        )


def _read_seg_nrrd(path: Path) -> LabelMap:
    import slicerio

    if not path.exists():
        raise LTNetError(f"{path}: no such file; check the path.")
    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as error:  # slicerio raises several types for malformed files
        raise LTNetError(
            f"{path}: cannot be read as a Slicer segmentation ({error}); save it again from Slicer."
        ) from error
    voxels = np.asarray(segmentation["voxels"])
    if voxels.ndim != 3:
        raise LTNetError(
            f"{path}: has overlapping segments ({voxels.shape[0]} layers); LTNet needs one label per voxel: "
            "remove the overlaps in Slicer (Segment Editor, Logical operators) and save again."
        )
    ijk_to_lps = np.asarray(segmentation["ijkToLPS"], dtype=float)
    image = sitk.GetImageFromArray(np.ascontiguousarray(voxels.transpose(2, 1, 0)).astype(np.int32))
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(ijk_to_lps[:3, 3].tolist())
    image.SetDirection((ijk_to_lps[:3, :3] / spacing).flatten().tolist())
    _check_3d(image, path)
    labels = [
        LabelInfo(
            int(s["labelValue"]),
            s.get("name", s.get("id", "")),
            tuple(s.get("color", (0.5, 0.5, 0.5))[:3]),
            _terminology(s),
        )
        for s in segmentation["segments"]
        if s.get("labelValue", 0) > 0
    ]
    return LabelMap(image, sorted(labels, key=lambda label: label.value))


def _terminology(segment: dict) -> dict:
    terminology = segment.get("terminology") or {}
    return {str(k): v for k, v in terminology.items() if isinstance(v, (str, dict))}


def _write_seg_nrrd(image: sitk.Image, path: Path, labels: list[LabelInfo]) -> None:
    import slicerio

    voxels = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    segments = [
        {
            "id": f"Segment_{label.value}",
            "name": label.name,
            "color": list(label.color),
            "labelValue": label.value,
            "layer": 0,
            **({"terminology": label.terminology} if label.terminology else {}),
        }
        for label in labels
    ]
    segmentation = {
        "voxels": np.ascontiguousarray(voxels).astype(np.uint16 if voxels.max() > 255 else np.uint8),
        "ijkToLPS": ijk_to_lps(image),
        "segments": segments,
    }
    slicerio.write_segmentation(str(path), segmentation)


def ijk_to_lps(image: sitk.Image) -> np.ndarray:
    """The 4x4 matrix from voxel index (i, j, k) to physical LPS mm."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def temporary_path(path: Path) -> Path:
    """Where ``atomic_write`` writes ``path`` first: ``.<stem>.tmp-<pid><suffix>`` beside it (a hidden name no output
    ever has, with the suffix that tells SimpleITK the file type)."""
    suffix = output_suffix(path)
    stem = path.name[: -len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.tmp-{os.getpid()}{suffix}")


def atomic_write(path: Path, write) -> None:
    """``write(tmp)`` writes the file at ``tmp`` (``temporary_path``), which is then renamed to ``path``.

    A run killed while writing leaves at most the hidden temporary file, never a half-written ``path``.
    """
    if not path.parent.exists():
        raise LTNetError(f"{path.parent}: output folder does not exist; create it first.")
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
