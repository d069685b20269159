"""Test-time refinement (instance optimisation): fit the forward map to one target before transferring.

``G_F``'s prediction for the pair (atlas, target) is the starting point; an update
of the field (the displacement, or the velocity of a diffeomorphic model) is then
optimised by Adam for a few steps on the model's own unsupervised terms for that
pair, ``L_sim + λ_smooth·L_smooth``. The update lives on a grid of half the
resolution and is upsampled trilinearly, which keeps it smooth. The networks are
not changed, and the backward network then runs on the refined result, so the QC's
cycle checks judge what is transferred (its score reads ``G_F``'s own match: the fit
raises the refined one, see ``ltnet.qc``).

Adam's first steps move every coefficient of the update by about the step size, so
a few steps take most of the gain: on the 59 hippocampus targets 3 steps raised the
mean Dice from 0.769 to 0.786, 20 steps to 0.794 (docs/TUNING.md, "A few
refinement steps").

Measured on 20 hippocampus targets (docs/TUNING.md has the full comparison),
20 steps: the half-resolution update gained 0.021 mean Dice (0.86 % folded voxels,
0.37 % before) in about 0.6 s per scan; a full-resolution update gained 0.016 and
folded 1.5 %; fine-tuning the weights of ``G_F`` and ``G_B`` instead gained 0.003 in
10 steps at 3.4 s per scan, and lost Dice at larger learning rates. The cycle
terms are left out: they reach ``G_F`` through a coupling of 0.1 and did not change
its accuracy in the ablation, and each would cost a pass of ``G_B`` per step.

A network grid coarser than the atlas and the scan (a whole brain at 4 mm) bounds
what a fit on it can recover; ``refinement_grid`` then picks a finer grid over the
same box, up to ``REFINE_MAX_VOXELS``, and the fit matches the atlas at its own resolution
(``Atlas.source_image``) with the scan there. Its update still lives at half that
grid's resolution. On the IBSR brains (4 mm network grid) 20 steps at 2 mm raised the
mean Dice from 0.750 to 0.852, where 20 steps on the network grid reached 0.784.

Each step costs a warp, the similarity and their gradients on the whole grid: cheap on
small crops, about 9 s per step at 160x192x224 on a 2-core CPU (docs/BENCHMARKS.md, Speed).
"""

import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ltnet.data.grid import REFINE_MAX_VOXELS, NetworkGrid
from ltnet.data.prepare import Atlas
from ltnet.nn import losses
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import RegistrationNet
from ltnet.nn.warp import field_on_grid, warp

#: Adam step size in voxels of the grid the fit runs on (measured, 20 steps: 0.5 gained 0.021, 1.0 gained 0.023 but
#: folded more).
STEP_SIZE = 0.5


def refinement_grid(atlas: Atlas, scan: sitk.Image, max_voxels: int = REFINE_MAX_VOXELS["cpu"]) -> NetworkGrid:
    """The grid to refine on: ``atlas.grid`` made finer by the largest factor (in steps of 0.5) that keeps its
    spacing no finer than both images' finest spacing and its size within ``max_voxels``; the network grid
    itself when no factor above 1 does, or when the model keeps no atlas image for it (``Atlas.source_image``)."""
    if atlas.source_image is None:
        return atlas.grid
    return atlas.grid.finest_within(max(min(atlas.source_image.GetSpacing()), min(scan.GetSpacing())), max_voxels)


def refine(
    g_forward: RegistrationNet,
    weights: LossWeights,
    atlas: torch.Tensor,
    scan: torch.Tensor,
    steps: int,
    step_size: float = STEP_SIZE,
    finer: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    start: torch.Tensor | None = None,
    on_step=None,
) -> torch.Tensor:
    """The forward displacement ``(1, 3, D, H, W)`` (voxels) for ``atlas`` -> ``scan`` (both ``(1, 1, D, H, W)`` on the
    network grid) after ``steps`` Adam steps on ``weights.sim·L_sim + weights.smooth·L_smooth``, starting from
    ``G_F``'s.

    ``finer``: the atlas and the scan on ``NetworkGrid.finer(f)`` (``(1, 1, D', H', W')`` each), and ``f``; ``G_F``'s
    field is resampled there, the fit runs there, and the result lies there, in its voxels. ``start``: ``G_F``'s
    field (``unet_field``) for the pair when the caller has it already. ``on_step(k)``: called as step ``k`` (from 1)
    begins, for progress reports.
    """
    with torch.no_grad():
        start = (g_forward.unet_field(atlas, scan) if start is None else start).float()
        if finer is not None:
            atlas, scan, factor = finer
            start = field_on_grid(start, factor, atlas.shape[2:])
    size = start.shape[2:]
    update = torch.zeros(1, 3, *[max(1, n // 2) for n in size], device=start.device, requires_grad=True)
    field = lambda: start + F.interpolate(update, size=size, mode="trilinear", align_corners=True)  # noqa: E731
    optimizer = torch.optim.Adam([update], lr=step_size)
    for step in range(1, steps + 1):
        if on_step is not None:
            on_step(step)
        displacement = g_forward.displacement(field())
        loss = weights.sim * losses.similarity(scan, warp(atlas, displacement)) + weights.smooth * losses.smoothness(
            displacement
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return g_forward.displacement(field())
