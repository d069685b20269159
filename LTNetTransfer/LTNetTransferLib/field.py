"""The forward displacement field (ITK, LPS) -> a Slicer grid transform node (RAS).

Convention (both sides): target point x corresponds to atlas point x + field(x),
displacements in mm. This is a resampling transform, so in Slicer it is the
node's "from parent" transform: put an atlas node under it and Slicer shows it
warped onto the target (as it does with ITK transform files, which are "from parent").
"""

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
import vtk.util.numpy_support
from LTNetCommonLib.geometry import LPS_TO_RAS, ijkToRasFromImage, vtkMatrixFromArray


def readDisplacementField(path) -> sitk.Image:
    """The displacement field image (vector, LPS mm) of an ITK displacement-field transform file (.h5/.tfm)
    or of a vector image file (.nrrd/.nii.gz)."""
    path = str(path)
    if path.endswith((".h5", ".hdf5", ".tfm", ".txt", ".mat")):
        transform = sitk.ReadTransform(path)
        while transform.GetName() == "CompositeTransform":
            transform = sitk.CompositeTransform(transform).GetNthTransform(0)
        return sitk.DisplacementFieldTransform(transform).GetDisplacementField()
    return sitk.ReadImage(path)


def addGridTransformNode(scene, field: sitk.Image, name: str):
    """A `vtkMRMLGridTransformNode` whose "from parent" transform maps RAS point p to p + field(p), in RAS.

    field: 3-D image of 3-vectors (mm, LPS components), on any grid (LPS geometry).
    """
    if field.GetDimension() != 3 or field.GetNumberOfComponentsPerPixel() != 3:
        raise ValueError(
            f"displacement field must be a 3-D image of 3-vectors, got {field.GetDimension()}-D "
            f"with {field.GetNumberOfComponentsPerPixel()} components"
        )
    displacementRas = sitk.GetArrayFromImage(field).astype(np.float64) @ LPS_TO_RAS  # (k, j, i, 3), LPS -> RAS
    ijkToRas = ijkToRasFromImage(field)
    spacing = np.linalg.norm(ijkToRas[:3, :3], axis=0)

    grid = vtk.vtkImageData()
    grid.SetOrigin(ijkToRas[:3, 3])
    grid.SetSpacing(spacing)
    grid.SetDimensions(field.GetSize())
    vectors = vtk.util.numpy_support.numpy_to_vtk(displacementRas.reshape(-1, 3), deep=True, array_type=vtk.VTK_DOUBLE)
    vectors.SetNumberOfComponents(3)
    grid.GetPointData().SetScalars(vectors)

    gridTransform = slicer.vtkOrientedGridTransform()
    gridTransform.SetDisplacementGridData(grid)
    gridTransform.SetGridDirectionMatrix(vtkMatrixFromArray(ijkToRas[:3, :3] @ np.diag(1.0 / spacing)))
    gridTransform.SetInterpolationModeToLinear()
    transformNode = scene.AddNewNodeByClass("vtkMRMLGridTransformNode", name)
    transformNode.SetAndObserveTransformFromParent(gridTransform)
    return transformNode
