"""Geometry between Slicer (RAS) and ITK/SimpleITK (LPS), and volume nodes <-> SimpleITK images.

Slicer places a voxel with its 4x4 IJKToRAS matrix; ITK with origin, spacing and
direction in LPS. LPS -> RAS flips the first two axes of points, of direction
columns and of vectors. Arrays on both sides are indexed [k, j, i] (KJI).
Parent transforms are not applied (harden them first).
"""

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

#: Multiplying an LPS point or vector by this gives RAS (and back).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ijkToRasFromLps(origin, spacing, direction) -> np.ndarray:
    """The 4x4 IJKToRAS matrix of ITK geometry (LPS origin, spacing, 3x3 direction as 9 numbers, row-major)."""
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(np.asarray(spacing, dtype=float))
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(origin, dtype=float)
    return matrix


def lpsFromIjkToRas(ijkToRas) -> tuple:
    """(origin, spacing, direction) in LPS, as SimpleITK wants them, from a 4x4 IJKToRAS matrix."""
    ijkToRas = np.asarray(ijkToRas, dtype=float)
    spacing = np.linalg.norm(ijkToRas[:3, :3], axis=0)
    origin = LPS_TO_RAS @ ijkToRas[:3, 3]
    direction = LPS_TO_RAS @ ijkToRas[:3, :3] @ np.diag(1.0 / spacing)
    return tuple(origin.tolist()), tuple(spacing.tolist()), tuple(direction.ravel().tolist())


def ijkToRasFromImage(image: sitk.Image) -> np.ndarray:
    """The 4x4 IJKToRAS matrix of a 3-D SimpleITK image."""
    return ijkToRasFromLps(image.GetOrigin(), image.GetSpacing(), image.GetDirection())


def ijkToRasFromNode(volumeNode) -> np.ndarray:
    """The 4x4 IJKToRAS matrix of a volume node, as numpy."""
    vtkMatrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(vtkMatrix)
    return slicer.util.arrayFromVTKMatrix(vtkMatrix)


def vtkMatrixFromArray(matrix: np.ndarray) -> vtk.vtkMatrix4x4:
    """A vtkMatrix4x4 (or 3x3 upper-left block of one) from a numpy array."""
    vtkMatrix = vtk.vtkMatrix4x4()
    rows, columns = matrix.shape
    for row in range(rows):
        for column in range(columns):
            vtkMatrix.SetElement(row, column, float(matrix[row, column]))
    return vtkMatrix


def imageFromArray(array: np.ndarray, ijkToRas) -> sitk.Image:
    """A SimpleITK image (LPS) from a KJI-ordered voxel array and its 4x4 IJKToRAS matrix."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    origin, spacing, direction = lpsFromIjkToRas(ijkToRas)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def imageFromVolumeNode(volumeNode) -> sitk.Image:
    """A SimpleITK image (LPS) with the voxels and the exact geometry of a scalar volume node.

    Raises ValueError if the node has no voxels or is not a scalar 3-D volume."""
    if volumeNode.GetImageData() is None:
        raise ValueError(f"Volume '{volumeNode.GetName()}' has no voxels.")
    array = slicer.util.arrayFromVolume(volumeNode)
    if array.ndim != 3:
        raise ValueError(f"Volume '{volumeNode.GetName()}' is not a scalar 3D volume (array shape {array.shape}).")
    return imageFromArray(array.copy(), ijkToRasFromNode(volumeNode))


def updateVolumeNodeFromImage(volumeNode, image: sitk.Image, ijkToRas: np.ndarray | None = None):
    """Set a volume node's voxels from a SimpleITK image and its geometry from `ijkToRas`
    (the image's own geometry by default). Vector images become multi-component volumes."""
    slicer.util.updateVolumeFromArray(volumeNode, sitk.GetArrayFromImage(image))
    volumeNode.SetIJKToRASMatrix(vtkMatrixFromArray(ijkToRasFromImage(image) if ijkToRas is None else ijkToRas))
    return volumeNode


def addVolumeNodeFromImage(
    scene, image: sitk.Image, name: str, className: str = "vtkMRMLScalarVolumeNode", ijkToRas: np.ndarray | None = None
):
    """A new volume node in `scene` holding `image` (see `updateVolumeNodeFromImage`), with display nodes."""
    volumeNode = scene.AddNewNodeByClass(className, name)
    updateVolumeNodeFromImage(volumeNode, image, ijkToRas)
    volumeNode.CreateDefaultDisplayNodes()
    return volumeNode


def sameGrid(image: sitk.Image, ijkToRas: np.ndarray, tolerance: float = 1e-4) -> bool:
    """True if `image` has the given IJKToRAS geometry (within `tolerance` mm / per element)."""
    return bool(np.allclose(ijkToRasFromImage(image), ijkToRas, atol=tolerance))
