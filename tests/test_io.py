"""Reading images and label maps: formats, and a clear error for each kind of bad input."""

import numpy as np
import pytest
import SimpleITK as sitk

from ltnet.data.io import read_image, read_label_map, write_label_map
from ltnet.data.labels import LabelInfo
from ltnet.errors import LTNetError


def write(array, path, spacing=(1.0, 1.0, 1.0)):
    image = sitk.GetImageFromArray(array)
    if image.GetDimension() == 3:
        image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


def write_4d(path):
    volume = sitk.GetImageFromArray(np.random.rand(8, 8, 8).astype(np.float32))
    sitk.WriteImage(sitk.JoinSeries([volume, volume, volume]), str(path))
    return path


def write_text(path):
    path.write_text("not an image")
    return path


def test_reads_nifti_nrrd_mha_and_a_dicom_series(tmp_path, atlas_image):
    for suffix in (".nii.gz", ".nrrd", ".mha"):
        path = tmp_path / f"scan{suffix}"
        sitk.WriteImage(atlas_image, str(path))
        read = read_image(path)
        assert read.GetSize() == atlas_image.GetSize()
        assert np.allclose(read.GetOrigin(), atlas_image.GetOrigin()) and np.allclose(
            read.GetDirection(), atlas_image.GetDirection()
        )
    dicom = tmp_path / "dicom"
    dicom.mkdir()
    series = sitk.Cast(sitk.RescaleIntensity(atlas_image, 0, 1000), sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(series.GetDepth()):
        slice_image = series[:, :, k]
        origin = series.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in {
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1.1",
            "0020|0032": "\\".join(map(str, origin)),
            "0020|0037": "\\".join(
                map(
                    str,
                    series.GetDirection()[0:1]
                    + series.GetDirection()[3:4]
                    + series.GetDirection()[6:7]
                    + series.GetDirection()[1:2]
                    + series.GetDirection()[4:5]
                    + series.GetDirection()[7:8],
                )
            ),
            "0020|0013": str(k),
            "0028|0030": "1\\1",
            "0018|0050": "1",
        }.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(dicom / f"{k:03d}.dcm"))
        writer.Execute(slice_image)
    read = read_image(dicom)
    assert read.GetSize() == atlas_image.GetSize()
    assert np.allclose(sitk.GetArrayViewFromImage(read), sitk.GetArrayViewFromImage(series), atol=0.5)


def test_seg_nrrd_round_trip_keeps_names_colors_and_values(tmp_path, atlas_labels):
    labels = [LabelInfo(2, "Grey matter", (0.1, 0.2, 0.3)), LabelInfo(41, "Left hippocampus", (0.9, 0.8, 0.1))]
    array = sitk.GetArrayFromImage(atlas_labels)
    relabelled = sitk.GetImageFromArray(np.select([array == 1, array == 2], [2, 41], 0).astype(np.int32))
    relabelled.CopyInformation(atlas_labels)
    write_label_map(relabelled, tmp_path / "a.seg.nrrd", labels)
    read = read_label_map(tmp_path / "a.seg.nrrd", atlas_labels)
    assert [(label.value, label.name) for label in read.labels] == [(2, "Grey matter"), (41, "Left hippocampus")]
    assert np.allclose(read.labels[1].color, (0.9, 0.8, 0.1))
    assert np.array_equal(sitk.GetArrayViewFromImage(read.image), sitk.GetArrayViewFromImage(relabelled))


def test_freesurfer_like_values_are_kept(tmp_path):
    array = np.zeros((8, 8, 8), np.int16)
    array[2:4] = 2
    array[5:7] = 63
    read = read_label_map(write(array, tmp_path / "fs.nii.gz"))
    assert [label.value for label in read.labels] == [2, 63]


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: write(np.random.rand(16, 16).astype(np.float32), p / "flat.nii.gz"), "2-D"),
        (lambda p: write(np.random.rand(1, 16, 16).astype(np.float32), p / "slab.nii.gz"), "2-D"),
        (lambda p: write_4d(p / "fourd.nii.gz"), "4-D"),
        (
            lambda p: write(np.where(np.random.rand(8, 8, 8) > 0.5, np.nan, 1.0).astype(np.float32), p / "nan.nrrd"),
            "NaN",
        ),
        (lambda p: write_text(p / "text.nii.gz"), "cannot be read"),
        (lambda p: p / "missing.nii.gz", "no such file"),
    ],
)
def test_bad_images_get_a_clear_error_naming_the_file(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(LTNetError) as error:
        read_image(path)
    assert str(path) in str(error.value) and problem in str(error.value)


def test_bad_label_maps_get_a_clear_error(tmp_path):
    image = sitk.GetImageFromArray(np.random.rand(8, 8, 8).astype(np.float32))
    with pytest.raises(LTNetError, match="empty"):
        read_label_map(write(np.zeros((8, 8, 8), np.uint8), tmp_path / "empty.nii.gz"), image)
    shifted = np.ones((8, 8, 8), np.uint8)
    with pytest.raises(LTNetError, match="not on the grid"):
        read_label_map(write(shifted, tmp_path / "spacing.nii.gz", spacing=(1.0, 2.0, 1.0)), image)
    with pytest.raises(LTNetError, match="non-integer"):
        read_label_map(write(np.full((8, 8, 8), 1.5, np.float32), tmp_path / "float.nii.gz"), image)
