"""Writing a 3-D image as a DICOM series (one file per slice), as scanners deliver them."""

import locale
from pathlib import Path

import SimpleITK as sitk


def write_dicom_series(image: sitk.Image, folder: Path, series_uid: str = "1.2.826.0.1.3680043.2.1125.1.1") -> Path:
    """``image`` (any scalar type; written as int16) as ``folder/000.dcm`` ... with its geometry in the tags."""
    folder.mkdir(parents=True, exist_ok=True)
    series = sitk.Cast(image, sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    process_locale = locale.setlocale(locale.LC_ALL)  # GDCM's DICOM writer sets the C locale (ASCII text)
    try:
        _write_slices(writer, series, folder, series_uid)
    finally:
        locale.setlocale(locale.LC_ALL, process_locale)
    return folder


def _write_slices(writer: sitk.ImageFileWriter, series: sitk.Image, folder: Path, series_uid: str) -> None:
    d = series.GetDirection()
    orientation = (d[0], d[3], d[6], d[1], d[4], d[7])  # the first two columns: row and column directions
    spacing = series.GetSpacing()
    for k in range(series.GetDepth()):
        slice_image = series[:, :, k]
        tags = {
            "0020|000e": series_uid,
            "0020|0032": "\\".join(map(str, series.TransformIndexToPhysicalPoint((0, 0, k)))),
            "0020|0037": "\\".join(map(str, orientation)),
            "0020|0013": str(k),
            "0028|0030": f"{spacing[1]}\\{spacing[0]}",
            "0018|0050": str(spacing[2]),
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        writer.Execute(slice_image)
