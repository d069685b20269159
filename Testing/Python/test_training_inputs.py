"""Bad inputs raise a clear TrainingInputError before any process starts; nodes are written with the right geometry."""

import os

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from LTNetCommonLib.geometry import ijkToRasFromNode
from LTNetCommonLib.nodeFiles import writeSegmentationNode, writeVolumeNode
from LTNetTrainingLib import TrainingInputError, TrainingLogic, scanCohortFolder

# An oblique, anisotropic grid: rotation about an oblique axis, spacing (0.7, 1.1, 2.5) mm.
ANGLE = np.deg2rad(25)
ROTATION = np.array([[np.cos(ANGLE), -np.sin(ANGLE), 0], [np.sin(ANGLE), np.cos(ANGLE), 0], [0, 0, 1]]) @ np.array(
    [[1, 0, 0], [0, np.cos(ANGLE / 2), -np.sin(ANGLE / 2)], [0, np.sin(ANGLE / 2), np.cos(ANGLE / 2)]]
)
IJK_TO_RAS = np.eye(4)
IJK_TO_RAS[:3, :3] = ROTATION @ np.diag([0.7, 1.1, 2.5])
IJK_TO_RAS[:3, 3] = [12.5, -40.0, 7.25]
SHAPE = (12, 20, 16)  # K, J, I


class RecordingLauncher:
    """A ProcessLauncher that records each start; none may happen for bad inputs."""

    def __init__(self):
        self.started = []

    def start(self, arguments, environment=None):
        self.started.append(arguments)
        raise AssertionError("a process was started")


@pytest.fixture
def launcher():
    return RecordingLauncher()


@pytest.fixture
def logic(launcher):
    return TrainingLogic(launcher=launcher, cudaAvailable=lambda: False)


def addVolume(array, ijkToRas=IJK_TO_RAS, className="vtkMRMLScalarVolumeNode", name="volume"):
    return slicer.util.addVolumeFromArray(array, ijkToRas, name, className)


@pytest.fixture
def atlas(scene):
    """(atlas volume node, segmentation node with two segments on its grid, a cohort volume node)."""
    rng = np.random.default_rng(0)
    image = rng.random(SHAPE).astype(np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:7, 5:12, 4:9] = 1
    labels[7:10, 10:15, 8:12] = 2
    volume = addVolume(image, name="atlas")
    labelmap = addVolume(labels, className="vtkMRMLLabelMapVolumeNode", name="labels")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "atlas segmentation")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    segments = segmentation.GetSegmentation()
    segments.GetNthSegment(0).SetName("head")
    segments.GetNthSegment(0).SetColor(1.0, 0.0, 0.0)
    segments.GetNthSegment(1).SetName("tail")
    segments.GetNthSegment(1).SetColor(0.0, 0.5, 1.0)
    cohortVolume = addVolume(rng.random(SHAPE).astype(np.float32), name="scan")
    return volume, segmentation, cohortVolume, labels


def test_empty_cohort(logic, launcher, atlas, tmp_path):
    volume, segmentation, _, _ = atlas
    emptyFolder = tmp_path / "empty"
    emptyFolder.mkdir()
    for cohort in ([], None, [str(emptyFolder)]):
        with pytest.raises(TrainingInputError, match="cohort is empty"):
            logic.start(volume, segmentation, cohort, tmp_path / "model.pt", iterations=2, device="cpu")
    assert launcher.started == []


def test_atlas_segmentation_without_segments_or_voxels(logic, launcher, atlas, scene, tmp_path):
    volume, _, cohortVolume, _ = atlas
    noSegments = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    with pytest.raises(TrainingInputError, match="has no segments"):
        logic.start(volume, noSegments, [cohortVolume], tmp_path / "model.pt", iterations=2, device="cpu")
    emptySegments = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    emptySegments.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    emptySegments.GetSegmentation().AddEmptySegment("nothing painted")
    with pytest.raises(TrainingInputError, match="is empty"):
        logic.start(volume, emptySegments, [cohortVolume], tmp_path / "model.pt", iterations=2, device="cpu")
    emptyFile = tmp_path / "empty_labels.nrrd"
    sitk.WriteImage(sitk.Image(16, 20, 12, sitk.sitkUInt8), str(emptyFile))
    atlasFile = tmp_path / "atlas.nrrd"
    sitk.WriteImage(sitk.Image(16, 20, 12, sitk.sitkFloat32), str(atlasFile))
    with pytest.raises(TrainingInputError, match="is empty"):
        logic.start(str(atlasFile), str(emptyFile), [cohortVolume], tmp_path / "model.pt", device="cpu")
    assert launcher.started == []


def test_atlas_and_segmentation_on_different_grids(logic, launcher, atlas, scene, tmp_path):
    volume, _, cohortVolume, labels = atlas
    coarser = IJK_TO_RAS.copy()
    coarser[:3, :3] *= 2.0
    shifted = IJK_TO_RAS.copy()
    shifted[:3, 3] += IJK_TO_RAS[:3, :3] @ np.array([0.5, 0.0, 0.0])  # half a voxel off
    for ijkToRas in (coarser, shifted):
        labelmap = addVolume(labels, ijkToRas, "vtkMRMLLabelMapVolumeNode", "other grid")
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(labelmap)
        assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
        with pytest.raises(TrainingInputError, match="different grids"):
            logic.start(volume, segmentation, [cohortVolume], tmp_path / "model.pt", device="cpu")
        with pytest.raises(TrainingInputError, match="different grids"):  # a label map volume node as labels
            logic.start(volume, labelmap, [cohortVolume], tmp_path / "model.pt", device="cpu")
    atlasFile, labelsFile = tmp_path / "atlas.nii.gz", tmp_path / "labels.nii.gz"
    sitk.WriteImage(sitk.Image(16, 20, 12, sitk.sitkFloat32), str(atlasFile))
    labelImage = sitk.Image(16, 20, 11, sitk.sitkUInt8)
    labelImage[3, 3, 3] = 1
    sitk.WriteImage(labelImage, str(labelsFile))
    with pytest.raises(TrainingInputError, match="different grids"):
        logic.start(str(atlasFile), str(labelsFile), [cohortVolume], tmp_path / "model.pt", device="cpu")
    assert launcher.started == []


def test_output_folder_not_writable(logic, launcher, atlas, tmp_path):
    volume, segmentation, cohortVolume, _ = atlas
    aFile = tmp_path / "a_file"
    aFile.write_text("not a folder")
    with pytest.raises(TrainingInputError, match="not writable"):
        logic.start(volume, segmentation, [cohortVolume], aFile / "model.pt", device="cpu")
    if os.geteuid() != 0:  # root writes anywhere
        readOnly = tmp_path / "read_only"
        readOnly.mkdir()
        readOnly.chmod(0o500)
        with pytest.raises(TrainingInputError, match="not writable"):
            logic.start(volume, segmentation, [cohortVolume], readOnly / "model.pt", device="cpu")
    assert launcher.started == []


def test_gpu_asked_for_but_none_usable(launcher, atlas, tmp_path, monkeypatch):
    volume, segmentation, cohortVolume, _ = atlas
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    logic = TrainingLogic(launcher=launcher)  # the real check, through torch
    with pytest.raises(TrainingInputError, match="no usable GPU"):
        logic.start(volume, segmentation, [cohortVolume], tmp_path / "model.pt", device="cuda")
    assert launcher.started == []


def test_existing_output_resume_without_checkpoint_and_missing_init(logic, launcher, atlas, tmp_path):
    volume, segmentation, cohortVolume, _ = atlas
    existing = tmp_path / "existing.pt"
    existing.write_bytes(b"a model")
    with pytest.raises(TrainingInputError, match="exists already"):
        logic.start(volume, segmentation, [cohortVolume], existing, device="cpu")
    with pytest.raises(TrainingInputError, match="Nothing to resume"):
        logic.resume(volume, segmentation, [cohortVolume], tmp_path / "missing.pt", device="cpu")
    with pytest.raises(TrainingInputError, match="does not exist"):
        logic.start(
            volume, segmentation, [cohortVolume], tmp_path / "m.pt", initModel=str(tmp_path / "x.pt"), device="cpu"
        )
    with pytest.raises(TrainingInputError, match="does not exist"):
        logic.start(
            volume, segmentation, [cohortVolume, str(tmp_path / "gone.nii.gz")], tmp_path / "m.pt", device="cpu"
        )
    assert launcher.started == []
    assert existing.read_bytes() == b"a model"


def test_cohort_folder_lists_unreadable_files(tmp_path):
    image = sitk.Image(8, 9, 10, sitk.sitkFloat32)
    sitk.WriteImage(image, str(tmp_path / "b_scan.nii.gz"))
    sitk.WriteImage(image, str(tmp_path / "a_scan.nrrd"))
    sitk.WriteImage(sitk.Image(8, 9, sitk.sitkFloat32), str(tmp_path / "slice.nrrd"))
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "labels.seg.nrrd").write_text("segmentations are not scans")
    scan = scanCohortFolder(str(tmp_path))
    assert [os.path.basename(path) for path in scan.readable] == ["a_scan.nrrd", "b_scan.nii.gz"]
    assert sorted(os.path.basename(path) for path, _ in scan.unreadable) == ["broken.nii.gz", "slice.nrrd"]
    assert scan.summary().startswith("2 images, 2 unreadable: ")
    assert "2D image" in scan.summary()


def test_nodes_are_written_with_their_geometry(atlas, scene, tmp_path):
    volume, segmentation, _, labels = atlas
    path = writeVolumeNode(volume, tmp_path / "atlas.nrrd")
    reread = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    storageNode = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storageNode.SetFileName(path)
    assert storageNode.ReadData(reread)  # Slicer's own reader sees the same RAS geometry and voxels
    np.testing.assert_allclose(ijkToRasFromNode(reread), IJK_TO_RAS, atol=1e-5)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(reread), slicer.util.arrayFromVolume(volume))

    labelsPath = writeSegmentationNode(segmentation, volume, tmp_path / "labels.seg.nrrd")
    from ltnet.data.io import read_image, read_label_map

    labelMap = read_label_map(labelsPath, read_image(path), path)  # on the atlas grid for ltnet too
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labelMap.image), labels)
    assert [(label.value, label.name) for label in labelMap.labels] == [(1, "head"), (2, "tail")]
    np.testing.assert_allclose(labelMap.labels[1].color, (0.0, 0.5, 1.0), atol=1e-3)
