"""Label map -> segmentation node: atlas names, colors and values kept; nothing temporary left in the scene."""

import numpy as np
import pytest
import vtk

slicer = pytest.importorskip("slicer")

from LTNetTransferLib.segments import SegmentInfo, addColorTableNode, addSegmentationNode  # noqa: E402


def test_segments_keep_atlas_values_and_absent_labels_stay_as_empty_segments(scene):
    labels = np.zeros((5, 6, 7), np.int16)
    labels[1:3, 1:3, 1:3] = 7
    ijk_to_ras = np.diag([0.9, 1.3, 1.1, 1.0])
    ijk_to_ras[:3, 3] = [4, -5, 6]
    infos = [SegmentInfo(2, "Posterior", (0.2, 0.6, 0.9)), SegmentInfo(7, "Anterior", (0.9, 0.4, 0.25))]
    before = scene.GetNumberOfNodes()
    node = addSegmentationNode(scene, labels, ijk_to_ras, infos, "result")
    added = [scene.GetNthNode(i).GetClassName() for i in range(before, scene.GetNumberOfNodes())]
    assert sorted(added) == ["vtkMRMLSegmentationDisplayNode", "vtkMRMLSegmentationNode"]
    segmentation = node.GetSegmentation()
    found = {
        segmentation.GetNthSegment(i).GetLabelValue(): segmentation.GetNthSegment(i)
        for i in range(segmentation.GetNumberOfSegments())
    }
    assert found.keys() == {2, 7}
    assert found[7].GetName() == "Anterior" and found[2].GetName() == "Posterior"
    np.testing.assert_allclose(found[7].GetColor(), (0.9, 0.4, 0.25))

    colors = addColorTableNode(scene, infos, "colors")
    exported = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    segmentation.GetSegmentIDs(ids)
    reference = slicer.util.addVolumeFromArray(labels.astype(np.float32), ijkToRAS=ijk_to_ras)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        node, ids, exported, reference, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, colors
    )
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(exported), labels)
