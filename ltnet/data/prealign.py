"""Affine pre-alignment of a scan to the atlas (SimpleITK registration)."""

from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

from ltnet.data.grid import no_finer_than

SAMPLES = 50_000  # metric sample points per level at most: the cost stays bounded on large grids
# At full resolution: a quarter of the voxels, but at least MIN_SAMPLES (about 20 per bin of the 32x32 joint histogram)
# and at most SAMPLES (docs/BENCHMARKS.md, "Tuning LT-Net", item 28). Coarser levels: every voxel, up to SAMPLES.
FULL_RESOLUTION_SHARE = 0.25
MIN_SAMPLES = 20_000
MIN_LEVEL_SIZE = 16  # voxels along the shortest axis of a coarser level
ITERATIONS = 50  # per level; on the data measured the optimiser's step falls below its minimum first (item 28)
FIXED_IMAGES = (
    "atlas",
    "scan",
)  # which image the registration holds fixed; "atlas" is the default and what older model files used


def affine_prealign(atlas: sitk.Image, scan: sitk.Image, seed: int = 0, fixed: str = "atlas") -> sitk.AffineTransform:
    """An affine transform mapping atlas points to scan points (LPS mm), i.e. ``scan ∘ T ≈ atlas``.

    ``fixed`` is the image whose voxels the metric samples while the other moves:
    "atlas" (the default) or "scan" (as elastix and ANTs register). Which serves a
    network better depends on the data (docs/BENCHMARKS.md, "Tuning LT-Net", item 25):
    on the hippocampus crops "scan" raised the affine-only Dice from 0.693 to 0.707
    and LT-Net's from 0.763 to 0.770; on the IBSR brains the affine was level and
    LT-Net lost 0.014. ``ltnet train --prealign-fixed`` chooses; the model keeps the
    choice (``Atlas.prealign_fixed``), as its network learned from scans aligned so.

    Multi-resolution (halvings down to 16 voxels per axis). The metric samples at most
    ``SAMPLES`` points per level, and at full resolution a quarter of the voxels (at
    least ``MIN_SAMPLES``), so large grids cost little more than small ones. A scan
    finer than the atlas is first bin-averaged to about the atlas's spacing (the
    metric would otherwise smooth and take gradients of every one of its voxels).
    Deterministic: the metric's sample points come from ``seed`` (ITK takes seed 0
    as "use the clock", so ``seed + 1`` is passed). Both images should be normalised
    to [0, 1]. Centres of the two images are aligned first; then a multi-level affine
    registration maximises Mattes mutual information. If registration makes the
    match worse than the centring, the centring is kept, so a failed registration
    never hurts.
    """
    if fixed not in FIXED_IMAGES:
        raise ValueError(f"fixed must be one of {FIXED_IMAGES}, not {fixed!r}")
    with _one_itk_thread():
        scan = no_finer_than(scan, min(atlas.GetSpacing()))
        if fixed == "atlas":
            return _register(atlas, scan, seed)
        return _register(scan, atlas, seed).GetInverse()


@contextmanager
def _one_itk_thread():
    """ITK on one thread while the registration runs. With more, ITK adds up partial results in no fixed order: two
    runs differed by 1e-5 in the affine parameters, so a seeded training was not reproducible. On the grids pre-aligned
    here one thread also costs less CPU than two (0.32 against 0.36 s per hippocampus crop; docs/BENCHMARKS.md, item 28),
    if more wall time; batch transfer pre-aligns the next scans in worker processes meanwhile."""
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _register(fixed: sitk.Image, moving: sitk.Image, seed: int) -> sitk.AffineTransform:
    """The affine map of ``fixed`` points to ``moving`` points that maximises their mutual information (see ``affine_prealign``)."""
    initial = sitk.AffineTransform(
        sitk.CenteredTransformInitializer(
            fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
    )
    registration = sitk.ImageRegistrationMethod()
    registration.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    registration.SetMetricSamplingStrategy(registration.REGULAR)
    shrink = [f for f in (8, 4, 2) if min(fixed.GetSize()) // f >= MIN_LEVEL_SIZE] + [1]
    voxels = np.prod(fixed.GetSize())
    coarse = [min(1.0, SAMPLES / (voxels / f**3)) for f in shrink[:-1]]
    registration.SetMetricSamplingPercentagePerLevel([*coarse, _full_resolution_share(voxels)], seed + 1)
    registration.SetInterpolator(sitk.sitkLinear)
    registration.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=ITERATIONS, relaxationFactor=0.6
    )
    registration.SetOptimizerScalesFromPhysicalShift()
    registration.SetShrinkFactorsPerLevel(shrink)
    registration.SetSmoothingSigmasPerLevel([s / 2 for s in shrink])
    registration.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    registered = sitk.AffineTransform(initial)
    registration.SetInitialTransform(registered, inPlace=True)
    try:
        registration.Execute(fixed, moving)
    except RuntimeError:
        return initial
    return registered if _metric(fixed, moving, registered) < _metric(fixed, moving, initial) else initial


def _metric(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    """Mattes mutual information of ``moving`` seen through ``transform`` (fixed points -> moving points); lower is better.

    ITK evaluates it at every voxel of ``fixed``, so both images are first bin-averaged by 2 where every axis keeps
    ``MIN_LEVEL_SIZE`` voxels: on the 60 hippocampus crops that cost 2.6 instead of 14 ms and kept the same choice
    between registration and centring each time (docs/BENCHMARKS.md, "Tuning LT-Net", item 32).
    """
    if min(fixed.GetSize()) // 2 >= MIN_LEVEL_SIZE:
        fixed, moving = sitk.BinShrink(fixed, [2] * 3), sitk.BinShrink(moving, [2] * 3)
    evaluation = sitk.ImageRegistrationMethod()
    evaluation.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    evaluation.SetInitialTransform(transform)
    evaluation.SetInterpolator(sitk.sitkLinear)
    try:
        return evaluation.MetricEvaluate(fixed, moving)
    except RuntimeError:
        return 0.0


def _full_resolution_share(voxels: float) -> float:
    """The share of an image's ``voxels`` the metric samples at full resolution (see ``FULL_RESOLUTION_SHARE``)."""
    return min(1.0, SAMPLES / voxels, max(FULL_RESOLUTION_SHARE, MIN_SAMPLES / voxels))
