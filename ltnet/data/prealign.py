"""Affine pre-alignment of a scan to the atlas (SimpleITK registration)."""

import numpy as np
import SimpleITK as sitk

from ltnet.data.grid import no_finer_than

SAMPLES = 50_000  # metric sample points per level: the cost stays bounded on large grids


def affine_prealign(atlas: sitk.Image, scan: sitk.Image, seed: int = 0) -> sitk.AffineTransform:
    """An affine transform mapping atlas points to scan points (LPS mm), i.e. ``scan ∘ T ≈ atlas``.

    Multi-resolution (halvings down to 16 voxels per axis) with at most ``SAMPLES``
    metric points per level, so large grids cost little more than small ones. A scan
    finer than the atlas is first bin-averaged to about the atlas's spacing (the
    metric would otherwise smooth and take gradients of every one of its voxels).
    Deterministic: the metric's sample points come from ``seed`` (ITK takes seed 0 as
    "use the clock", so ``seed + 1`` is passed). Both images should be normalised to [0, 1]. Centres of the two images are
    aligned first; then a three-level affine registration maximises Mattes
    mutual information. If registration makes the match worse than the centring,
    the centring is kept, so a failed registration never hurts.
    """
    scan = no_finer_than(scan, min(atlas.GetSpacing()))
    initial = sitk.AffineTransform(
        sitk.CenteredTransformInitializer(atlas, scan, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.GEOMETRY)
    )
    registration = sitk.ImageRegistrationMethod()
    registration.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    registration.SetMetricSamplingStrategy(registration.REGULAR)
    shrink = [f for f in (8, 4, 2) if min(atlas.GetSize()) // f >= 16] + [1]
    voxels = np.prod(atlas.GetSize())
    registration.SetMetricSamplingPercentagePerLevel([min(1.0, SAMPLES / (voxels / f**3)) for f in shrink], seed + 1)
    registration.SetInterpolator(sitk.sitkLinear)
    registration.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3, numberOfIterations=100, relaxationFactor=0.6)
    registration.SetOptimizerScalesFromPhysicalShift()
    registration.SetShrinkFactorsPerLevel(shrink)
    registration.SetSmoothingSigmasPerLevel([s / 2 for s in shrink])
    registration.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    registered = sitk.AffineTransform(initial)
    registration.SetInitialTransform(registered, inPlace=True)
    try:
        registration.Execute(atlas, scan)
    except RuntimeError:
        return initial
    return registered if _metric(atlas, scan, registered, seed) < _metric(atlas, scan, initial, seed) else initial


def _metric(atlas: sitk.Image, scan: sitk.Image, transform: sitk.Transform, seed: int) -> float:
    evaluation = sitk.ImageRegistrationMethod()
    evaluation.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    evaluation.SetMetricSamplingStrategy(evaluation.REGULAR)
    evaluation.SetMetricSamplingPercentage(min(1.0, SAMPLES / np.prod(atlas.GetSize())), seed + 1)
    evaluation.SetInitialTransform(transform)
    evaluation.SetInterpolator(sitk.sitkLinear)
    try:
        return evaluation.MetricEvaluate(atlas, scan)
    except RuntimeError:
        return 0.0
