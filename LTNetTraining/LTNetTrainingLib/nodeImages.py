"""MRML volume and segmentation nodes -> SimpleITK images and files for the child process.

Slicer keeps geometry in RAS, ITK/SimpleITK in LPS. Crossing the boundary flips
the first two axes of the origin and of the direction matrix; the spacing is the
length of each IJK->RAS column. Parent transforms are not applied (harden them
first).
"""

import numpy as np

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def ijkToRasArray(volumeNode):
    """The volume's IJK->RAS matrix as a 4x4 numpy array."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def lpsGeometryFromIjkToRas(ijkToRas):
    """(origin, spacing, direction) in LPS, as SimpleITK wants them, from a 4x4 IJK->RAS matrix."""
    ijkToRas = np.asarray(ijkToRas, dtype=float)
    columns = ijkToRas[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    directionRas = columns / spacing
    origin = RAS_TO_LPS @ ijkToRas[:3, 3]
    direction = RAS_TO_LPS @ directionRas
    return tuple(origin), tuple(spacing), tuple(direction.ravel())


def sitkImageFromArray(array, ijkToRas):
    """A SimpleITK image from a KJI-ordered voxel array and its IJK->RAS matrix."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    origin, spacing, direction = lpsGeometryFromIjkToRas(ijkToRas)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def sitkImageFromVolumeNode(volumeNode):
    """The voxels and geometry of a scalar volume node as a SimpleITK image (LPS)."""
    import slicer

    if volumeNode.GetImageData() is None:
        raise ValueError(f"Volume '{volumeNode.GetName()}' has no voxels.")
    array = slicer.util.arrayFromVolume(volumeNode)
    if array.ndim != 3:
        raise ValueError(f"Volume '{volumeNode.GetName()}' is not a scalar 3D volume (array shape {array.shape}).")
    return sitkImageFromArray(array, ijkToRasArray(volumeNode))


def writeVolumeNode(volumeNode, path):
    """Write a scalar volume node to `path` (.nrrd or .nii.gz) in LPS."""
    import SimpleITK as sitk

    sitk.WriteImage(sitkImageFromVolumeNode(volumeNode), str(path), True)
    return str(path)


def segmentLabelValues(segmentation):
    """Label value per segment ID: the segments' own values when positive and unique, else 1..N."""
    segmentIds = [segmentation.GetNthSegmentID(index) for index in range(segmentation.GetNumberOfSegments())]
    values = [segmentation.GetSegment(segmentId).GetLabelValue() for segmentId in segmentIds]
    if all(value > 0 for value in values) and len(set(values)) == len(values):
        return dict(zip(segmentIds, values))
    return {segmentId: index + 1 for index, segmentId in enumerate(segmentIds)}


def labelArrayFromSegmentationNode(segmentationNode, referenceVolumeNode):
    """(label array on the reference volume's grid (KJI, uint16), [(segmentId, name, color, value)]).

    Each segment is exported on its own, so overlapping segments are allowed: the
    later segment wins where they overlap.
    """
    import slicer
    import vtk

    segmentation = segmentationNode.GetSegmentation()
    values = segmentLabelValues(segmentation)
    labels = np.zeros(slicer.util.arrayFromVolume(referenceVolumeNode).shape[:3], dtype=np.uint16)
    segments = []
    scene = segmentationNode.GetScene()
    for segmentId, value in values.items():
        segment = segmentation.GetSegment(segmentId)
        segmentIds = vtk.vtkStringArray()
        segmentIds.InsertNextValue(segmentId)
        labelmapNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__LTNetTrainingExport__")
        try:
            exported = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentationNode, segmentIds, labelmapNode, referenceVolumeNode,
                slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
            if not exported:
                raise ValueError(f"Segment '{segment.GetName()}' could not be exported as a label map.")
            mask = slicer.util.arrayFromVolume(labelmapNode) > 0
        finally:
            displayNode = labelmapNode.GetDisplayNode()
            if displayNode is not None and displayNode.GetColorNode() is not None \
                    and displayNode.GetColorNode().GetName().startswith("__LTNetTrainingExport__"):
                scene.RemoveNode(displayNode.GetColorNode())
            scene.RemoveNode(labelmapNode)
        labels[mask] = value
        segments.append((segmentId, segment.GetName(), tuple(segment.GetColor()), value))
    return labels, segments


def writeSegmentationNode(segmentationNode, referenceVolumeNode, path):
    """Write the segmentation as a Slicer `.seg.nrrd` label map on the reference volume's grid.

    Segment names, colors and label values go into the header, so `ltnet` keeps them.
    """
    import SimpleITK as sitk

    labels, segments = labelArrayFromSegmentationNode(segmentationNode, referenceVolumeNode)
    image = sitkImageFromArray(labels, ijkToRasArray(referenceVolumeNode))
    extent = " ".join(f"0 {size - 1}" for size in image.GetSize())
    for index, (segmentId, name, color, value) in enumerate(segments):
        prefix = f"Segment{index}_"
        image.SetMetaData(prefix + "ID", segmentId)
        image.SetMetaData(prefix + "Name", name)
        image.SetMetaData(prefix + "NameAutoGenerated", "0")
        image.SetMetaData(prefix + "Color", " ".join(f"{component:g}" for component in color))
        image.SetMetaData(prefix + "ColorAutoGenerated", "0")
        image.SetMetaData(prefix + "LabelValue", str(value))
        image.SetMetaData(prefix + "Layer", "0")
        image.SetMetaData(prefix + "Extent", extent)
    image.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")
    image.SetMetaData("Segmentation_ReferenceImageExtentOffset", "0 0 0")
    sitk.WriteImage(image, str(path), True)
    return str(path)
