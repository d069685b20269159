"""Checks run before a training starts; each raises `TrainingInputError` in the user's words.

Atlas image and atlas labels may be MRML nodes or file paths. Geometry is
compared as IJK->RAS matrices (4x4) plus voxel counts.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from LTNetCommonLib.geometry import ijkToRasFromLps, ijkToRasFromNode

from .cohortFiles import readImageHeader
from .trainingErrors import TrainingInputError

GRID_TOLERANCE = 1e-3  # mm, and relative for spacing/direction


def isNode(value):
    return hasattr(value, "GetID") and hasattr(value, "GetName")


def describe(value):
    return f"'{value.GetName()}'" if isNode(value) else f"'{value}'"


def fileGeometry(path):
    """(ijkToRas 4x4, size (i, j, k), number of components) of an image file, from its header."""
    reader, problem = readImageHeader(path)
    if problem is not None:
        raise TrainingInputError(f"Cannot read {path}: {problem}. Choose a NIfTI or NRRD image file.")
    dimension = reader.GetDimension()
    size = tuple(reader.GetSize())[:3]
    spacing = np.array(reader.GetSpacing()[:3])
    direction = np.array(reader.GetDirection()).reshape(dimension, dimension)[:3, :3]
    origin = np.array(reader.GetOrigin()[:3])
    return ijkToRasFromLps(origin, spacing, direction), size, reader.GetNumberOfComponents()


def nodeGeometry(volumeNode):
    imageData = volumeNode.GetImageData()
    if imageData is None:
        raise TrainingInputError(f"Volume {describe(volumeNode)} has no voxels. Load or choose another volume.")
    return ijkToRasFromNode(volumeNode), tuple(imageData.GetDimensions())


def checkAtlasVolume(atlasVolume):
    """The atlas image must exist and hold voxels; returns (ijkToRas, size)."""
    if atlasVolume is None or atlasVolume == "":
        raise TrainingInputError("No atlas volume is selected. Choose the atlas image (a volume or a file).")
    if isNode(atlasVolume):
        return nodeGeometry(atlasVolume)
    if not os.path.isfile(atlasVolume):
        raise TrainingInputError(f"Atlas image file {atlasVolume} does not exist. Choose an existing file.")
    ijkToRas, size, _ = fileGeometry(atlasVolume)
    return ijkToRas, size


def sameAxes(ijkToRasA, ijkToRasB):
    """True when both grids have the same spacing and directions (within tolerance)."""
    return np.allclose(ijkToRasA[:3, :3], ijkToRasB[:3, :3], rtol=GRID_TOLERANCE, atol=GRID_TOLERANCE)


def voxelOffset(ijkToRasA, ijkToRasB):
    """Where grid B's first voxel lies in grid A's voxel coordinates (I, J, K)."""
    return np.linalg.solve(ijkToRasA[:3, :3], ijkToRasB[:3, 3] - ijkToRasA[:3, 3])


def gridMismatchError(atlasVolume, atlasSegmentation, detail):
    return TrainingInputError(
        f"Atlas segmentation {describe(atlasSegmentation)} and atlas volume {describe(atlasVolume)} are on "
        f"different grids ({detail}). Use a segmentation made on the atlas volume, or resample it onto the "
        "atlas volume first (e.g. the Resample Image (BRAINS) module with the atlas as reference)."
    )


def checkSegmentationNode(segmentationNode, atlasVolume, atlasGeometry):
    """A segmentation node must hold a non-empty segment, stored on the atlas grid (possibly cropped)."""
    import slicer

    segmentation = segmentationNode.GetSegmentation()
    if segmentation.GetNumberOfSegments() == 0:
        raise TrainingInputError(
            f"Atlas segmentation {describe(segmentationNode)} has no segments. "
            "Segment the atlas structures first (Segment Editor)."
        )
    labelmapName = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    anyVoxels = False
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        labelmap = segment.GetRepresentation(labelmapName)
        if labelmap is None:
            anyVoxels = True  # another source representation; it is rasterized onto the atlas grid on export
            continue
        extent = labelmap.GetExtent()
        if extent[0] > extent[1] or extent[2] > extent[3] or extent[4] > extent[5]:
            continue
        scalars = labelmap.GetPointData().GetScalars()
        if scalars is None:
            continue
        low, high = scalars.GetRange()
        if max(abs(low), abs(high)) > 0:
            anyVoxels = True
            checkLabelmapGrid(labelmap, atlasVolume, segmentationNode, atlasGeometry[0])
    if not anyVoxels:
        raise TrainingInputError(
            f"Atlas segmentation {describe(segmentationNode)} is empty: none of its segments "
            "holds a voxel. Paint the atlas structures first (Segment Editor)."
        )


def checkLabelmapGrid(labelmap, atlasVolume, segmentationNode, atlasIjkToRas):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(matrix)
    labelmapIjkToRas = np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])
    if not sameAxes(atlasIjkToRas, labelmapIjkToRas):
        raise gridMismatchError(atlasVolume, segmentationNode, "spacing or axis directions differ")
    offset = voxelOffset(atlasIjkToRas, labelmapIjkToRas)
    if not np.allclose(offset, np.round(offset), atol=1e-2):
        raise gridMismatchError(atlasVolume, segmentationNode, f"voxels are shifted by {np.round(offset, 3)} voxel")


def checkLabelVolumeGeometry(labelsGeometry, atlasGeometry, atlasVolume, atlasSegmentation):
    labelsIjkToRas, labelsSize = labelsGeometry
    atlasIjkToRas, atlasSize = atlasGeometry
    if tuple(labelsSize) != tuple(atlasSize):
        raise gridMismatchError(atlasVolume, atlasSegmentation, f"size {tuple(labelsSize)} vs {tuple(atlasSize)}")
    if not sameAxes(atlasIjkToRas, labelsIjkToRas):
        raise gridMismatchError(atlasVolume, atlasSegmentation, "spacing or axis directions differ")
    if not np.allclose(atlasIjkToRas[:3, 3], labelsIjkToRas[:3, 3], atol=GRID_TOLERANCE * 10):
        raise gridMismatchError(atlasVolume, atlasSegmentation, "origins differ")


def checkAtlasSegmentation(atlasSegmentation, atlasVolume, atlasGeometry):
    """Not empty, and on the atlas volume's grid."""
    if atlasSegmentation is None or atlasSegmentation == "":
        raise TrainingInputError(
            "No atlas segmentation is selected. Choose the atlas labels (a segmentation or a file)."
        )
    if isNode(atlasSegmentation):
        if atlasSegmentation.IsA("vtkMRMLSegmentationNode"):
            checkSegmentationNode(atlasSegmentation, atlasVolume, atlasGeometry)
            return
        import slicer

        checkLabelVolumeGeometry(nodeGeometry(atlasSegmentation), atlasGeometry, atlasVolume, atlasSegmentation)
        if not np.any(slicer.util.arrayFromVolume(atlasSegmentation)):
            raise TrainingInputError(f"Atlas label map {describe(atlasSegmentation)} is empty (all voxels are 0).")
        return
    if not os.path.isfile(atlasSegmentation):
        raise TrainingInputError(f"Atlas labels file {atlasSegmentation} does not exist. Choose an existing file.")
    ijkToRas, size, _ = fileGeometry(atlasSegmentation)
    checkLabelVolumeGeometry((ijkToRas, size), atlasGeometry, atlasVolume, atlasSegmentation)
    import SimpleITK as sitk

    if not np.any(sitk.GetArrayFromImage(sitk.ReadImage(str(atlasSegmentation)))):
        raise TrainingInputError(
            f"Atlas labels file {atlasSegmentation} is empty (all voxels are 0). "
            "Choose the file that holds the atlas structures."
        )


def checkCohort(cohortVolumes, cohortFiles):
    """At least one scan to learn from; volume nodes must hold voxels, files must exist."""
    if not cohortVolumes and not cohortFiles:
        raise TrainingInputError(
            "The cohort is empty: choose unlabeled scans (volumes in the scene and/or a folder "
            "of image files) for the networks to learn from."
        )
    for volumeNode in cohortVolumes:
        nodeGeometry(volumeNode)
    for path in cohortFiles:
        if not os.path.isfile(path):
            raise TrainingInputError(f"Cohort file {path} does not exist. Remove it from the cohort.")


def checkOutputWritable(outputModelPath):
    """The model's folder must exist or be creatable, and accept a new file."""
    if not outputModelPath:
        raise TrainingInputError("No output model file is given. Choose where the trained model is saved (.pt).")
    folder = Path(outputModelPath).expanduser().resolve().parent
    if os.path.isdir(outputModelPath):
        raise TrainingInputError(f"Output model path {outputModelPath} is a folder. Give a file name, e.g. model.pt.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ltnet-write-test-"):
            pass
    except OSError as error:
        raise TrainingInputError(
            f"Output folder {folder} is not writable ({error.strerror or error}). Choose a folder you can write to."
        ) from None


def torchCudaAvailable():
    import torch

    return bool(torch.cuda.is_available())


def checkDevice(device, cudaAvailable=torchCudaAvailable):
    """'auto', 'cpu' or 'cuda'; 'cuda' needs a usable GPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise TrainingInputError(f"Unknown device '{device}'. Choose auto, cpu or cuda.")
    if device == "cuda" and not cudaAvailable():
        raise TrainingInputError(
            "GPU was asked for, but no usable GPU was found (torch.cuda.is_available() is "
            "false). Choose CPU or auto, or install a CUDA build of PyTorch (PyTorch Utils "
            "module) that matches the GPU driver."
        )


def checkInitModel(initModel):
    if initModel and not os.path.isfile(initModel):
        raise TrainingInputError(
            f"Model to start from {initModel} does not exist. Choose an existing .pt file, "
            "or start from the bundled model or from scratch."
        )
