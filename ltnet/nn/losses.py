"""The seven LT-Net loss terms and their weights (LTNET.md, "Losses").

All terms are means, so the weights keep their meaning at any grid size, and all
are computed in float32 whatever autocast is on (``in_float32``).
Images are ``(B, 1, D, H, W)`` in [0, 1]; label maps one-hot ``(B, K, D, H, W)``;
displacements ``(B, 3, D, H, W)`` in voxels of the network grid.
"""

import functools
from dataclasses import asdict, dataclass

import torch
from monai.losses import DiffusionLoss, LocalNormalizedCrossCorrelationLoss
from monai.networks.layers import separable_filtering

TERMS = ("sim", "smooth", "gan", "cyc", "trans", "anatomy_cyc", "diff_cyc")


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term in the generator loss; 0 switches a term off.

    The defaults are the paper's: ``L_GAN + L_sim + λ1·L_cyc + λ2·(L_anatomy_cyc + L_smooth + L_trans + L_diff_cyc)``
    with λ1 = 10, λ2 = 3. ``coupling`` (ours) is the share of the cycle terms' gradient
    that reaches ``G_F`` (``ltnet.nn.cycle.run_cycle``); 1 is the paper's joint training.
    """

    sim: float = 1.0
    smooth: float = 3.0
    gan: float = 1.0
    cyc: float = 10.0
    trans: float = 3.0
    anatomy_cyc: float = 3.0
    diff_cyc: float = 3.0
    coupling: float = 1.0
    teach: float = 0.0  # ours: G_F pulled toward its own refined fields (``ltnet.teach``); fine-tuning only

    @classmethod
    def paper(cls, lambda1: float = 10.0, lambda2: float = 3.0, adversarial: bool = True) -> "LossWeights":
        return cls(1.0, lambda2, 1.0 if adversarial else 0.0, lambda1, lambda2, lambda2, lambda2)

    @classmethod
    def voxelmorph(cls, smooth: float = 1.0) -> "LossWeights":
        """The VoxelMorph baseline: ``L_sim + smooth·L_smooth`` only (VoxelMorph's λ = 1 for NCC)."""
        return cls(sim=1.0, smooth=smooth, gan=0.0, cyc=0.0, trans=0.0, anatomy_cyc=0.0, diff_cyc=0.0)

    @property
    def needs_backward(self) -> bool:
        """Whether any term needs ``G_B`` (the backward cycle)."""
        return any(getattr(self, t) > 0 for t in ("cyc", "trans", "anatomy_cyc", "diff_cyc"))

    def to_dict(self) -> dict:
        return asdict(self)


LNCC_WINDOW = 9  # voxels per side of the local window of L_sim and of the QC's image match
LNCC_VARIANCE_FLOOR = 1e-5  # the least local variance, so flat windows do not divide by 0 (MONAI's default)
_LNCC = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=LNCC_WINDOW, smooth_dr=LNCC_VARIANCE_FLOOR)
_DIFFUSION = DiffusionLoss()


def in_float32(loss):
    """Run ``loss`` on float32 copies of its tensors with autocast off.

    Training on a GPU runs the networks in bfloat16 (8 bits of mantissa); LNCC's local
    variances, ``E[x²] - E[x]²`` over 9³ windows, then cancel, and its value leaves
    [-1, 1] (-5 for a pair whose float32 value is -0.44), so ``G_F`` learns nothing.
    """

    @functools.wraps(loss)
    def in_float32_loss(*tensors: torch.Tensor) -> torch.Tensor:
        with torch.autocast(tensors[0].device.type, enabled=False):
            return loss(*(tensor.float() for tensor in tensors))

    return in_float32_loss


@in_float32
def similarity(fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """``L_sim``: negative local (9³) normalised cross-correlation (MONAI's); -1 for identical images."""
    return _LNCC(warped, fixed)


@in_float32
def local_ncc(fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """The local (9³) normalised cross-correlation per voxel, ``(B, 1, D, H, W)`` in [0, 1] (squared, as VoxelMorph's);
    ``-similarity`` is its mean. For the QC, which needs no gradient.

    MONAI's per-voxel values to float rounding (``tests/test_losses.py``), with the five window sums taken by one call
    of MONAI's ``separable_filtering`` on the five maps stacked instead of one call each, which is faster without
    gradients on a CPU; with gradients (training, refinement) MONAI's own, in ``similarity``, is the faster.
    """
    window = torch.ones(LNCC_WINDOW, dtype=fixed.dtype, device=fixed.device)
    maps = torch.cat([fixed, warped, fixed * fixed, warped * warped, fixed * warped], dim=1)
    f_sum, w_sum, f2_sum, w2_sum, fw_sum = separable_filtering(maps, [window] * 3).chunk(5, dim=1)
    volume = LNCC_WINDOW**3
    cross = fw_sum - w_sum / volume * f_sum
    f_var = torch.clamp(f2_sum - f_sum / volume * f_sum, min=LNCC_VARIANCE_FLOOR)
    w_var = torch.clamp(w2_sum - w_sum / volume * w_sum, min=LNCC_VARIANCE_FLOOR)
    return cross * cross / (f_var * w_var)


@in_float32
def smoothness(displacement: torch.Tensor) -> torch.Tensor:
    """``L_smooth``: mean of squared central differences over the 3 directions, components and voxels.

    MONAI's ``DiffusionLoss`` sums over directions; dividing by 3 makes it the mean, as VoxelMorph's ``Grad('l2')``.
    """
    return _DIFFUSION(displacement) / 3.0


def charbonnier(x: torch.Tensor, epsilon: float = 1e-3, gamma: float = 0.45) -> torch.Tensor:
    """Generalised Charbonnier penalty ``ρ(x) = (x² + ε²)^γ``, elementwise."""
    return (x * x + epsilon * epsilon) ** gamma


@in_float32
def image_cycle(atlas: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """``L_cyc``: mean ``|l̄ - l|``."""
    return (reconstructed - atlas).abs().mean()


def normalised(displacement: torch.Tensor) -> torch.Tensor:
    """A displacement ``(B, 3, D, H, W)`` in voxels, in normalised coordinates: -1 to 1 across each grid axis."""
    half_extent = torch.tensor(
        [(n - 1) / 2 for n in displacement.shape[2:]], dtype=displacement.dtype, device=displacement.device
    )
    return displacement / half_extent.view(1, 3, 1, 1, 1)


@in_float32
def charbonnier_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean ``ρ(x)`` over all elements: ``L_trans`` of a round-trip residual in the units it is measured in."""
    return charbonnier(x).mean()


def transformation_cycle(round_trip: torch.Tensor) -> torch.Tensor:
    """``L_trans``: mean ``ρ(Δ_B(t) + Δ_F(t + Δ_B(t)))``, given that round trip ``compose(Δ_B, Δ_F)`` in voxels.

    This is the order under which ``l̄ = l`` exactly (backward warping, LTNET.md
    notes); it vanishes for a true inverse pair, e.g. translations ``+a``/``-a``.
    ``ρ`` sees the round trip in normalised coordinates (ours): -1 to 1 across the
    grid, as in spatial transformers built on ``grid_sample``. In voxels, ``ρ``'s
    near-L1 slope (γ = 0.45, ε = 0.001) at weight λ2 outweighs the image match, and
    ``G_F`` stays at the identity, where the round trip is trivially zero
    (docs/TUNING.md). A one-voxel error then costs less along a longer axis and on a
    larger grid; ``transformation_cycle_mm`` measures it the same everywhere.
    """
    return charbonnier_mean(normalised(round_trip.float()))


def transformation_cycle_mm(round_trip: torch.Tensor, spacing_mm: float) -> torch.Tensor:
    """``L_trans`` in millimetres for a round trip ``(B, 3, D, H, W)`` in voxels of an isotropic grid of
    ``spacing_mm``: a one-voxel error costs the same along every axis, whatever the grid size."""
    return charbonnier_mean(round_trip.float() * float(spacing_mm))


@in_float32
def soft_dice_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``L_anatomy_cyc``: ``1 - 2Σab / (Σa² + Σb²)`` over all one-hot channels and voxels.

    The background channel dominates the sums: losing a small structure whole costs little.
    """
    return 1.0 - 2.0 * (a * b).sum() / ((a * a).sum() + (b * b).sum()).clamp_min(1e-8)


@in_float32
def foreground_dice_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``L_anatomy_cyc`` over the foreground: the mean over channels 1..K-1 of ``1 - 2Σab / (Σa² + Σb²)``.

    ``a``, ``b``: one-hot ``(B, K, D, H, W)``, channel 0 the background. A label absent from both is left
    out; with none present the loss is 0. Losing one of two structures whole costs 0.5.
    """
    dims = [0, *range(2, a.dim())]
    overlap = (a[:, 1:] * b[:, 1:]).sum(dims)
    size = (a[:, 1:] ** 2).sum(dims) + (b[:, 1:] ** 2).sum(dims)
    present = size > 1e-6
    if not bool(present.any()):
        return a.new_zeros(())
    return (1.0 - 2.0 * overlap[present] / size[present]).mean()


@in_float32
def difference_cycle(
    atlas_labels: torch.Tensor, warped_labels: torch.Tensor, reconstructed_labels: torch.Tensor
) -> torch.Tensor:
    """``L_diff_cyc``: mean ``ρ(|l_s - ū_s| - |ū_s - l̄_s|)``."""
    return charbonnier((atlas_labels - warped_labels).abs() - (warped_labels - reconstructed_labels).abs()).mean()


@in_float32
def balanced_difference_cycle(
    atlas_labels: torch.Tensor, warped_labels: torch.Tensor, reconstructed_labels: torch.Tensor
) -> torch.Tensor:
    """``L_diff_cyc`` with half its weight on the foreground: ``ρ(|l_s - ū_s| - |ū_s - l̄_s|)`` averaged over
    channels, then half the mean over the voxels where any of the three holds foreground (background
    channel below 0.999) plus half the mean over the rest (the whole mean when one part is empty).
    """
    penalty = charbonnier((atlas_labels - warped_labels).abs() - (warped_labels - reconstructed_labels).abs())
    penalty = penalty.mean(dim=1)
    background = torch.minimum(torch.minimum(atlas_labels[:, 0], warped_labels[:, 0]), reconstructed_labels[:, 0])
    foreground = (background < 0.999).detach()
    parts = [penalty[mask].mean() for mask in (foreground, ~foreground) if bool(mask.any())]
    return sum(parts) / len(parts)


@in_float32
def lsgan_generator(scores_fake: torch.Tensor) -> torch.Tensor:
    """``L_GAN`` for ``G_F``: mean ``(D(ū) - 1)²``."""
    return ((scores_fake - 1.0) ** 2).mean()


@in_float32
def lsgan_discriminator(scores_real: torch.Tensor, scores_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares loss of ``D``: mean ``(D(u) - 1)²`` + mean ``D(ū)²``."""
    return ((scores_real - 1.0) ** 2).mean() + (scores_fake**2).mean()
