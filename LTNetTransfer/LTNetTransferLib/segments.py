"""Label maps -> segmentation nodes that keep the atlas's segment names, colors and label values."""

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import slicer
from LTNetCommonLib.geometry import vtkMatrixFromArray


@dataclass(frozen=True)
class SegmentInfo:
    """One atlas label: its value in label maps, its name, its color (r, g, b in 0..1)."""

    value: int
    name: str
    color: tuple


def readSegmentInfos(segNrrdPath) -> list[SegmentInfo]:
    """The segments described in a Slicer `.seg.nrrd` header (`SegmentN_Name`, `_Color`, `_LabelValue`)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(segNrrdPath))
    reader.ReadImageInformation()
    keys = set(reader.GetMetaDataKeys())
    infos = []
    index = 0
    while f"Segment{index}_ID" in keys or f"Segment{index}_Name" in keys:
        prefix = f"Segment{index}_"
        name = reader.GetMetaData(prefix + "Name") if prefix + "Name" in keys else f"Segment_{index + 1}"
        value = int(reader.GetMetaData(prefix + "LabelValue")) if prefix + "LabelValue" in keys else index + 1
        color = (
            tuple(float(c) for c in reader.GetMetaData(prefix + "Color").split())
            if prefix + "Color" in keys
            else (0.5, 0.5, 0.5)
        )
        infos.append(SegmentInfo(value, name, color[:3]))
        index += 1
    return infos


def segmentInfosFromValues(values) -> list[SegmentInfo]:
    """Generic names and colors for label values with no description (a plain label map)."""
    palette = [(0.9, 0.3, 0.2), (0.2, 0.6, 0.9), (0.3, 0.8, 0.3), (0.9, 0.8, 0.2), (0.7, 0.4, 0.9), (0.2, 0.8, 0.8)]
    return [
        SegmentInfo(int(v), f"Label {int(v)}", palette[i % len(palette)])
        for i, v in enumerate(sorted(int(v) for v in values if int(v) != 0))
    ]


def addColorTableNode(scene, segmentInfos, name: str):
    """A user color table node in which entry `value` has the segment's name and color."""
    colorNode = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    colorNode.SetTypeToUser()
    colorNode.SetNumberOfColors(max([info.value for info in segmentInfos], default=0) + 1)
    colorNode.SetColor(0, "Background", 0.0, 0.0, 0.0, 0.0)
    for info in segmentInfos:
        colorNode.SetColor(info.value, info.name, *info.color, 1.0)
    return colorNode


def addSegmentationNode(scene, labelArray: np.ndarray, ijkToRas: np.ndarray, segmentInfos, name: str, colorNode=None):
    """A segmentation node from a label map array (KJI) on the grid `ijkToRas`.

    The reference geometry is that grid, so exporting with EXTENT_REFERENCE_GEOMETRY gives the
    label map back voxel for voxel. Every atlas label gets a segment (empty if absent) with its
    name, color and label value; values not in `segmentInfos` get generic ones.
    colorNode: a color table from `addColorTableNode` (kept); a temporary one is made (and removed) if None.
    Export with that color table to keep the label values (Slicer numbers segments 1..N otherwise).
    """
    present = {int(v) for v in np.unique(labelArray) if v != 0}
    known = {info.value for info in segmentInfos}
    segmentInfos = list(segmentInfos) + segmentInfosFromValues(present - known)
    labelmapNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name + " labels (temporary)")
    temporaryColorNode = colorNode is None or bool(present - known)
    if temporaryColorNode:
        colorNode = addColorTableNode(scene, segmentInfos, name + " colors (temporary)")
    segmentationNode = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    try:
        slicer.util.updateVolumeFromArray(labelmapNode, labelArray.astype(np.int16, copy=False))
        labelmapNode.SetIJKToRASMatrix(vtkMatrixFromArray(ijkToRas))
        labelmapNode.CreateDefaultDisplayNodes()
        labelmapNode.GetDisplayNode().SetAndObserveColorNodeID(colorNode.GetID())
        segmentationNode.CreateDefaultDisplayNodes()
        segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(labelmapNode)
        if present and not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
            labelmapNode, segmentationNode
        ):
            raise RuntimeError(f"Slicer could not import the label map of '{name}'")
        segmentation = segmentationNode.GetSegmentation()
        byValue = {}
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(index)
            byValue[segment.GetLabelValue()] = segment
        for info in sorted(segmentInfos, key=lambda info: info.value):
            segment = byValue.get(info.value)
            if segment is None:  # the label vanished in this target: keep an empty segment
                segmentId = segmentation.AddEmptySegment("", info.name, info.color)
                segment = segmentation.GetSegment(segmentId)
            segment.SetName(info.name)
            segment.SetColor(*info.color)
            segment.SetLabelValue(info.value)
    except Exception:
        scene.RemoveNode(segmentationNode)
        raise
    finally:
        for node in (labelmapNode.GetDisplayNode(), labelmapNode, colorNode if temporaryColorNode else None):
            if node is not None:
                scene.RemoveNode(node)
    return segmentationNode
