"""What a run leaves in the scene, with outputs written by a stand-in for the `ltnet` child (fakes.py): a folder
per target, the QC volumes only when asked, provenance on every output, an existing segmentation updated in
place, "Show 3D", a label map that keeps the atlas label values, and no work folder left on any outcome."""

import hashlib
import json

import numpy as np
import pytest
import vtk

slicer = pytest.importorskip("slicer")

from fakes import FakeTransferLauncher  # noqa: E402
from LTNetTransferLib import TransferError, TransferLogic  # noqa: E402
from LTNetTransferLib.logic import exportResultLabelMap  # noqa: E402
from LTNetTransferLib.outputs import setShow3D  # noqa: E402


def oblique_target(name="patient scan"):
    matrix = np.eye(4)
    matrix[:3, :3] = np.array([[0.0, -1.1, 0.0], [0.9, 0.0, 0.0], [0.0, 0.0, 1.3]])
    matrix[:3, 3] = [10.0, -20.0, 5.5]
    voxels = np.random.default_rng(0).random((12, 16, 20)).astype(np.float32)
    return slicer.util.addVolumeFromArray(voxels, ijkToRAS=matrix, name=name)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "brain model.pt"
    path.write_bytes(b"not really a model, the child is a stand-in")
    return path


def run(model, targets, launcher=None, **options):
    logic = TransferLogic(launcher or FakeTransferLauncher(scores=(0.97, 0.5, 0.7)))
    job = logic.start(model, targets, device="cpu", prealign=False, refineSteps=3, **options)
    job.wait(timeout=30)
    return logic.loadResults(job), job


def hierarchy(scene):
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def folder_name(node):
    shNode = hierarchy(node.GetScene())
    return shNode.GetItemName(shNode.GetItemParent(shNode.GetItemByDataNode(node)))


def test_without_qc_volumes_only_the_segmentation_and_qc_tables_are_added_in_a_named_folder(scene, model):
    target = oblique_target()
    before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    (result,), job = run(model, [target], qcVolumes=False)
    added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    added = [node for node in added if node.GetID() not in before]
    data = {node.GetClassName() for node in added if not node.GetHideFromEditors()}
    assert data == {"vtkMRMLSegmentationNode", "vtkMRMLTableNode"}, data
    assert result.transformNode is None and result.jacobianNode is None and result.colorTableNode is None
    assert folder_name(result.segmentationNode) == "patient scan - LTNet brain model"
    assert folder_name(result.qcTableNode) == "patient scan - LTNet brain model"
    assert not job.workFolder.exists()


def test_with_qc_volumes_every_output_is_in_its_target_folder_under_the_run_folder(scene, model):
    targets = [oblique_target("first"), oblique_target("second")]
    results, _ = run(model, targets, qcVolumes=True)
    for result, target in zip(results, targets):
        for node in (result.segmentationNode, result.transformNode, result.jacobianNode, result.reconstructedAtlasNode):
            assert folder_name(node) == f"{target.GetName()} - LTNet brain model", node.GetName()
    assert folder_name(results[0].qcTableNode) == "LTNet brain model (2 targets)"
    shNode = hierarchy(scene)
    targetFolder = shNode.GetItemParent(shNode.GetItemByDataNode(results[1].segmentationNode))
    assert shNode.GetItemName(shNode.GetItemParent(targetFolder)) == "LTNet brain model (2 targets)"


def test_every_output_says_how_it_was_made(scene, model):
    target = oblique_target()
    (result,), _ = run(model, [target], qcVolumes=True)
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    for node in (result.segmentationNode, result.transformNode, result.warpedAtlasNode, result.qcTableNode):
        assert node.GetAttribute("LTNet.model") == str(model.resolve())
        assert node.GetAttribute("LTNet.modelSHA256") == expected
        assert node.GetAttribute("LTNet.version") == __import__("ltnet").__version__
        settings = json.loads(node.GetAttribute("LTNet.settings"))
        assert settings["device"] == "cpu" and settings["prealign"] is False and settings["refineSteps"] == 3
    assert result.segmentationNode.GetAttribute("LTNet.target") == "patient scan"


def segment_names(node):
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


def test_an_existing_segmentation_gets_its_segments_replaced_not_duplicated(scene, model):
    target = oblique_target()
    existing = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my segmentation")
    existing.GetSegmentation().AddEmptySegment("kept", "Tumour", (1.0, 1.0, 0.0))
    existing.GetSegmentation().AddEmptySegment("old", "Posterior hippocampus", (0.0, 1.0, 0.0))
    (result,), _ = run(model, [target], outputSegmentationNode=existing, qcVolumes=False)
    assert result.segmentationNode is existing
    assert segment_names(existing) == ["Tumour", "Posterior hippocampus", "Anterior hippocampus"]
    (result,), _ = run(model, [target], outputSegmentationNode=existing, qcVolumes=False)  # again: still no duplicates
    assert segment_names(existing) == ["Tumour", "Posterior hippocampus", "Anterior hippocampus"]
    assert existing.GetAttribute("LTNet.modelSHA256") == hashlib.sha256(model.read_bytes()).hexdigest()
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 1
    posterior = existing.GetSegmentation().GetSegmentIdBySegmentName("Posterior hippocampus")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(posterior)
    labelMap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        existing, ids, labelMap, target, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY
    )
    assert slicer.util.arrayFromVolume(labelMap).sum() > 0  # the transferred label, not the empty old segment


def test_an_existing_segmentation_takes_one_target_only(scene, model):
    existing = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    with pytest.raises(TransferError, match="choose Create new"):
        run(model, [oblique_target("a"), oblique_target("b")], outputSegmentationNode=existing)


def test_show_3d_makes_and_removes_the_closed_surface(scene, model):
    (result,), _ = run(model, [oblique_target()])
    closed = slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName()
    setShow3D(result.segmentationNode, True)
    assert result.segmentationNode.GetSegmentation().ContainsRepresentation(closed)
    assert result.segmentationNode.GetDisplayNode().GetVisibility3D()
    setShow3D(result.segmentationNode, False)
    assert not result.segmentationNode.GetSegmentation().ContainsRepresentation(closed)
    assert not result.segmentationNode.GetDisplayNode().GetVisibility3D()


def test_label_map_export_keeps_the_atlas_values_names_colors_and_the_target_grid(scene, model):
    target = oblique_target()
    launcher = FakeTransferLauncher()
    launcher.SEGMENTS = [(4, "Anterior hippocampus", (0.9, 0.3, 0.2)), (7, "Posterior hippocampus", (0.2, 0.6, 0.9))]
    (result,), _ = run(model, [target], launcher)
    labelMap = exportResultLabelMap(result)
    assert labelMap.IsA("vtkMRMLLabelMapVolumeNode")
    assert set(np.unique(slicer.util.arrayFromVolume(labelMap))) == {0, 4, 7}
    expected, actual = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    target.GetIJKToRASMatrix(expected)
    labelMap.GetIJKToRASMatrix(actual)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(actual), slicer.util.arrayFromVTKMatrix(expected))
    assert slicer.util.arrayFromVolume(labelMap).shape == slicer.util.arrayFromVolume(target).shape
    colors = labelMap.GetDisplayNode().GetColorNode()
    assert colors.GetColorName(7) == "Posterior hippocampus"
    rgba = [0.0] * 4
    colors.GetColor(4, rgba)
    np.testing.assert_allclose(rgba[:3], (0.9, 0.3, 0.2), atol=1 / 255)  # stored in 8 bits
    assert folder_name(labelMap) == "patient scan - LTNet brain model"


def test_a_failed_child_leaves_no_work_folder_and_nothing_in_the_scene(scene, model):
    target = oblique_target()
    before = scene.GetNumberOfNodes()
    launcher = FakeTransferLauncher(code=2, stderr="ltnet: error: brain model.pt: not an LTNet model.\n")
    logic = TransferLogic(launcher)
    job = logic.start(model, [target], device="cpu")
    assert (job.workFolder / "inputs").is_dir()  # it holds a copy of the patient scan while running
    while not job.poll():
        pass
    with pytest.raises(TransferError, match="not an LTNet model"):
        logic.loadResults(job)
    assert not job.workFolder.exists()
    assert scene.GetNumberOfNodes() == before
