"""Geometry between Slicer (RAS) and ITK/SimpleITK (LPS), and volume nodes <-> SimpleITK images.

Slicer places a voxel with its 4x4 IJKToRAS matrix; ITK with origin, spacing and
direction in LPS. LPS -> RAS flips the first two axes of points, of direction
columns and of vectors. Arrays on both sides are indexed [k, j, i] (KJI).
"""

import numpy as np
import SimpleITK as sitk
import vtk

import slicer

#: Multiplying an LPS point or vector by this gives RAS (and back).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ijkToRasFromImage(image: sitk.Image) -> np.ndarray:
    """The 4x4 IJKToRAS matrix of a 3-D SimpleITK image."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.array(image.GetOrigin(), dtype=float)
    return matrix


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


def imageFromVolumeNode(volumeNode) -> sitk.Image:
    """A SimpleITK image (LPS) with the voxels and the exact geometry of a scalar volume node."""
    ijkToRas = ijkToRasFromNode(volumeNode)
    spacing = np.linalg.norm(ijkToRas[:3, :3], axis=0)
    image = sitk.GetImageFromArray(slicer.util.arrayFromVolume(volumeNode).copy())
    image.SetSpacing(spacing.tolist())
    image.SetOrigin((LPS_TO_RAS @ ijkToRas[:3, 3]).tolist())
    image.SetDirection((LPS_TO_RAS @ ijkToRas[:3, :3] @ np.diag(1.0 / spacing)).ravel().tolist())
    return image


def updateVolumeNodeFromImage(volumeNode, image: sitk.Image, ijkToRas: np.ndarray | None = None):
    """Set a volume node's voxels from a SimpleITK image and its geometry from `ijkToRas`
    (the image's own geometry by default). Vector images become multi-component volumes."""
    slicer.util.updateVolumeFromArray(volumeNode, sitk.GetArrayFromImage(image))
    volumeNode.SetIJKToRASMatrix(vtkMatrixFromArray(ijkToRasFromImage(image) if ijkToRas is None else ijkToRas))
    return volumeNode


def addVolumeNodeFromImage(scene, image: sitk.Image, name: str, className: str = "vtkMRMLScalarVolumeNode",
                           ijkToRas: np.ndarray | None = None):
    """A new volume node in `scene` holding `image` (see `updateVolumeNodeFromImage`), with display nodes."""
    volumeNode = scene.AddNewNodeByClass(className, name)
    updateVolumeNodeFromImage(volumeNode, image, ijkToRas)
    volumeNode.CreateDefaultDisplayNodes()
    return volumeNode


def sameGrid(image: sitk.Image, ijkToRas: np.ndarray, tolerance: float = 1e-4) -> bool:
    """True if `image` has the given IJKToRAS geometry (within `tolerance` mm / per element)."""
    return bool(np.allclose(ijkToRasFromImage(image), ijkToRas, atol=tolerance))
