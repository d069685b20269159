"""Affine pre-alignment recovers a known affine, also for a scan much finer than the atlas, with either image fixed."""

import numpy as np
import pytest
import SimpleITK as sitk

from ltnet.data import prealign
from ltnet.data.intensity import normalise
from ltnet.data.prealign import affine_prealign
from ltnet.data.support import box_eroded, inner_support


def known_affine(about: sitk.Image) -> sitk.AffineTransform:
    """A fixed affine map (a few degrees, a few percent, a few mm) about the centre of ``about``."""
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([1.06, 0.05, 0.0, -0.04, 0.95, 0.03, 0.02, 0.0, 1.03])
    transform.SetTranslation([2.0, -1.5, 1.0])
    transform.SetCenter(about.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in about.GetSize()]))
    return transform


@pytest.mark.parametrize("fixed", ["scan", "atlas"])
def test_a_known_affine_is_recovered_from_a_finer_scan(atlas_image, fixed):
    atlas = normalise(atlas_image)
    truth = known_affine(atlas)
    inverse = truth.GetInverse()  # scan points -> atlas points: the scan is the atlas moved by `truth`
    scan_grid = sitk.Image(
        [2 * s for s in atlas.GetSize()], sitk.sitkFloat32
    )  # half the atlas's spacing: bin-averaged first
    scan_grid.SetSpacing([s / 2 for s in atlas.GetSpacing()])
    scan_grid.SetDirection(atlas.GetDirection())
    scan_grid.SetOrigin(atlas.GetOrigin())
    scan = sitk.Resample(atlas, scan_grid, inverse, sitk.sitkLinear, 0.0)

    found = affine_prealign(atlas, scan, fixed=fixed)

    inner = [
        atlas.TransformIndexToPhysicalPoint([int(s * f) for s, f in zip(atlas.GetSize(), fractions)])
        for fractions in np.random.default_rng(0).uniform(0.25, 0.75, size=(50, 3))
    ]
    error = [np.linalg.norm(np.subtract(found.TransformPoint(p), truth.TransformPoint(p))) for p in inner]
    assert np.max(error) < 1.0, np.max(error)  # mm, on a 1 mm atlas


def test_an_unknown_fixed_image_is_refused(atlas_image):
    with pytest.raises(ValueError, match="fixed"):
        affine_prealign(normalise(atlas_image), normalise(atlas_image), fixed="both")


def test_the_pre_alignment_is_reproducible_and_leaves_itk_threads_as_they_were(atlas_image):
    atlas = normalise(atlas_image)
    scan = sitk.Resample(atlas, atlas, known_affine(atlas).GetInverse(), sitk.sitkLinear, 0.0)
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    runs = [affine_prealign(atlas, scan, fixed="scan").GetParameters() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]  # bitwise: ITK runs the registration on one thread
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() == before


def test_the_draws_side_by_side_give_what_they_give_one_after_the_other(atlas_image, monkeypatch):
    atlas = normalise(atlas_image)
    scan = sitk.Resample(atlas, atlas, known_affine(atlas).GetInverse(), sitk.sitkLinear, 0.0)
    side_by_side = affine_prealign(atlas, scan, seed=3).GetParameters()

    class OneAfterTheOther:  # the pool's interface, run in this thread
        def __init__(self, workers):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, function, items):
            return [function(item) for item in items]

    monkeypatch.setattr(prealign, "ThreadPoolExecutor", OneAfterTheOther)
    assert affine_prealign(atlas, scan, seed=3).GetParameters() == side_by_side


@pytest.mark.parametrize("shape", [(7, 9, 11), (1, 5, 5), (2, 3, 4), (12, 10, 8)])
def test_the_inner_support_erodes_as_simpleitk_does(shape):
    mask = np.random.default_rng(sum(shape)).random(shape) < 0.85
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    expected = sitk.BinaryErode(image, [1] * 3, sitk.sitkBox, 0, 1, False)  # the grid's border counts as background
    assert np.array_equal(box_eroded(mask), sitk.GetArrayFromImage(expected) > 0)


class DivergingRegistration(sitk.ImageRegistrationMethod):
    """A registration whose optimiser ends far off: the affine halves the scale and shifts 15 mm."""

    def SetInitialTransform(self, transform, inPlace=True):
        self.transform = transform
        return super().SetInitialTransform(transform, inPlace)

    def Execute(self, fixed, moving):
        self.transform.SetMatrix([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5])
        self.transform.SetTranslation([15.0, 0.0, 0.0])
        return self.transform


def test_a_registration_that_ends_worse_than_the_centring_is_not_used(atlas_image, monkeypatch):
    atlas = normalise(atlas_image)
    scan = sitk.Resample(atlas, atlas, known_affine(atlas).GetInverse(), sitk.sitkLinear, 0.0)
    monkeypatch.setattr(sitk, "ImageRegistrationMethod", DivergingRegistration)
    found = affine_prealign(atlas, scan, fixed="scan")
    assert np.allclose(found.GetMatrix(), np.eye(3).ravel())  # the centring: a translation only, taking
    centres = [grid_centre(atlas), support_centre(scan)]  # the atlas grid's centre to that of the scan's metric region
    assert np.allclose(found.TransformPoint(centres[0].tolist()), centres[1], atol=1e-3)
    assert np.linalg.norm(centres[1] - centres[0]) > 0.3  # mm: the check above tells a shift from none


def grid_centre(image: sitk.Image) -> np.ndarray:
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))


def support_centre(image: sitk.Image) -> np.ndarray:
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(inner_support(image))
    return np.asarray(shape.GetCentroid(1))
