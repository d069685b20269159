"""One LT-Net cycle: atlas -> scan -> atlas, and the generator and discriminator losses on it."""

from dataclasses import dataclass

import torch

from ltnet.nn import losses
from ltnet.nn.networks import LTNetNetworks
from ltnet.nn.warp import warp


@dataclass
class Cycle:
    """Everything one pass computes; images ``(B, 1, D, H, W)``, labels ``(B, K, ...)``, fields ``(B, 3, ...)`` voxels.

    ``backward``, ``reconstructed`` and ``reconstructed_labels`` are None when no
    term needs the backward half.
    """

    forward: torch.Tensor  # Δ_F = G_F(l, u)
    warped: torch.Tensor  # ū = l ∘ Δ_F
    warped_labels: torch.Tensor  # ū_s = l_s ∘ Δ_F
    backward: torch.Tensor | None = None  # Δ_B = G_B(ū, l)
    reconstructed: torch.Tensor | None = None  # l̄ = ū ∘ Δ_B
    reconstructed_labels: torch.Tensor | None = None  # l̄_s = ū_s ∘ Δ_B
    coupling: float = 1.0  # share of the cycle terms' gradient that reaches G_F (see run_cycle)

    def coupled(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` with its gradient scaled by ``coupling`` (the value is unchanged)."""
        if self.coupling == 1.0:
            return tensor
        return tensor.detach() + self.coupling * (tensor - tensor.detach())


def run_cycle(
    nets: LTNetNetworks, atlas: torch.Tensor, atlas_labels: torch.Tensor, scan: torch.Tensor, with_backward: bool = True, coupling: float = 1.0
) -> Cycle:
    """Forward map atlas -> scan, and (optionally) the backward map and the reconstructions.

    ``coupling`` (ours) scales the gradient that the cycle terms send back into ``G_F``:
    1 is the paper's joint training; 0 lets the cycle terms train ``G_B`` only, which
    keeps an untrained ``G_B`` from pinning ``G_F`` at the identity early in training.
    """
    forward = nets.g_forward(atlas, scan)
    cycle = Cycle(forward, warp(atlas, forward), warp(atlas_labels, forward), coupling=coupling)
    if with_backward:
        warped, warped_labels = cycle.coupled(cycle.warped), cycle.coupled(cycle.warped_labels)
        cycle.backward = nets.g_backward(warped, atlas)
        cycle.reconstructed = warp(warped, cycle.backward)
        cycle.reconstructed_labels = warp(warped_labels, cycle.backward)
    return cycle


def generator_terms(
    nets: LTNetNetworks, cycle: Cycle, atlas: torch.Tensor, atlas_labels: torch.Tensor, scan: torch.Tensor, weights: losses.LossWeights
) -> dict[str, torch.Tensor]:
    """Each loss term with a non-zero weight (unweighted), keyed by ``losses.TERMS`` names."""
    terms = {"sim": losses.similarity(scan, cycle.warped)}
    smooth = losses.smoothness(cycle.forward)
    if cycle.backward is not None:
        smooth = smooth + losses.smoothness(cycle.backward)
        terms["cyc"] = losses.image_cycle(atlas, cycle.reconstructed)
        terms["trans"] = losses.transformation_cycle(cycle.coupled(cycle.forward), cycle.backward)
        terms["anatomy_cyc"] = losses.soft_dice_loss(atlas_labels, cycle.reconstructed_labels)
        terms["diff_cyc"] = losses.difference_cycle(atlas_labels, cycle.coupled(cycle.warped_labels), cycle.reconstructed_labels)
    terms["smooth"] = smooth
    if weights.gan > 0:
        terms["gan"] = losses.lsgan_generator(nets.discriminate(cycle.warped))
    return {name: value for name, value in terms.items() if getattr(weights, name) > 0}


def weighted_total(terms: dict[str, torch.Tensor], weights: losses.LossWeights) -> torch.Tensor:
    """``Σ weight·term`` over the terms present."""
    return sum(getattr(weights, name) * value for name, value in terms.items())
