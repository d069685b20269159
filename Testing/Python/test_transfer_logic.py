"""LTNetTransfer's Qt-free logic against a real MRML scene and the real `ltnet transfer` child process.

One transfer (the bundled demo model onto an oblique, anisotropic sample scan) is shared by the
tests of this module; each checks one promise of the module.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

slicer = pytest.importorskip("slicer")
ltnet_sample = pytest.importorskip("ltnet.sample")

from LTNetTransferLib import SubprocessLauncher, TransferError, TransferLogic  # noqa: E402
from LTNetTransferLib.display import showCycleConsistency  # noqa: E402

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def model_path() -> Path:
    path = Path(os.environ.get("LTNET_TEST_MODEL", ltnet_sample.demo_model_path()))
    if not path.is_file():
        pytest.skip(f"the bundled demo model {path} is not there")
    return path


def oblique_ijk_to_ras() -> np.ndarray:
    """Rotated about all three axes, spacing 0.9 x 1.3 x 1.1 mm, off-centre origin."""
    rotation = sitk.VersorTransform((0.3, -0.5, 0.8), 0.35).GetMatrix()
    matrix = np.eye(4)
    matrix[:3, :3] = np.array(rotation).reshape(3, 3) @ np.diag([0.9, 1.3, 1.1])
    matrix[:3, 3] = [12.5, -30.25, 7.125]
    return matrix


def add_oblique_target(scene, name="hippocampus oblique"):
    scan = ltnet_sample.held_out_scan_paths()[0]
    voxels = sitk.GetArrayFromImage(sitk.ReadImage(str(scan)))
    node = slicer.util.addVolumeFromArray(voxels, ijkToRAS=oblique_ijk_to_ras(), name=name)
    assert node.GetScene() is scene
    return node


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def node_count(scene) -> int:
    return scene.GetNumberOfNodes()


def export_labels(scene, segmentation_node, reference_node, color_node):
    """Slicer's own export on the reference's geometry; the color table keeps the label values."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    segmentation_node.GetSegmentation().GetSegmentIDs(ids)
    ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation_node, ids, labelmap, reference_node, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, color_node
    )
    assert ok
    return labelmap


class CountingLauncher(SubprocessLauncher):
    """The real launcher, counting the child processes it starts."""

    def __init__(self):
        super().__init__(sys.executable, {"OMP_NUM_THREADS": "1"})
        self.started = []

    def __call__(self, arguments, workFolder):
        self.started.append(arguments)
        return super().__call__(arguments, workFolder)


def add_sample_scan(scene, path, name):
    node = slicer.util.addVolumeFromArray(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), name=name)
    node.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras_of_image(sitk.ReadImage(str(path)))))
    return node


def vtk_matrix(array) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


@pytest.fixture(scope="module")
def transferred_all(module_scene, tmp_path_factory):
    """(scene, target nodes, results, work files, log, launcher) of one transfer onto two targets through the
    logic (one child process), work folder kept."""
    scene = module_scene
    targets = [
        add_oblique_target(scene),
        add_sample_scan(scene, ltnet_sample.held_out_scan_paths()[1], "second target"),
    ]
    log = []
    launcher = CountingLauncher()
    logic = TransferLogic(launcher, logCallback=log.append, keepFiles=True)
    # Without the affine pre-alignment, `ltnet transfer` is deterministic, so voxels can be compared exactly.
    job = logic.start(model_path(), targets, device="cpu", prealign=False)
    fractions = []
    while not job.poll():
        fractions.append(job.progress.fraction)
    job.raiseIfFailed()
    results = logic.loadResults(job)
    return scene, targets, results, job.files, log, launcher, fractions


@pytest.fixture(scope="module")
def transferred(transferred_all):
    """(scene, target node, result, work files, log) of the first target."""
    scene, targets, results, files, log, *_ = transferred_all
    return scene, targets[0], results[0], files[0], log


def test_segmentation_lies_on_the_target_grid_and_matches_the_command_line(transferred, tmp_path):
    scene, target, result, files, _ = transferred
    exported = export_labels(scene, result.segmentationNode, target, result.colorTableNode)
    np.testing.assert_array_equal(ijk_to_ras(exported), ijk_to_ras(target))
    ours = slicer.util.arrayFromVolume(exported)
    assert ours.shape == slicer.util.arrayFromVolume(target).shape
    assert set(np.unique(ours)) == {0, 1, 2}

    # The same target written by Slicer's own storage node, labelled by `ltnet transfer` directly.
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(tmp_path / "target.nrrd"))
    assert storage.WriteData(target)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ltnet",
            "transfer",
            "--model",
            str(model_path()),
            "--target",
            str(tmp_path / "target.nrrd"),
            "--out",
            str(tmp_path / "labels.nrrd"),
            "--device",
            "cpu",
            "--no-prealign",
            "--progress",
            "jsonl",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    reference = sitk.ReadImage(str(tmp_path / "labels.nrrd"))
    np.testing.assert_allclose(ijk_to_ras_of_image(reference), ijk_to_ras(target), atol=1e-5)
    np.testing.assert_array_equal(ours, sitk.GetArrayFromImage(reference))


def ijk_to_ras_of_image(image) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin())
    return matrix


def test_segments_have_the_atlas_names_colors_and_label_values(transferred):
    _, target, result, _, _ = transferred
    import slicerio

    atlas = slicerio.read_segmentation(str(ltnet_sample.atlas_labels_path()), skip_voxels=True)
    expected = {s["labelValue"]: (s["name"], tuple(s["color"][:3])) for s in atlas["segments"]}
    segmentation = result.segmentationNode.GetSegmentation()
    found = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        found[segment.GetLabelValue()] = (segment.GetName(), tuple(segment.GetColor()))
    assert found.keys() == expected.keys()
    for value, (name, color) in expected.items():
        assert found[value][0] == name
        np.testing.assert_allclose(found[value][1], color, atol=1e-6)
    assert result.segmentationNode.GetName() == f"{target.GetName()} LTNet segmentation"


def test_grid_transform_moves_points_as_the_field_says(transferred):
    _, target, result, files, _ = transferred
    field_transform = sitk.ReadTransform(str(files.extra("field")))
    field = (
        sitk.DisplacementFieldTransform(field_transform.GetNthTransform(0))
        if field_transform.GetName() == "CompositeTransform"
        else sitk.DisplacementFieldTransform(field_transform)
    )
    image = field.GetDisplacementField()
    from_parent = result.transformNode.GetTransformFromParent()
    assert result.transformNode.IsA("vtkMRMLGridTransformNode")
    size = np.array(image.GetSize())
    rng = np.random.default_rng(0)
    indices = [(0, 0, 0), tuple(int(s) // 2 for s in size), tuple(int(s) - 1 for s in size)]
    continuous = [tuple(rng.uniform(1, size - 2)) for _ in range(3)]
    for index in indices + continuous:
        point_lps = np.array(image.TransformContinuousIndexToPhysicalPoint([float(i) for i in index]))
        atlas_lps = np.array(field.TransformPoint(point_lps.tolist()))
        atlas_ras = np.array(from_parent.TransformPoint((LPS_TO_RAS @ point_lps).tolist()))
        np.testing.assert_allclose(atlas_ras, LPS_TO_RAS @ atlas_lps, atol=1e-4)


def test_overlays_and_qc_tables_exist_on_the_right_grids(transferred):
    scene, target, result, _, _ = transferred
    for node in (result.warpedAtlasNode, result.jacobianNode, result.inverseConsistencyNode):
        np.testing.assert_array_equal(ijk_to_ras(node), ijk_to_ras(target))
        assert slicer.util.arrayFromVolume(node).shape == slicer.util.arrayFromVolume(target).shape
    atlas_grid = ijk_to_ras(result.atlasVolumeNode)
    np.testing.assert_allclose(ijk_to_ras(result.reconstructedAtlasNode), atlas_grid, atol=1e-6)
    reconstructed = export_labels(
        scene, result.reconstructedSegmentationNode, result.atlasVolumeNode, result.colorTableNode
    )
    assert set(np.unique(slicer.util.arrayFromVolume(reconstructed))) <= {0, 1, 2}
    jacobian = slicer.util.arrayFromVolume(result.jacobianNode)
    assert 0.2 < np.median(jacobian) < 5
    assert result.jacobianNode.GetDisplayNode().GetColorNode() is not None
    legends = [result.jacobianNode.GetNthDisplayNode(i) for i in range(result.jacobianNode.GetNumberOfDisplayNodes())]
    assert any(node.IsA("vtkMRMLColorLegendDisplayNode") for node in legends)

    assert result.qc["verdict"] in ("OK", "check", "likely failed")
    assert {"label_cycle_dice_mean", "inverse_consistency_mm", "folded_fraction", "score"} <= result.qc.keys()
    targets = result.qcTableNode.GetTable()
    assert targets.GetNumberOfRows() == 2  # one row per target of the run
    assert targets.GetColumnByName("Verdict").GetValue(0) == result.qc["verdict"]
    assert targets.GetColumnByName("Target").GetValue(0) == target.GetName()
    numeric = [targets.GetColumn(i) for i in range(targets.GetNumberOfColumns()) if targets.GetColumn(i).IsNumeric()]
    assert numeric and all(not np.isnan(column.GetValue(0)) for column in numeric)  # no column without a number
    labels = result.labelQcTableNode.GetTable()
    assert labels.GetNumberOfRows() == 2 * len(result.qc["label_cycle_dice"]) == 4
    assert labels.GetColumnByName("Label cycle Dice").GetValue(0) == pytest.approx(
        result.qc["label_cycle_dice"][0]["dice"]
    )


def test_cycle_consistency_view_puts_each_image_in_its_view(transferred):
    scene, target, result, _, _ = transferred
    for name in ("Red", "Yellow", "Green"):
        slice_node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
        slice_node.SetLayoutName(name)
        composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(name)
    assert showCycleConsistency(result, opacity=0.3) == ["Red", "Yellow", "Green"]
    composites = {
        scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").GetLayoutName(): scene.GetNthNodeByClass(
            i, "vtkMRMLSliceCompositeNode"
        )
        for i in range(3)
    }
    assert composites["Red"].GetForegroundVolumeID() == result.warpedAtlasNode.GetID()
    assert composites["Yellow"].GetBackgroundVolumeID() == result.atlasVolumeNode.GetID()
    assert composites["Yellow"].GetForegroundVolumeID() == result.reconstructedAtlasNode.GetID()
    assert composites["Green"].GetForegroundVolumeID() == result.jacobianNode.GetID()
    assert composites["Red"].GetForegroundOpacity() == pytest.approx(0.3)
    assert not result.reconstructedSegmentationNode.GetDisplayNode().GetVisibility2DFill()
    showCycleConsistency(result, scalarMap="inverse_consistency")
    assert composites["Green"].GetForegroundVolumeID() == result.inverseConsistencyNode.GetID()


def test_all_targets_run_in_one_child_with_progress(transferred_all):
    scene, targets, results, files, log, launcher, fractions = transferred_all
    assert len(launcher.started) == 1
    assert [result.targetVolumeNode for result in results] == targets
    assert [line for line in log if line.startswith("ltnet transfer")] == ["ltnet " + " ".join(launcher.started[0])]
    assert any("Transferred 1 of 2" in line for line in log) and any("Transferred 2 of 2" in line for line in log)
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] <= 1.0  # moves within targets too
    second = results[1]
    exported = export_labels(scene, second.segmentationNode, targets[1], second.colorTableNode)
    np.testing.assert_array_equal(ijk_to_ras(exported), ijk_to_ras(targets[1]))
    assert set(np.unique(slicer.util.arrayFromVolume(exported))) == {0, 1, 2}
    names = {second.segmentationNode.GetSegmentation().GetNthSegment(i).GetName() for i in range(2)}
    assert names == {"Anterior hippocampus", "Posterior hippocampus"}
    table = second.qcTableNode.GetTable()
    assert table.GetNumberOfRows() == 2 and table.GetColumnByName("Target").GetValue(1) == "second target"


def test_atlas_override_replaces_the_model_atlas(scene):
    """The override atlas is a sample scan with its reference labels, renamed: the result carries its names."""
    scan = ltnet_sample.training_scan_paths()[0]
    atlas = add_sample_scan(scene, scan, "override atlas")
    labels = sitk.ReadImage(str(ltnet_sample.label_path(scan)))
    labelmap = slicer.util.addVolumeFromArray(
        sitk.GetArrayFromImage(labels).astype(np.int16),
        nodeClassName="vtkMRMLLabelMapVolumeNode",
        name="override labels",
    )
    labelmap.SetIJKToRASMatrix(vtk_matrix(ijk_to_ras_of_image(labels)))
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "override segmentation")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    names = {1: "Head of hippocampus", 2: "Tail of hippocampus"}
    for index in range(segmentation.GetSegmentation().GetNumberOfSegments()):
        segment = segmentation.GetSegmentation().GetNthSegment(index)
        segment.SetName(names[segment.GetLabelValue()])
        segment.SetColor(0.1, 0.2 * segment.GetLabelValue(), 0.9)
    target = add_oblique_target(scene)

    launcher = CountingLauncher()
    result = TransferLogic(launcher).transfer(
        model_path(),
        target,
        device="cpu",
        prealign=False,
        atlasVolumeNode=atlas,
        atlasSegmentationNode=segmentation,
        timeout=300,
        refineSteps=5,
    )
    arguments = launcher.started[0]
    assert "--atlas-image" in arguments and "--atlas-labels" in arguments
    assert arguments[arguments.index("--refine") + 1] == "5"
    found = {}
    for index in range(result.segmentationNode.GetSegmentation().GetNumberOfSegments()):
        segment = result.segmentationNode.GetSegmentation().GetNthSegment(index)
        found[segment.GetLabelValue()] = (segment.GetName(), tuple(segment.GetColor()))
    assert {value: name for value, (name, _) in found.items()} == names
    np.testing.assert_allclose(found[2][1], (0.1, 0.4, 0.9), atol=1e-6)
    atlasSegments = result.atlasSegmentationNode.GetSegmentation()
    assert {atlasSegments.GetNthSegment(i).GetName() for i in range(atlasSegments.GetNumberOfSegments())} == set(
        names.values()
    )
    assert {entry["name"] for entry in result.qc["label_cycle_dice"]} == set(names.values())


def test_atlas_override_needs_both_nodes(scene):
    target = add_oblique_target(scene)
    before = node_count(scene)
    with pytest.raises(TransferError, match="both an atlas volume and an atlas segmentation"):
        TransferLogic().transfer(model_path(), target, atlasVolumeNode=target)
    empty = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    before = node_count(scene)
    with pytest.raises(TransferError, match="has no segments"):
        TransferLogic().transfer(model_path(), target, atlasVolumeNode=target, atlasSegmentationNode=empty)
    assert node_count(scene) == before


# -- bad inputs: a clear error, nothing added to the scene -------------------------------------------------


def test_no_target_is_a_clear_error(scene):
    before = node_count(scene)
    with pytest.raises(TransferError, match="No target volume"):
        TransferLogic().transfer(model_path(), None)
    with pytest.raises(TransferError, match="No target volume"):
        TransferLogic().transferMany(model_path(), [])
    assert node_count(scene) == before


def test_2d_volume_is_a_clear_error(scene):
    flat = slicer.util.addVolumeFromArray(np.zeros((1, 40, 30), dtype=np.float32), name="flat")
    before = node_count(scene)
    with pytest.raises(TransferError, match="not a 3-D scan"):
        TransferLogic().transfer(model_path(), flat)
    assert node_count(scene) == before


def test_label_map_as_target_is_a_clear_error(scene):
    labels = slicer.util.addVolumeFromArray(
        np.zeros((8, 8, 8), dtype=np.int16), name="labels", nodeClassName="vtkMRMLLabelMapVolumeNode"
    )
    before = node_count(scene)
    with pytest.raises(TransferError, match="not a scalar volume"):
        TransferLogic().transfer(model_path(), labels)
    assert node_count(scene) == before


def test_missing_model_file_is_a_clear_error(scene, tmp_path):
    target = add_oblique_target(scene)
    before = node_count(scene)
    with pytest.raises(TransferError, match="does not exist"):
        TransferLogic().transfer(tmp_path / "nowhere.pt", target)
    assert node_count(scene) == before


def test_a_file_that_is_no_model_fails_in_the_child_with_its_reason(scene, tmp_path):
    target = add_oblique_target(scene)
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_text("not a model")
    before = node_count(scene)
    with pytest.raises(TransferError, match="not an LTNet model") as raised:
        TransferLogic(SubprocessLauncher(sys.executable)).transfer(not_a_model, target, device="cpu", timeout=120)
    assert "ltnet: error:" in raised.value.details
    assert node_count(scene) == before
