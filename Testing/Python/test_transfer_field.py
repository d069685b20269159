"""The forward field (ITK, LPS) as a Slicer grid transform (RAS), on a synthetic oblique field with large
displacements, so that a missing or extra axis flip cannot go unnoticed."""

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")

from LTNetTransferLib.field import addGridTransformNode, readDisplacementField  # noqa: E402

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def oblique_field() -> sitk.Image:
    rng = np.random.default_rng(1)
    vectors = rng.normal(0.0, 4.0, size=(7, 9, 11, 3))  # (k, j, i, xyz), LPS mm
    vectors[..., 0] += 5.0  # a clear shift along L ...
    vectors[..., 1] -= 3.0  # ... and P, whose signs flip in RAS
    field = sitk.GetImageFromArray(vectors, isVector=True)
    field.SetSpacing((0.9, 1.3, 1.1))
    field.SetOrigin((10.0, -20.0, 5.0))
    field.SetDirection(sitk.VersorTransform((0.2, 1.0, -0.4), 0.6).GetMatrix())
    return field


def test_from_parent_maps_target_points_to_atlas_points_in_ras(scene, tmp_path):
    field = oblique_field()
    sitk.WriteTransform(sitk.DisplacementFieldTransform(sitk.Image(field)), str(tmp_path / "field.h5"))
    reference = sitk.DisplacementFieldTransform(sitk.Image(field))
    node = addGridTransformNode(scene, readDisplacementField(tmp_path / "field.h5"), "field")
    from_parent = node.GetTransformFromParent()
    size = np.array(field.GetSize())
    rng = np.random.default_rng(2)
    indices = [np.zeros(3), size - 1, (size - 1) / 2] + [rng.uniform(0, size - 1) for _ in range(5)]
    for index in indices:
        point_lps = np.array(field.TransformContinuousIndexToPhysicalPoint(index.tolist()))
        atlas_lps = np.array(reference.TransformPoint(point_lps.tolist()))
        assert np.linalg.norm(atlas_lps - point_lps) > 1.0
        atlas_ras = np.array(from_parent.TransformPoint((LPS_TO_RAS @ point_lps).tolist()))
        np.testing.assert_allclose(atlas_ras, LPS_TO_RAS @ atlas_lps, atol=1e-3)  # mm


def test_array_from_grid_transform_holds_ras_displacements(scene):
    field = oblique_field()
    node = addGridTransformNode(scene, field, "field")
    displacement = slicer.util.arrayFromGridTransform(node)
    np.testing.assert_allclose(displacement, sitk.GetArrayFromImage(field) @ LPS_TO_RAS)


def test_a_field_must_be_3d_vectors(scene):
    with pytest.raises(ValueError, match="3-vectors"):
        addGridTransformNode(scene, sitk.Image(5, 5, 5, sitk.sitkFloat32), "scalar")
