"""LTNetCommonLib.geometry: RAS (Slicer) <-> LPS (ITK) on an oblique, anisotropic grid, both ways."""

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")

from LTNetCommonLib.geometry import (  # noqa: E402 (after the slicer-core skip)
    addVolumeNodeFromImage,
    ijkToRasFromImage,
    ijkToRasFromNode,
    imageFromVolumeNode,
    lpsFromIjkToRas,
    sameGrid,
)


def obliqueIjkToRas():
    """Rotated about all three axes, spacing 0.9 x 1.3 x 1.1 mm, off-centre origin."""
    matrix = np.eye(4)
    rotation = np.array(sitk.VersorTransform((0.3, -0.5, 0.8), 0.35).GetMatrix()).reshape(3, 3)
    matrix[:3, :3] = rotation @ np.diag([0.9, 1.3, 1.1])
    matrix[:3, 3] = [12.5, -30.25, 7.125]
    return matrix


IJK_TO_RAS = obliqueIjkToRas()


def test_a_node_and_its_image_place_every_voxel_at_the_same_point(scene):
    voxels = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)  # KJI
    node = slicer.util.addVolumeFromArray(voxels, ijkToRAS=IJK_TO_RAS, name="oblique")
    image = imageFromVolumeNode(node)
    np.testing.assert_allclose(ijkToRasFromImage(image), IJK_TO_RAS, atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), voxels)
    ijk = (6, 2, 4)
    lps = np.array(image.TransformIndexToPhysicalPoint(ijk))
    ras = IJK_TO_RAS @ np.array([*ijk, 1.0])
    np.testing.assert_allclose(lps * [-1, -1, 1], ras[:3], atol=1e-9)
    assert image[ijk] == voxels[ijk[2], ijk[1], ijk[0]]

    back = addVolumeNodeFromImage(scene, image, "back")
    np.testing.assert_allclose(ijkToRasFromNode(back), IJK_TO_RAS, atol=1e-9)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(back), voxels)
    assert sameGrid(image, IJK_TO_RAS) and not sameGrid(image, IJK_TO_RAS + np.diag([0, 0, 0.01, 0]))


def test_lps_geometry_round_trip():
    origin, spacing, direction = lpsFromIjkToRas(IJK_TO_RAS)
    image = sitk.Image(3, 3, 3, sitk.sitkUInt8)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    np.testing.assert_allclose(ijkToRasFromImage(image), IJK_TO_RAS, atol=1e-9)


def test_a_node_without_voxels_is_a_clear_error(scene):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(ValueError, match="'empty' has no voxels"):
        imageFromVolumeNode(node)
