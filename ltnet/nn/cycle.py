"""One LT-Net cycle: atlas -> scan -> atlas, and the generator and discriminator losses on it."""

from dataclasses import asdict, dataclass, replace

import torch

from ltnet.nn import losses
from ltnet.nn.networks import LTNetNetworks
from ltnet.nn.warp import compose, warp

OPTION_CHOICES = {  # each CycleOptions field: its values, the first one what a model file without it means
    "reconstruction": ("one_step", "two_step"),
    "trans_order": ("round_trip", "paper"),
    "trans_units": ("normalised", "mm"),
    "anatomy": ("all_channels", "foreground"),
    "diff_cyc": ("uniform", "balanced"),
}


@dataclass(frozen=True)
class CycleOptions:
    """How the cycle terms are computed; stored in every model file (an older file without them means the first
    value of each in ``OPTION_CHOICES``, the only behaviour there was).

    - ``reconstruction``: ``one_step`` resamples ``l`` and ``l_s`` once along the composed round
      trip ``compose(Δ_B, Δ_F)`` (ours, see ``run_cycle``); ``two_step`` is the paper's
      ``l̄ = ū ∘ Δ_B``, ``l̄_s = ū_s ∘ Δ_B``.
    - ``trans_order``: ``round_trip`` penalises ``Δ_B(t) + Δ_F(t + Δ_B(t))`` (atlas -> scan -> atlas,
      the order under which ``l̄ = l``); ``paper`` penalises the paper's ``Δ_F(t) + Δ_B(t + Δ_F(t))``.
      Both vanish for an exact inverse pair.
    - ``trans_units``: ``normalised`` measures that displacement in -1..1 across each grid axis (a
      one-voxel error then costs less along a longer axis, and less on a larger grid); ``mm`` in
      millimetres, the same on every axis and grid (the network grid's spacing is isotropic).
    - ``anatomy``: ``all_channels`` is one soft Dice over all one-hot channels, background
      included; ``foreground`` the mean over the foreground labels of each one's soft Dice.
    - ``diff_cyc``: ``uniform`` averages ``L_diff_cyc`` over all voxels; ``balanced`` gives half the
      weight to the voxels where any of ``l_s``, ``ū_s``, ``l̄_s`` holds foreground, half to the rest.
    """

    reconstruction: str = "one_step"
    trans_order: str = "round_trip"
    trans_units: str = "normalised"
    anatomy: str = "foreground"  # new models; on the bundled sample (200 iterations, seed 0) Dice 0.636 vs 0.629
    diff_cyc: str = "balanced"

    def __post_init__(self):
        for name, choices in OPTION_CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"cycle option {name} = {getattr(self, name)!r}; use one of {', '.join(choices)}")

    @classmethod
    def paper(cls, base: "CycleOptions | None" = None) -> "CycleOptions":
        """``base`` (default: the defaults) with the paper's reconstruction and ``L_trans``: two resamplings,
        its composition order, millimetres. The label-space forms are kept: the paper's soft Dice and
        ``ρ`` difference fit either."""
        return replace(base or cls(), reconstruction="two_step", trans_order="paper", trans_units="mm")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> "CycleOptions":
        """The options a model file stores; missing ones (older files) take their first ``OPTION_CHOICES``
        value, unknown ones raise ``ValueError``."""
        unknown = set(values or {}) - set(OPTION_CHOICES)
        if unknown:
            raise ValueError(f"unknown cycle options {sorted(unknown)}")
        return cls(**{name: choices[0] for name, choices in OPTION_CHOICES.items()} | dict(values or {}))


@dataclass
class Cycle:
    """Everything one pass computes; images ``(B, 1, D, H, W)``, labels ``(B, K, ...)``, fields ``(B, 3, ...)`` voxels.

    ``backward``, ``round_trip``, ``reconstructed`` and ``reconstructed_labels`` are
    None when no term needs the backward half.
    """

    forward: torch.Tensor  # Δ_F = G_F(l, u)
    warped: torch.Tensor  # ū = l ∘ Δ_F
    warped_labels: torch.Tensor  # ū_s = l_s ∘ Δ_F
    backward: torch.Tensor | None = None  # Δ_B = G_B(ū, l)
    round_trip: torch.Tensor | None = None  # Δ_B(t) + Δ_F(t + Δ_B(t)): atlas -> scan -> atlas, 0 for an inverse pair
    reconstructed: torch.Tensor | None = None  # l̄ = ū ∘ Δ_B (CycleOptions.reconstruction says how)
    reconstructed_labels: torch.Tensor | None = None  # l̄_s = ū_s ∘ Δ_B
    coupling: float = 1.0  # share of the cycle terms' gradient that reaches G_F (see run_cycle)

    def coupled(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` with its gradient scaled by ``coupling`` (the value is unchanged)."""
        if self.coupling == 1.0:
            return tensor
        return tensor.detach() + self.coupling * (tensor - tensor.detach())


def run_cycle(
    nets: LTNetNetworks,
    atlas: torch.Tensor,
    atlas_labels: torch.Tensor,
    scan: torch.Tensor,
    with_backward: bool = True,
    coupling: float = 1.0,
    forward: torch.Tensor | None = None,
    options: CycleOptions = CycleOptions(),
) -> Cycle:
    """Forward map atlas -> scan, and (optionally) the backward map and the reconstructions.

    ``coupling`` (ours) scales the gradient that the cycle terms send back into ``G_F``:
    1 is the paper's joint training; 0 lets the cycle terms train ``G_B`` only, which
    keeps an untrained ``G_B`` from pinning ``G_F`` at the identity early in training.

    With ``options.reconstruction == "one_step"`` (ours) the reconstructions are resampled
    once, from ``l`` and ``l_s`` along the composed round trip; with ``"two_step"`` (the
    paper's) twice, ``ū`` and ``ū_s`` along ``Δ_B``. Both are ``l ∘ Δ_F ∘ Δ_B``, but each
    trilinear resampling blurs, and only a zero (or whole-voxel) field is resampled without
    loss, so the two-step version rewards ``G_F`` for staying at the identity whatever
    ``G_B`` does (measured in docs/TUNING.md).

    ``forward`` replaces ``G_F``'s prediction (a field refined for this scan, ``ltnet.refine``).
    """
    if forward is None:
        forward = nets.g_forward(atlas, scan)
    cycle = Cycle(forward, warp(atlas, forward), warp(atlas_labels, forward), coupling=coupling)
    if with_backward:
        cycle.backward = nets.g_backward(cycle.coupled(cycle.warped), atlas)
        cycle.round_trip = compose(cycle.backward, cycle.coupled(forward))
        if options.reconstruction == "one_step":
            cycle.reconstructed = warp(atlas, cycle.round_trip)
            cycle.reconstructed_labels = warp(atlas_labels, cycle.round_trip)
        else:
            cycle.reconstructed = warp(cycle.coupled(cycle.warped), cycle.backward)
            cycle.reconstructed_labels = warp(cycle.coupled(cycle.warped_labels), cycle.backward)
    return cycle


def generator_terms(
    nets: LTNetNetworks,
    cycle: Cycle,
    atlas: torch.Tensor,
    atlas_labels: torch.Tensor,
    scan: torch.Tensor,
    weights: losses.LossWeights,
    options: CycleOptions = CycleOptions(),
    spacing_mm: float | None = None,
) -> dict[str, torch.Tensor]:
    """Each loss term with a non-zero weight (unweighted), keyed by ``losses.TERMS`` names.

    ``spacing_mm``: the network grid's voxel size, needed when ``options.trans_units`` is ``mm``.
    """
    terms = {"sim": losses.similarity(scan, cycle.warped)}
    smooth = losses.smoothness(cycle.forward)
    if cycle.backward is not None:
        smooth = smooth + losses.smoothness(cycle.backward)
        terms["cyc"] = losses.image_cycle(atlas, cycle.reconstructed)
        terms["trans"] = transformation_term(cycle, options, spacing_mm)
        anatomy = losses.soft_dice_loss if options.anatomy == "all_channels" else losses.foreground_dice_loss
        terms["anatomy_cyc"] = anatomy(atlas_labels, cycle.reconstructed_labels)
        difference = losses.difference_cycle if options.diff_cyc == "uniform" else losses.balanced_difference_cycle
        terms["diff_cyc"] = difference(atlas_labels, cycle.coupled(cycle.warped_labels), cycle.reconstructed_labels)
    terms["smooth"] = smooth
    if weights.gan > 0:
        terms["gan"] = losses.lsgan_generator(nets.discriminate(cycle.warped))
    return {name: value for name, value in terms.items() if getattr(weights, name) > 0}


def transformation_residual(cycle: Cycle, options: CycleOptions, spacing_mm: float | None = None) -> torch.Tensor:
    """What ``L_trans`` penalises, ``(B, 3, D, H, W)``: the composite of ``Δ_F`` and ``Δ_B`` in the order and units
    ``options`` give (see ``CycleOptions``); ``spacing_mm`` (the network grid's voxel size) for ``mm``."""
    if options.trans_order == "round_trip":
        residual = cycle.round_trip
    else:
        residual = compose(cycle.coupled(cycle.forward), cycle.backward)
    if options.trans_units == "normalised":
        return losses.normalised(residual.float())
    if spacing_mm is None:
        raise ValueError("L_trans in millimetres needs the network grid's spacing (spacing_mm)")
    return residual.float() * float(spacing_mm)


def transformation_term(cycle: Cycle, options: CycleOptions, spacing_mm: float | None = None) -> torch.Tensor:
    """``L_trans`` of ``cycle``: mean ``ρ`` of ``transformation_residual``."""
    return losses.charbonnier_mean(transformation_residual(cycle, options, spacing_mm))


def weighted_total(terms: dict[str, torch.Tensor], weights: losses.LossWeights) -> torch.Tensor:
    """``Σ weight·term`` over the terms present."""
    return sum(getattr(weights, name) * value for name, value in terms.items())
