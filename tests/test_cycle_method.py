"""The method's compositions and cycle terms against analytic maps, and the adversarial term's direction.

Affine maps about the grid centre, ``t -> c + A(t - c)``, are linear, so trilinear sampling reproduces them
exactly wherever the sampled points lie inside the grid: composites have closed forms, and swapping an order
(``AB`` for ``BA``, with ``A`` and ``B`` not commuting) changes the result everywhere.
"""

from dataclasses import replace

import pytest
import torch

from ltnet.nn import losses
from ltnet.nn.cycle import CycleOptions, generator_terms, run_cycle, transformation_residual, transformation_term
from ltnet.nn.networks import LTNetNetworks, NetworkConfig
from ltnet.nn.warp import compose, warp
from ltnet.training_nets import TrainingNets

SHAPE = (12, 14, 16)  # D, H, W: unequal, so a mixed-up axis shows
FLOOR = losses.charbonnier(torch.tensor(0.0)).item()  # ρ(0) = ε^(2γ)
# Two contractions with shears (t -> c + M(t - c) keeps every voxel's image inside the grid); AB != BA.
A = torch.tensor([[0.85, 0.10, 0.00], [0.00, 0.90, 0.00], [0.04, 0.00, 0.90]])
B = torch.tensor([[0.90, 0.00, 0.00], [0.12, 0.85, 0.00], [0.00, 0.10, 0.85]])


def coordinates(shape=SHAPE) -> torch.Tensor:
    """``(3, D, H, W)``: each voxel's index along D, H, W, relative to the grid centre."""
    axes = [torch.arange(n, dtype=torch.float64) - (n - 1) / 2 for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def affine_field(matrix: torch.Tensor, shape=SHAPE) -> torch.Tensor:
    """The displacement ``(1, 3, D, H, W)`` (voxels) of ``t -> c + M(t - c)``: ``(M - I)(t - c)``."""
    x = coordinates(shape)
    moved = torch.einsum("ij,j...->i...", matrix.double(), x)
    return (moved - x)[None].float()


def inside(matrix: torch.Tensor, shape=SHAPE) -> bool:
    """Whether ``c + M(t - c)`` lies inside the grid for every voxel ``t``."""
    half = torch.tensor([(n - 1) / 2 for n in shape], dtype=torch.float64)
    moved = torch.einsum("ij,j...->i...", matrix.double(), coordinates(shape))
    return bool((moved.abs() <= half.view(3, 1, 1, 1) + 1e-9).all())


def linear_image(weights=(0.3, -0.7, 1.1), shape=SHAPE) -> torch.Tensor:
    """``(1, 1, D, H, W)``: ``w · (t - c)``, which trilinear sampling reproduces exactly."""
    return along(weights, coordinates(shape))[None, None].float()


def along(weights, points: torch.Tensor) -> torch.Tensor:
    """``w · p`` for points ``(3, D, H, W)``, float64."""
    return torch.einsum("i,i...->...", torch.tensor(weights, dtype=torch.float64), points)


class _Fields:
    """Stand-in networks: ``G_F`` returns ``forward``, ``G_B`` returns ``backward``, whatever the images."""

    def __init__(self, forward: torch.Tensor, backward: torch.Tensor):
        self.forward, self.backward = forward, backward

    def g_forward(self, atlas, scan):
        return self.forward

    def g_backward(self, warped, atlas):
        return self.backward


def test_the_test_maps_stay_inside_and_do_not_commute():
    assert inside(A) and inside(B) and inside(A @ B) and inside(B @ A)
    assert (A @ B - B @ A).abs().max() > 0.01


def test_each_field_channel_moves_along_its_own_tensor_axis():
    image = coordinates().float()[None]  # channel j: the index along axis j
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2), slice(2, -2))
    for axis in range(3):
        field = torch.zeros(1, 3, *SHAPE)
        field[:, axis] = 1.5
        expected = image.clone()
        expected[:, axis] += 1.5  # warped(t) = image(t + Δ(t)): channel `axis` reads 1.5 voxels further on
        assert torch.allclose(warp(image, field)[inner], expected[inner], atol=1e-5), axis


def test_compose_of_two_affine_maps_is_their_product_in_the_documented_order():
    """``compose(first, second)(t) = first(t) + second(t + first(t))``: the map ``t -> c + S F (t - c)``."""
    composed = compose(affine_field(A), affine_field(B))
    assert torch.allclose(composed, affine_field(B @ A), atol=1e-4)
    assert (composed - affine_field(A @ B)).abs().max() > 0.05  # the other order is a different map
    image = linear_image()
    twice = warp(warp(image, affine_field(B)), affine_field(A))  # (x ∘ second) ∘ first
    assert torch.allclose(warp(image, composed), twice, atol=1e-4)


def test_run_cycle_round_trip_and_both_reconstructions_follow_forward_then_backward():
    """``l̄(t) = ū(t + Δ_B(t)) = l(c + F B (t - c))`` with ``Δ_F`` of matrix F, ``Δ_B`` of matrix B."""
    atlas = linear_image()
    labels = torch.cat([linear_image((1.0, 0.0, 0.5)), linear_image((0.0, -0.4, 0.2))], dim=1)
    nets = _Fields(affine_field(A), affine_field(B))
    x = coordinates()
    expected_point = torch.einsum("ij,j...->i...", (A @ B).double(), x)  # c + A B (t - c), relative to c
    for reconstruction in ("one_step", "two_step"):
        cycle = run_cycle(nets, atlas, labels, atlas, options=CycleOptions(reconstruction=reconstruction))
        assert torch.allclose(cycle.round_trip, affine_field(A @ B), atol=1e-4)
        expected = along((0.3, -0.7, 1.1), expected_point)
        assert torch.allclose(cycle.reconstructed[0, 0], expected.float(), atol=1e-4), reconstruction
        expected_labels = torch.stack([along(w, expected_point) for w in ((1.0, 0.0, 0.5), (0.0, -0.4, 0.2))])
        assert torch.allclose(cycle.reconstructed_labels[0], expected_labels.float(), atol=1e-4), reconstruction


def test_transformation_residual_in_each_order_and_unit_is_the_analytic_composite():
    atlas = linear_image()
    cycle = run_cycle(_Fields(affine_field(A), affine_field(B)), atlas, torch.cat([atlas, -atlas], dim=1), atlas)
    half = torch.tensor([(n - 1) / 2 for n in SHAPE]).view(1, 3, 1, 1, 1)
    spacing = 1.7
    cases = {  # (order, units): the composite's matrix and the scale of its voxels
        ("round_trip", "normalised"): (A @ B, 1.0 / half),  # Δ_B(t) + Δ_F(t + Δ_B(t)): t -> c + A B (t - c)
        ("round_trip", "mm"): (A @ B, spacing),
        ("paper", "normalised"): (B @ A, 1.0 / half),  # Δ_F(t) + Δ_B(t + Δ_F(t)): t -> c + B A (t - c)
        ("paper", "mm"): (B @ A, spacing),
    }
    for (order, units), (matrix, scale) in cases.items():
        options = CycleOptions(trans_order=order, trans_units=units)
        residual = transformation_residual(cycle, options, spacing)
        assert torch.allclose(residual, affine_field(matrix) * scale, atol=1e-4), (order, units)
        other = B @ A if order == "round_trip" else A @ B
        assert (residual - affine_field(other) * scale).abs().max() > 0.01, (order, units)
        expected = losses.charbonnier(affine_field(matrix) * scale).mean().item()
        assert transformation_term(cycle, options, spacing).item() == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="spacing"):
        transformation_term(cycle, CycleOptions(trans_units="mm"))


def test_transformation_term_is_at_its_floor_for_an_exact_inverse_pair():
    """``Δ_F`` contracts, ``Δ_B`` is its exact inverse: the paper's order samples ``Δ_B`` inside the grid only,
    so it is exactly ``ρ(0)`` everywhere; the round trip samples ``Δ_F`` beyond the border (repeated there)."""
    inverse = torch.linalg.inv(A.double()).float()
    atlas = linear_image()
    cycle = run_cycle(_Fields(affine_field(A), affine_field(inverse)), atlas, torch.cat([atlas, -atlas], 1), atlas)
    paper = CycleOptions(trans_order="paper", trans_units="mm")
    assert transformation_term(cycle, paper, 1.0).item() == pytest.approx(FLOOR, rel=1e-3)
    assert transformation_term(cycle, paper, 1.0).item() < 1.01 * FLOOR
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3), slice(3, -3))
    assert cycle.round_trip[inner].abs().max().item() < 1e-4  # inside, where t + Δ_B(t) stays on the grid
    # a pair that is not inverse (A twice) is far above the floor in both orders
    broken = run_cycle(_Fields(affine_field(A), affine_field(A)), atlas, torch.cat([atlas, -atlas], 1), atlas)
    for order in ("round_trip", "paper"):
        assert transformation_term(broken, CycleOptions(trans_order=order, trans_units="mm"), 1.0).item() > 100 * FLOOR


def test_mm_units_cost_a_voxel_the_same_along_every_axis_and_on_every_grid():
    for shape in ((8, 16, 32), (32, 32, 32)):
        values = []
        for axis in range(3):
            field = torch.zeros(1, 3, *shape)
            field[:, axis] = 1.0
            values.append(losses.transformation_cycle_mm(field, 1.2).item())
            normalised = losses.transformation_cycle(field).item()
        assert values == pytest.approx([values[0]] * 3, rel=1e-6)
        assert values[0] == pytest.approx((losses.charbonnier(torch.tensor(1.2)).item() + 2 * FLOOR) / 3, rel=1e-5)
    assert normalised < values[0] / 10  # in normalised coordinates a voxel costs ~1/16 of a grid half-extent


def two_labels(shape=(16, 16, 16)) -> torch.Tensor:
    """One-hot ``(1, 3, D, H, W)``: background, a 4³ block and a 3³ block (small structures in a large grid)."""
    one_hot = torch.zeros(1, 3, *shape)
    one_hot[0, 1, 4:8, 4:8, 4:8] = 1
    one_hot[0, 2, 10:13, 10:13, 10:13] = 1
    one_hot[0, 0] = 1 - one_hot[0, 1:].sum(0)
    return one_hot


def test_losing_a_whole_structure_costs_half_of_the_foreground_dice_and_little_of_the_old_one():
    labels = two_labels()
    lost = labels.clone()
    lost[0, 0] += lost[0, 2]
    lost[0, 2] = 0
    assert losses.foreground_dice_loss(labels, labels).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.foreground_dice_loss(labels, lost).item() == pytest.approx(0.5, abs=1e-6)
    assert losses.soft_dice_loss(labels, lost).item() < 0.01  # background dominates the all-channel form
    background_only = torch.ones(1, 1, 4, 4, 4)
    assert losses.foreground_dice_loss(background_only, background_only).item() == 0.0


def test_balanced_difference_cycle_weighs_the_foreground_half_and_keeps_the_floor():
    labels = two_labels()
    assert losses.balanced_difference_cycle(labels, labels, labels).item() == pytest.approx(FLOOR, rel=1e-6)
    lost = labels.clone()
    lost[0, 0] += lost[0, 2]
    lost[0, 2] = 0  # the reconstruction loses the small structure; ū_s kept it
    uniform = losses.difference_cycle(labels, labels, lost).item()
    balanced = losses.balanced_difference_cycle(labels, labels, lost).item()
    assert balanced > 0.1 > 10 * uniform  # 27 of 4096 voxels, but a third of the 91 foreground ones


@pytest.mark.parametrize(
    "options",
    [CycleOptions(anatomy="all_channels", diff_cyc="uniform"), CycleOptions(anatomy="foreground", diff_cyc="balanced")],
)
def test_label_cycle_terms_grow_when_the_backward_map_breaks(options):
    labels = two_labels()
    atlas = labels[:, 1:2] + 0.5 * labels[:, 2:3]
    shift = torch.zeros(1, 3, 16, 16, 16)
    shift[:, 0] = 1.0
    exact = _Fields(shift, -shift)
    bump = torch.zeros(1, 3, 16, 16, 16)
    bump[:, 1, 8:14, 8:14, 8:14] = 2.5  # Δ_B perturbed over the small structure
    broken = _Fields(shift, -shift + bump)
    weights = losses.LossWeights.paper(adversarial=False)
    values = []
    for nets in (exact, broken):
        cycle = run_cycle(nets, atlas, labels, atlas, options=options)
        values.append(generator_terms(nets, cycle, atlas, labels, atlas, weights, options, 1.0))
    assert values[0]["anatomy_cyc"].item() < 1e-3
    assert values[1]["anatomy_cyc"].item() > values[0]["anatomy_cyc"].item() + (
        0.1 if options.anatomy == "foreground" else 0.005
    )
    assert values[1]["diff_cyc"].item() > values[0]["diff_cyc"].item() * (2 if options.diff_cyc == "balanced" else 1.01)


def test_cycle_options_round_trip_refuse_unknown_values_and_default_older_files():
    paper = CycleOptions.paper()
    assert (paper.reconstruction, paper.trans_order, paper.trans_units) == ("two_step", "paper", "mm")
    assert CycleOptions.from_dict(paper.to_dict()) == paper
    older = CycleOptions.from_dict(None)
    assert older.to_dict() == {
        "reconstruction": "one_step",
        "trans_order": "round_trip",
        "trans_units": "normalised",
        "anatomy": "all_channels",
        "diff_cyc": "uniform",
    }
    with pytest.raises(ValueError, match="trans_order = 'sideways'; use one of round_trip, paper"):
        CycleOptions(trans_order="sideways")
    with pytest.raises(ValueError, match="unknown cycle options"):
        CycleOptions.from_dict({"colour": "blue"})


def smooth(seed, shape=(1, 1, 16, 16, 16)):
    torch.manual_seed(seed)
    return torch.nn.functional.avg_pool3d(torch.rand(shape), 5, stride=1, padding=2)


def test_a_briefly_trained_discriminator_scores_real_scans_above_warped_atlases():
    torch.manual_seed(0)
    nets = LTNetNetworks(NetworkConfig(discriminator_channels=8, discriminator_layers=2))  # for a 16³ grid
    training = TrainingNets(nets, torch.device("cpu"), with_backward=False)
    optimizer = torch.optim.Adam(nets.discriminator.parameters(), lr=1e-3)
    real = torch.cat([torch.rand(1, 1, 16, 16, 16) for _ in range(2)])  # rough texture
    fake = torch.cat([smooth(1), smooth(2)])  # smooth: a different look
    for _ in range(15):
        optimizer.zero_grad()
        training.discriminator_loss(real, fake).backward()
        optimizer.step()
    with torch.no_grad():
        assert nets.discriminate(real).mean() > nets.discriminate(fake).mean() + 0.3
        # and the generator term then pushes toward "real": lower for the real-looking image
        assert losses.lsgan_generator(nets.discriminate(real)) < losses.lsgan_generator(nets.discriminate(fake))


def test_the_adversarial_gradient_reaches_g_f_and_not_g_b():
    torch.manual_seed(0)
    nets = LTNetNetworks(NetworkConfig(discriminator_layers=2))
    with torch.no_grad():
        nets.g_forward.unet.net[1].final_conv_out.conv.bias.copy_(torch.tensor([0.7, -0.4, 0.3]))
    atlas, scan = smooth(3, (1, 1, 16, 16, 16)), smooth(4, (1, 1, 16, 16, 16))
    labels = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
    only_gan = replace(losses.LossWeights(), sim=0.0, smooth=0.0, cyc=0.0, trans=0.0, anatomy_cyc=0.0, diff_cyc=0.0)
    cycle = run_cycle(nets, atlas, labels, scan, with_backward=True)
    terms = generator_terms(nets, cycle, atlas, labels, scan, only_gan)
    assert set(terms) == {"gan"}
    terms["gan"].backward()
    assert sum(p.grad.abs().sum() for p in nets.g_forward.parameters()) > 0
    assert all(p.grad is None for p in nets.g_backward.parameters())
