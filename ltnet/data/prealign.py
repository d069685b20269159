"""Affine pre-alignment of a scan to the atlas (SimpleITK registration)."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

from ltnet.data.support import inner_support, on_working_grid, working_spacing

SAMPLES = 50_000  # metric sample points per level at most: the cost stays bounded on large grids
# At full resolution: a quarter of the voxels, but at least MIN_SAMPLES (about 20 per bin of the 32x32 joint histogram)
# and at most SAMPLES (docs/TUNING.md#t28). Coarser levels: every voxel, up to SAMPLES.
FULL_RESOLUTION_SHARE = 0.25
MIN_SAMPLES = 20_000
#: The atlas's working grid (``ltnet.data.support``) has at most this many voxels: 64^3. The hippocampus network
#: grid (40x48x40 at 1 mm) stays at its own spacing; the paper's 160x192x224 is registered at about 4x coarser.
WORKING_VOXELS = 2**18
#: A scan's working grid (its support's box at the atlas's working spacing) has at most this many times more.
MAX_SCAN_SHARE = 8
MIN_LEVEL_SIZE = 16  # voxels along the shortest axis of a coarser level
# Per level; on the data measured the optimiser's step falls below its minimum first (docs/TUNING.md#t28).
ITERATIONS = 50
#: Registrations per scan, each sampling the metric at its own points; the best by the metric is kept. Now and then
#: one draw ends in a poorer optimum that another avoids: on the 59 hippocampus scans reframed as in
#: ``ltnet.data.reframe``, two draws cut the largest change of the pre-alignment with the frame (the mean distance
#: over the atlas labels between the two frames' affines) from 2.2 to 1.4 mm, the mean from 0.50 to 0.46 mm, at
#: about a second more per scan at 160x192x224 (docs/BENCHMARKS.md, "Frame invariance").
DRAWS = 2
FIXED_IMAGES = (
    "atlas",
    "scan",
)  # which image the registration holds fixed; "atlas" is the default and what older model files used


def affine_prealign(atlas: sitk.Image, scan: sitk.Image, seed: int = 0, fixed: str = "atlas") -> sitk.AffineTransform:
    """An affine transform mapping atlas points to scan points (LPS mm), i.e. ``scan ∘ T ≈ atlas``.

    ``fixed`` is the image whose voxels the metric samples while the other moves:
    "atlas" (the default) or "scan" (as elastix and ANTs register). Which serves a
    network better depends on the data (docs/TUNING.md#t25):
    on the hippocampus crops "scan" raised the affine-only Dice from 0.693 to 0.707
    and LT-Net's from 0.763 to 0.770; on the IBSR brains the affine was level and
    LT-Net lost 0.014. ``ltnet train --prealign-fixed`` chooses; the model keeps the
    choice (``Atlas.prealign_fixed``), as its network learned from scans aligned so.

    The result hardly depends on the grid the scan was sampled on (its direction,
    spacing or field of view), only on the anatomy it shows. The scan is resampled
    onto a working grid in the atlas's direction at one isotropic spacing that covers
    its support (``ltnet.data.support``: every voxel but the zeros connected to the
    border), and the metric counts only points inside the scan's support, its outer
    voxel layer left out (``inner_support``), so neither the zero padding of a larger
    field of view or of an oblique grid nor the edge voxels that interpolation mixed
    with it are matched. The
    atlas is the same for every scan and never reframed, so it keeps its whole grid,
    unmasked: masking its support too lowered the hippocampus Dice against the true
    labels (docs/BENCHMARKS.md, "Frame invariance"). Registration starts from the
    atlas grid's centre on the centre of that region of the scan (the centring), runs
    multi-resolution (halvings down to 16 voxels per axis) and maximises Mattes
    mutual information, twice with different metric sample points (``DRAWS``); the best
    of the two and the centring, by the metric, is kept.
    The working spacing keeps the atlas's grid at most ``WORKING_VOXELS`` voxels, so
    large grids cost little more than small ones. Deterministic: the metric's sample
    points come from ``seed`` (draws ``DRAWS * seed`` on; ITK takes seed 0 as "use
    the clock", so each draw's number plus 1 is passed). Both images should be normalised to [0, 1].
    """
    if fixed not in FIXED_IMAGES:
        raise ValueError(f"fixed must be one of {FIXED_IMAGES}, not {fixed!r}")
    with _one_itk_thread():
        spacing = working_spacing(atlas, WORKING_VOXELS)
        direction = atlas.GetDirection()
        cap = MAX_SCAN_SHARE * WORKING_VOXELS
        atlas_grid, atlas_region = on_working_grid(atlas, spacing, direction, cap)  # its whole grid
        scan_grid, scan_support = on_working_grid(scan, spacing, direction, cap, inner_support(scan))
        if fixed == "atlas":
            initial = centring(atlas_region, scan_support)
            return _best_registration(atlas_grid, None, scan_grid, scan_support, initial, seed)
        initial = centring(scan_support, atlas_region)
        return _best_registration(scan_grid, scan_support, atlas_grid, None, initial, seed).GetInverse()


@contextmanager
def _one_itk_thread():
    """ITK on one thread while the registration runs. With more, ITK adds up partial results in no fixed order: two
    runs differed by 1e-5 in the affine parameters, so a seeded training was not reproducible. On the grids
    pre-aligned here one thread also costs less CPU than two (0.32 against 0.36 s per hippocampus crop;
    docs/TUNING.md#t28), if more wall time; batch transfer pre-aligns the next scans in worker processes
    meanwhile."""
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def centring(fixed_region: sitk.Image, moving_region: sitk.Image) -> sitk.AffineTransform:
    """The translation taking the centre of ``fixed_region`` (a uint8 mask) to that of ``moving_region`` (LPS mm),
    about the former."""
    centres = []
    for mask in (fixed_region, moving_region):
        shape = sitk.LabelShapeStatisticsImageFilter()
        shape.Execute(mask)
        centres.append(np.asarray(shape.GetCentroid(1)))
    transform = sitk.AffineTransform(3)
    transform.SetCenter(centres[0].tolist())
    transform.SetTranslation((centres[1] - centres[0]).tolist())
    return transform


def _best_registration(
    fixed: sitk.Image,
    fixed_mask: sitk.Image | None,
    moving: sitk.Image,
    moving_mask: sitk.Image | None,
    initial: sitk.AffineTransform,
    seed: int,
) -> sitk.AffineTransform:
    """The best by the metric (``_metric``) of ``initial`` and ``DRAWS`` registrations from it (``_register``), each
    with its own draw of sample points (seeds ``DRAWS * seed`` on). The draws run side by side, each on one ITK
    thread (SimpleITK lets go of Python's lock while it registers): the same results as one after the other, in about
    half the wall time on two cores."""
    masks = (fixed_mask, moving_mask)
    with ThreadPoolExecutor(DRAWS) as draws:
        found = list(
            draws.map(
                lambda k: _register(fixed, fixed_mask, moving, moving_mask, initial, DRAWS * seed + k), range(DRAWS)
            )
        )
    return min([initial, *found], key=lambda transform: _metric(fixed, moving, transform, *masks))


def _register(
    fixed: sitk.Image,
    fixed_mask: sitk.Image | None,
    moving: sitk.Image,
    moving_mask: sitk.Image | None,
    initial: sitk.AffineTransform,
    seed: int,
) -> sitk.AffineTransform:
    """The affine map of ``fixed`` points to ``moving`` points that maximises their mutual information, the metric
    restricted to the masks given (None: the whole image), starting from ``initial`` (``initial`` itself if ITK
    fails)."""
    registration = sitk.ImageRegistrationMethod()
    registration.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    _set_masks(registration, fixed_mask, moving_mask)
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
    return registered


def _metric(
    fixed: sitk.Image,
    moving: sitk.Image,
    transform: sitk.Transform,
    fixed_mask: sitk.Image | None,
    moving_mask: sitk.Image | None,
) -> float:
    """Mattes mutual information of ``moving`` seen through ``transform`` (fixed points -> moving points), restricted
    to the masks given; lower is better.

    ITK evaluates it at every voxel of ``fixed``, so both images are first bin-averaged by 2 where every axis keeps
    ``MIN_LEVEL_SIZE`` voxels: on the 60 hippocampus crops that cost 2.6 instead of 14 ms and kept the same choice
    between registration and centring each time (docs/TUNING.md#t32).
    """
    if min(fixed.GetSize()) // 2 >= MIN_LEVEL_SIZE:
        fixed_mask, moving_mask = (
            None
            if m is None
            else sitk.Resample(m, sitk.BinShrink(image, [2] * 3), sitk.Transform(), sitk.sitkNearestNeighbor)
            for m, image in ((fixed_mask, fixed), (moving_mask, moving))
        )
        fixed, moving = sitk.BinShrink(fixed, [2] * 3), sitk.BinShrink(moving, [2] * 3)
    evaluation = sitk.ImageRegistrationMethod()
    evaluation.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    _set_masks(evaluation, fixed_mask, moving_mask)
    evaluation.SetInitialTransform(transform)
    evaluation.SetInterpolator(sitk.sitkLinear)
    try:
        return evaluation.MetricEvaluate(fixed, moving)
    except RuntimeError:
        return 0.0


def _set_masks(method: sitk.ImageRegistrationMethod, fixed_mask: sitk.Image | None, moving_mask: sitk.Image | None):
    """Restrict ``method``'s metric to the masks given (None: no restriction on that image)."""
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    if moving_mask is not None:
        method.SetMetricMovingMask(moving_mask)


def _full_resolution_share(voxels: float) -> float:
    """The share of an image's ``voxels`` the metric samples at full resolution (see ``FULL_RESOLUTION_SHARE``)."""
    return min(1.0, SAMPLES / voxels, max(FULL_RESOLUTION_SHARE, MIN_SAMPLES / voxels))
