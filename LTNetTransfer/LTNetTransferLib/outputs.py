"""Where a run's outputs go and what the user can do with them: subject-hierarchy folders, an existing
segmentation updated in place, the 3-D surface on or off, a label map that keeps the atlas label values. No Qt."""

from pathlib import Path

import slicer
import vtk

from .segments import addColorTableNode


def modelDisplayName(modelPath) -> str:
    """The model as folder names show it: the file name without `.pt`."""
    name = Path(str(modelPath)).name
    return name[:-3] if name.endswith(".pt") else name


def folderName(targetName: str, modelPath) -> str:
    """The subject-hierarchy folder of one target's outputs: "<target> - LTNet <model>"."""
    return f"{targetName} - LTNet {modelDisplayName(modelPath)}"


def subjectHierarchy(scene):
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def addFolder(scene, name: str, parentItem=None) -> int:
    """A new subject-hierarchy folder item named `name` under `parentItem` (the scene's top if None)."""
    hierarchy = subjectHierarchy(scene)
    return hierarchy.CreateFolderItem(hierarchy.GetSceneItemID() if parentItem is None else parentItem, name)


def moveToFolder(scene, nodes, folderItem: int) -> None:
    """Put each node (None skipped) in the folder, creating its subject-hierarchy item if it has none."""
    hierarchy = subjectHierarchy(scene)
    for node in nodes:
        if node is None:
            continue
        item = hierarchy.GetItemByDataNode(node)
        if item:
            hierarchy.SetItemParent(item, folderItem)
        else:
            hierarchy.CreateItem(folderItem, node)


def removeNode(node) -> None:
    """Remove a node and its subject-hierarchy item."""
    scene = node.GetScene()
    hierarchy = subjectHierarchy(scene)
    item = hierarchy.GetItemByDataNode(node)
    if item:
        hierarchy.RemoveItem(item, False, False)
    scene.RemoveNode(node)


def folderOf(node) -> int:
    """The subject-hierarchy item holding `node` (0 if none)."""
    hierarchy = subjectHierarchy(node.GetScene())
    item = hierarchy.GetItemByDataNode(node)
    return hierarchy.GetItemParent(item) if item else 0


def replaceSegments(destinationNode, sourceNode) -> list[str]:
    """Copy every segment of `sourceNode` into `destinationNode`: a segment of the same name is replaced
    (at its place in the list), others are added at the end; segments of other names are kept.
    Returns the destination's IDs of the copied segments, in the source's order."""
    destination = destinationNode.GetSegmentation()
    source = sourceNode.GetSegmentation()
    copied = []
    for index in range(source.GetNumberOfSegments()):
        sourceId = source.GetNthSegmentID(index)
        name = source.GetNthSegment(index).GetName()
        existingId = destination.GetSegmentIdBySegmentName(name)
        position = destination.GetSegmentIndex(existingId) if existingId else -1
        if existingId:
            destination.RemoveSegment(existingId)
        before = set(_segmentIds(destination))
        if not destination.CopySegmentFromSegmentation(source, sourceId, False):
            raise RuntimeError(f"Slicer could not copy segment '{name}' into '{destinationNode.GetName()}'")
        newId = (set(_segmentIds(destination)) - before).pop()
        if position >= 0:
            destination.SetSegmentIndex(newId, position)
        copied.append(newId)
    return copied


def _segmentIds(segmentation) -> list[str]:
    return [segmentation.GetNthSegmentID(index) for index in range(segmentation.GetNumberOfSegments())]


def setShow3D(segmentationNode, show: bool) -> None:
    """The segmentation's closed-surface representation (Slicer's "Show 3D"): made and shown, or removed."""
    segmentationNode.CreateDefaultDisplayNodes()
    displayNode = segmentationNode.GetDisplayNode()
    if show:
        segmentationNode.CreateClosedSurfaceRepresentation()
        displayNode.SetPreferredDisplayRepresentationName3D(
            slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName()
        )
    else:
        segmentationNode.RemoveClosedSurfaceRepresentation()
    displayNode.SetVisibility3D(show)


def exportLabelMap(segmentationNode, referenceVolumeNode, segmentInfos, name: str | None = None):
    """A `vtkMRMLLabelMapVolumeNode` on the reference volume's grid whose voxels hold the atlas label values,
    with a color table whose entry `value` has the atlas label's name and color. Returns (labelMap, colorTable).

    segmentInfos: the atlas labels (`segments.SegmentInfo`); segments are matched to them by name.
    """
    scene = segmentationNode.GetScene()
    name = name or f"{segmentationNode.GetName()} label map"
    colorNode = addColorTableNode(scene, segmentInfos, name + " colors")
    labelMap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name)
    segmentation = segmentationNode.GetSegmentation()
    values = {info.name: info.value for info in segmentInfos}
    segmentIds = vtk.vtkStringArray()
    for index in range(segmentation.GetNumberOfSegments()):
        if segmentation.GetNthSegment(index).GetName() in values:
            segmentIds.InsertNextValue(segmentation.GetNthSegmentID(index))
    if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentationNode,
        segmentIds,
        labelMap,
        referenceVolumeNode,
        slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY,
        colorNode,
    ):
        scene.RemoveNode(labelMap)
        scene.RemoveNode(colorNode)
        raise RuntimeError(f"Slicer could not export '{segmentationNode.GetName()}' as a label map")
    labelMap.CreateDefaultDisplayNodes()
    labelMap.GetDisplayNode().SetAndObserveColorNodeID(colorNode.GetID())
    labelMap.SetAndObserveTransformNodeID(referenceVolumeNode.GetTransformNodeID())
    return labelMap, colorNode
