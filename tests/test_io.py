"""Reading images and label maps: formats, and a clear error for each kind of bad input."""

import os

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_helpers import write_dicom_series

from ltnet.data.io import atomic_write, read_image, read_label_map, temporary_path, write_label_map
from ltnet.data.labels import LabelInfo
from ltnet.errors import LTNetError
from ltnet.input_checks import label_like_reason


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
    series = sitk.Cast(sitk.RescaleIntensity(atlas_image, 0, 1000), sitk.sitkInt16)
    dicom = write_dicom_series(series, tmp_path / "dicom")
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


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path, atlas_labels):
    out = tmp_path / "labels.nii.gz"
    assert temporary_path(out).name == f".labels.tmp-{os.getpid()}.nii.gz"  # the suffix SimpleITK goes by, hidden

    def killed_halfway(tmp):
        tmp.write_bytes(b"half an image")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, killed_halfway)
    assert list(tmp_path.iterdir()) == []
    write_label_map(atlas_labels, out, [LabelInfo(1, "a", (1, 0, 0)), LabelInfo(2, "b", (0, 1, 0))])
    assert [p.name for p in tmp_path.iterdir()] == ["labels.nii.gz"]
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), sitk.GetArrayViewFromImage(atlas_labels))


@pytest.mark.parametrize("content", ["empty", "text files"])
def test_a_folder_without_images_says_what_it_may_hold_and_itk_stays_quiet(tmp_path, capfd, content):
    folder = tmp_path / "scans"
    folder.mkdir()
    if content == "text files":
        (folder / "notes.txt").write_text("not an image")
        (folder / "protocol.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(LTNetError) as error:
        read_image(folder)
    message = str(error.value)
    assert message.startswith(f"{folder}: folder ") and "NIfTI" in message and "one DICOM series" in message
    assert ("is empty" in message) == (content == "empty")
    assert capfd.readouterr().err == ""  # ITK's own warnings (GDCMSeriesFileNames ...) are kept off the terminal
    assert sitk.ProcessObject.GetGlobalWarningDisplay()  # and its switch is restored


def test_label_maps_and_segmentations_are_refused_as_images_but_real_scans_are_not(tmp_path, atlas_labels):
    from ltnet import sample

    for scan in [*sample.scan_paths(), sample.atlas_image_path()]:
        image = sitk.ReadImage(str(scan))
        assert label_like_reason(scan, image) is None, scan
        read_image(scan, "--allow-label-like-images")
    labels_file = tmp_path / "labels.nii.gz"
    sitk.WriteImage(sitk.Cast(atlas_labels, sitk.sitkUInt8), str(labels_file))
    with pytest.raises(LTNetError) as error:
        read_image(labels_file, "--allow-label-like-images")
    message = str(error.value)
    assert message.startswith(f"{labels_file}: looks like a label map") and "--allow-label-like-images" in message
    assert "3 distinct values (0, 1, 2)" in message
    assert read_image(labels_file).GetSize() == atlas_labels.GetSize()  # without the check: read as before
    with pytest.raises(LTNetError, match="Slicer segmentation.*--allow"):
        read_image(sample.atlas_labels_path(), "--allow-label-like-images")
    # a scan of few grey values but float-typed, one of many integer values, one with mostly 1: all images
    few_floats = sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 4, (8, 8, 8)).astype(np.float32))
    assert label_like_reason(tmp_path / "f.nii.gz", few_floats) is None
    many = sitk.GetImageFromArray(np.arange(512, dtype=np.int16).reshape(8, 8, 8))
    assert label_like_reason(tmp_path / "m.nii.gz", many) is None
    mostly_one = sitk.GetImageFromArray(np.ones((8, 8, 8), np.uint8))
    assert label_like_reason(tmp_path / "o.nii.gz", mostly_one) is None
    large = np.zeros((160, 192, 224), np.int16)  # a whole-brain label map: the strided look alone cannot decide
    large[40:120, 50:140, 60:160] = 3
    large[::7, ::7, ::7] = np.random.default_rng(0).integers(0, 13, large[::7, ::7, ::7].shape)
    assert "distinct values" in label_like_reason(tmp_path / "l.nii.gz", sitk.GetImageFromArray(large))
