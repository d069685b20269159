"""The loss terms on inputs whose value is known."""

from dataclasses import replace

import pytest
import torch
from monai.losses import LocalNormalizedCrossCorrelationLoss

from ltnet.nn import losses
from ltnet.nn.cycle import Cycle, generator_terms, run_cycle
from ltnet.nn.networks import LTNetNetworks, NetworkConfig, RegistrationNet
from ltnet.nn.warp import compose, warp


def smooth_volume(seed=0, shape=(1, 1, 16, 16, 16)):
    torch.manual_seed(seed)
    return torch.nn.functional.avg_pool3d(torch.rand(shape), 3, stride=1, padding=1)


def test_lncc_of_an_image_with_itself_is_one():
    image = smooth_volume()
    assert losses.similarity(image, image).item() == pytest.approx(-1.0, abs=1e-4)
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(1))
    assert losses.similarity(image, noise).item() > -0.6  # unrelated content matches far less


def test_the_qcs_lncc_map_is_monais_and_its_mean_is_l_sim():
    """The QC's one-call window sums give MONAI's local NCC per voxel, whose mean is L_sim; on a batch of two, an odd
    grid, a flat slab, and faint texture near the variance floor."""
    shape = (2, 1, 25, 21, 27)
    fixed, moving = smooth_volume(2, shape), smooth_volume(3, shape)
    faint = 2e-3 * torch.rand(2, 1, 15, 13, 17, generator=torch.Generator().manual_seed(4))
    block = (slice(None), slice(None), slice(5, 20), slice(4, 17), slice(5, 22))
    fixed[block], moving[block] = 0.5 + faint, 0.5 + faint.flip(-1)  # windows inside: variance near the floor
    fixed[:, :, :, :, :3] = 0.5  # a flat slab along the edge: no variance at all
    monai_map = LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=losses.LNCC_WINDOW, reduction="none")
    ours = losses.local_ncc(fixed, moving)
    assert ours.shape == fixed.shape and torch.allclose(ours, -monai_map(moving, fixed), atol=1e-6)
    assert 0.0 <= ours.min() and ours.max() <= 1.0 + 1e-6 and ours[block].mean() < 0.5 < ours.max()
    assert losses.similarity(fixed, moving).item() == pytest.approx(-ours.mean().item(), abs=1e-6)


def test_charbonnier_matches_its_formula():
    x = torch.tensor([-2.0, -0.1, 0.0, 0.003, 5.0])
    expected = (x**2 + 1e-6) ** 0.45
    assert torch.allclose(losses.charbonnier(x), expected)
    assert losses.charbonnier(torch.tensor(0.0)).item() == pytest.approx(1e-3**0.9)


def test_smoothness_of_a_constant_field_is_zero_and_of_a_ramp_is_its_slope_squared_over_directions():
    assert losses.smoothness(torch.full((1, 3, 8, 8, 8), 2.5)).item() == 0.0
    ramp = (0.5 * torch.arange(8.0)).view(1, 1, 8, 1, 1).expand(1, 3, 8, 8, 8).contiguous()
    assert losses.smoothness(ramp).item() == pytest.approx(0.25 / 3)  # slope² along one of three directions


def test_each_cycle_loss_is_zero_for_a_perfect_cycle():
    atlas = smooth_volume()
    labels = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
    warped_labels = torch.roll(labels, 2, dims=2)
    assert losses.image_cycle(atlas, atlas.clone()).item() == 0.0
    assert losses.soft_dice_loss(labels, labels.clone()).item() == pytest.approx(0.0, abs=1e-7)
    # difference cycle: |l_s - ū_s| equals |ū_s - l̄_s| when l̄_s = l_s, leaving only ρ(0)
    floor = losses.charbonnier(torch.tensor(0.0)).item()
    assert losses.difference_cycle(labels, warped_labels, labels).item() == pytest.approx(floor)
    shift = torch.zeros(1, 3, 16, 16, 16)
    shift[:, 0] = 1.5
    assert losses.transformation_cycle(compose(-shift, shift)).item() == pytest.approx(floor)


def test_cycle_losses_grow_when_the_cycle_breaks():
    atlas = smooth_volume()
    labels = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
    moved = torch.roll(labels, 3, dims=3)
    assert losses.soft_dice_loss(labels, moved).item() > 0.05
    assert losses.image_cycle(atlas, torch.roll(atlas, 3, dims=3)).item() > 0.01
    shift = torch.zeros(1, 3, 16, 16, 16)
    shift[:, 1] = 2.0
    # 2 + 2 voxels along H (16 voxels): 4 / 7.5 in normalised coordinates, the other two components 0
    expected = (losses.charbonnier(torch.tensor(4 / 7.5)) + 2 * losses.charbonnier(torch.tensor(0.0))) / 3
    assert losses.transformation_cycle(compose(shift, shift)).item() == pytest.approx(expected.item(), rel=1e-4)


def test_lsgan_terms():
    ones, zeros = torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2)
    assert losses.lsgan_generator(ones).item() == 0.0
    assert losses.lsgan_discriminator(ones, zeros).item() == 0.0
    assert losses.lsgan_discriminator(zeros, ones).item() == 2.0


def test_weights_switch_terms_and_voxelmorph_is_a_configuration():
    nets = LTNetNetworks(NetworkConfig())
    atlas = smooth_volume(shape=(1, 1, 32, 32, 32))
    labels = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
    scan = smooth_volume(seed=3, shape=(1, 1, 32, 32, 32))
    full = losses.LossWeights.paper()
    cycle = run_cycle(nets, atlas, labels, scan, with_backward=full.needs_backward)
    assert set(generator_terms(nets, cycle, atlas, labels, scan, full)) == set(losses.TERMS)
    vxm = losses.LossWeights.voxelmorph()
    assert not vxm.needs_backward
    cycle = run_cycle(nets, atlas, labels, scan, with_backward=False)
    assert isinstance(cycle, Cycle) and cycle.backward is None
    assert set(generator_terms(nets, cycle, atlas, labels, scan, vxm)) == {"sim", "smooth"}
    no_gan = losses.LossWeights.paper(adversarial=False)
    assert "gan" not in generator_terms(nets, run_cycle(nets, atlas, labels, scan), atlas, labels, scan, no_gan)


def test_coupling_decides_whether_cycle_terms_train_the_forward_network():
    torch.manual_seed(0)
    nets = LTNetNetworks(NetworkConfig())
    with torch.no_grad():  # a non-trivial forward field, so the cycle terms depend on it
        nets.g_forward.unet.net[1].final_conv_out.conv.bias.copy_(torch.tensor([0.7, -0.4, 0.3]))
    atlas = smooth_volume(shape=(1, 1, 32, 32, 32))
    labels = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
    scan = smooth_volume(seed=3, shape=(1, 1, 32, 32, 32))
    cycle_only = losses.LossWeights(sim=0.0, smooth=0.0, gan=0.0)
    for coupling in (0.0, 1.0):
        nets.zero_grad(set_to_none=True)
        cycle = run_cycle(nets, atlas, labels, scan, coupling=coupling)
        terms = generator_terms(nets, cycle, atlas, labels, scan, cycle_only)
        assert set(terms) == {"cyc", "trans", "anatomy_cyc", "diff_cyc"}
        sum(cycle_only.to_dict()[k] * v for k, v in terms.items()).backward()
        forward_grad = sum(p.grad.abs().sum() for p in nets.g_forward.parameters() if p.grad is not None)
        backward_grad = sum(p.grad.abs().sum() for p in nets.g_backward.parameters() if p.grad is not None)
        assert backward_grad > 0
        assert (forward_grad == 0) if coupling == 0.0 else (forward_grad > 0)


def test_warmup_ramp():
    from ltnet.training import TrainSettings

    settings = TrainSettings(iterations=100, warmup=0.5)
    assert [settings.ramp(i) for i in (0, 49)] == [0.0, 0.0]
    assert 0.0 < settings.ramp(50) < settings.ramp(75) < 1.0 and settings.ramp(99) == 1.0
    assert TrainSettings(iterations=100).ramp(0) == 1.0


def test_learning_rate_schedules():
    from ltnet.training import TrainSettings

    assert {TrainSettings(iterations=100, learning_rate=3e-4).learning_rate_at(i) for i in (0, 50, 99)} == {3e-4}
    cosine = TrainSettings(iterations=100, learning_rate=3e-4, lr_schedule="cosine")
    rates = [cosine.learning_rate_at(i) for i in range(100)]
    assert rates[0] == 3e-4 and abs(rates[50] - 1.5e-4) < 1e-12 and 0 < rates[99] < 1e-7
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError, match="schedule"):
        TrainSettings(lr_schedule="step").learning_rate_at(0)


class _Translations:
    """Stand-in networks: ``G_F`` moves by ``+a``, ``G_B`` by ``-a`` (an exact inverse pair)."""

    def __init__(self, shift: torch.Tensor):
        self.shift = shift

    def g_forward(self, atlas, scan):
        return self.shift

    def g_backward(self, warped, atlas):
        return -self.shift


def test_an_exact_inverse_pair_reconstructs_the_atlas_without_interpolation_blur():
    """Half-voxel moves there and back: one resampling along the round trip gives ``l`` back, two would blur it."""
    atlas = smooth_volume(shape=(1, 1, 16, 16, 16))
    labels = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
    shift = torch.zeros(1, 3, 16, 16, 16)
    shift[:, 2] = 0.5
    cycle = run_cycle(_Translations(shift), atlas, labels, atlas)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2), slice(2, -2))  # away from the border padding
    assert torch.allclose(cycle.reconstructed[inner], atlas[inner], atol=1e-6)
    assert torch.allclose(cycle.reconstructed_labels[inner], labels[inner], atol=1e-6)
    assert cycle.round_trip[inner].abs().max().item() < 1e-6
    two_step = warp(warp(atlas, shift), -shift)
    assert (
        losses.image_cycle(atlas[inner], two_step[inner]).item()
        > 100 * losses.image_cycle(atlas[inner], cycle.reconstructed[inner]).item()
    )


def test_a_downsized_field_is_smoother_keeps_a_translation_and_old_configs_predict_as_before():
    torch.manual_seed(0)
    config = NetworkConfig(unet_channels=(4, 8, 8, 8), final_channels=(8,))
    plain, downsized = RegistrationNet(config), RegistrationNet(replace(config, field_downsize=2))
    flow = plain.unet.net[1].final_conv_out.conv
    torch.nn.init.normal_(flow.weight, std=0.1)  # a field with detail at every voxel
    downsized.load_state_dict(plain.state_dict())
    moving, fixed = torch.rand(1, 1, 16, 16, 16), torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert losses.smoothness(downsized(moving, fixed)) < 0.5 * losses.smoothness(plain(moving, fixed))
        for net in (plain, downsized):  # a translation (no weights, only the bias) passes unchanged
            net.unet.net[1].final_conv_out.conv.weight.zero_()
            net.unet.net[1].final_conv_out.conv.bias.copy_(torch.tensor([1.0, -2.0, 0.5]))
        assert torch.allclose(downsized(moving, fixed), plain(moving, fixed), atol=1e-6)
        assert torch.allclose(plain(moving, fixed)[0, :, 3, 4, 5], torch.tensor([1.0, -2.0, 0.5]))
    assert (
        NetworkConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "field_downsize"}).field_downsize
        == 1
    )


def test_losses_keep_their_float32_values_under_bfloat16_autocast_as_gpu_training_runs():
    atlas, scan = smooth_volume(0, (1, 1, 32, 32, 32)), smooth_volume(1, (1, 1, 32, 32, 32))
    exact = losses.similarity(atlas, scan).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the precision of CUDA training (ltnet.training)
        assert losses.similarity(atlas, scan).item() == pytest.approx(
            exact, abs=1e-6
        )  # -2e6 before the losses ran in float32
        assert losses.local_ncc(atlas, scan).dtype == torch.float32
        torch.manual_seed(0)
        nets = LTNetNetworks(NetworkConfig())
        one_hot = torch.cat([atlas < 0.5, atlas >= 0.5], dim=1).float()
        cycle = run_cycle(nets, atlas, one_hot, scan)
        terms = generator_terms(nets, cycle, atlas, one_hot, scan, losses.LossWeights.paper())
    assert all(value.dtype == torch.float32 for value in terms.values())
    assert -1.0 <= terms["sim"].item() <= 0.0
    assert terms["sim"].item() == pytest.approx(exact, abs=0.01)  # an untrained G_F barely moves the atlas


def test_the_field_is_float32_under_bfloat16_autocast():
    atlas, scan = smooth_volume(0, (1, 1, 16, 16, 16)), smooth_volume(1, (1, 1, 16, 16, 16))
    torch.manual_seed(0)
    net = RegistrationNet(NetworkConfig())
    torch.nn.init.normal_(net.unet.net[1].final_conv_out.conv.weight, std=0.1)  # a trained-sized flow layer
    with torch.no_grad():
        exact = net(atlas, scan)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net(atlas, scan)
    assert exact.dtype == mixed.dtype == torch.float32
    assert torch.allclose(mixed, exact, atol=0.05 * float(exact.abs().max()))  # only the features were bfloat16
