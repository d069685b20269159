"""The spatial transformer: identity, exact integer shifts, composition, integration, Jacobian."""

import torch

from ltnet.nn.warp import compose, integrate, jacobian_determinant, warp


def test_identity_field_changes_nothing():
    image = torch.rand(1, 2, 8, 10, 12)
    assert torch.allclose(warp(image, torch.zeros(1, 3, 8, 10, 12)), image, atol=1e-6)


def test_integer_translation_shifts_exactly():
    image = torch.rand(1, 1, 10, 10, 10)
    field = torch.zeros(1, 3, 10, 10, 10)
    field[:, 1] = 2.0  # along H: warped(t) = image(t + 2)
    warped = warp(image, field)
    assert torch.allclose(warped[:, :, :, :8], image[:, :, :, 2:], atol=1e-6)
    assert torch.allclose(
        warped[:, :, :, 8:], image[:, :, :, 9:10].expand(-1, -1, -1, 2, -1), atol=1e-6
    )  # border repeated


def test_compose_matches_warping_twice():
    torch.manual_seed(0)
    image = torch.nn.functional.avg_pool3d(torch.rand(1, 1, 12, 12, 12), 3, 1, 1)
    first = torch.zeros(1, 3, 12, 12, 12)
    first[:, 0] = 1.0
    second = torch.zeros(1, 3, 12, 12, 12)
    second[:, 2] = -2.0
    twice = warp(warp(image, second), first)
    once = warp(image, compose(first, second))
    assert torch.allclose(twice[..., 2:-2, 2:-2, 2:-2], once[..., 2:-2, 2:-2, 2:-2], atol=1e-5)


def test_integrating_a_constant_velocity_gives_that_translation():
    velocity = torch.zeros(1, 3, 8, 8, 8)
    velocity[:, 2] = 1.0
    displacement = integrate(velocity)
    assert torch.allclose(displacement[..., 2:-2, 2:-2, 2:-2], velocity[..., 2:-2, 2:-2, 2:-2], atol=1e-4)


def test_jacobian_of_identity_scaling_and_fold():
    assert torch.allclose(jacobian_determinant(torch.zeros(1, 3, 6, 6, 6)), torch.ones(1, 6, 6, 6))
    grid = torch.arange(6.0)
    scaling = torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij"))[None] * 0.5  # t -> 1.5 t
    assert torch.allclose(jacobian_determinant(scaling), torch.full((1, 6, 6, 6), 1.5**3))
    fold = torch.zeros(1, 3, 6, 6, 6)
    fold[:, 0] = -2.0 * torch.arange(6.0).view(6, 1, 1)  # t -> -t along D
    assert (jacobian_determinant(fold) < 0).all()
