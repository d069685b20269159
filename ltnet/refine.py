"""Test-time refinement (instance optimisation): fit the forward map to one target before transferring.

``G_F``'s prediction for the pair (atlas, target) is the starting point; an update
of the field (the displacement, or the velocity of a diffeomorphic model) is then
optimised by Adam for a few steps on the model's own unsupervised terms for that
pair, ``L_sim + λ_smooth·L_smooth``. The update lives on a grid of half the
resolution and is upsampled trilinearly, which keeps it smooth. The networks are
not changed, and the backward network then runs on the refined result, so the QC
judges what is transferred.

Measured on 20 hippocampus targets (docs/BENCHMARKS.md has the full benchmark),
20 steps: the half-resolution update gained 0.021 mean Dice (0.86 % folded voxels,
0.37 % before) in about 0.6 s per scan; a full-resolution update gained 0.016 and
folded 1.5 %; fine-tuning the weights of ``G_F`` and ``G_B`` instead gained 0.003 in
10 steps at 3.4 s per scan, and lost Dice at larger learning rates. The cycle
terms are left out: they reach ``G_F`` through a coupling of 0.1 and did not change
its accuracy in the ablation, and each would cost a pass of ``G_B`` per step.

Each step costs a warp, the similarity and their gradients on the whole grid: cheap on
small crops, about 9 s per step at 160x192x224 on a 2-core CPU (docs/BENCHMARKS.md, Speed).
"""

import torch
import torch.nn.functional as F

from ltnet.nn import losses
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import RegistrationNet
from ltnet.nn.warp import warp

#: Adam step size in voxels of the network grid (measured, 20 steps: 0.5 gained 0.021, 1.0 gained 0.023 but folded more).
STEP_SIZE = 0.5


def refine(
    g_forward: RegistrationNet, weights: LossWeights, atlas: torch.Tensor, scan: torch.Tensor, steps: int, step_size: float = STEP_SIZE
) -> torch.Tensor:
    """The forward displacement ``(1, 3, D, H, W)`` (voxels) for ``atlas`` -> ``scan`` (both ``(1, 1, D, H, W)``)
    after ``steps`` Adam steps on ``weights.sim·L_sim + weights.smooth·L_smooth``, starting from ``G_F``'s."""
    with torch.no_grad():
        start = g_forward.unet_field(atlas, scan).float()
    size = start.shape[2:]
    update = torch.zeros(1, 3, *[max(1, n // 2) for n in size], device=start.device, requires_grad=True)
    field = lambda: start + F.interpolate(update, size=size, mode="trilinear", align_corners=True)  # noqa: E731
    optimizer = torch.optim.Adam([update], lr=step_size)
    for _ in range(steps):
        displacement = g_forward.displacement(field())
        loss = weights.sim * losses.similarity(scan, warp(atlas, displacement)) + weights.smooth * losses.smoothness(displacement)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return g_forward.displacement(field())
