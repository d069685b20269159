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


def test_jacobian_determinant_of_a_general_affine_map_is_its_matrix_determinant():
    matrix = torch.tensor([[1.2, 0.3, -0.4], [-0.2, 0.9, 0.5], [0.6, -0.1, 1.1]])  # no symmetry, every entry counts
    grid = torch.stack(torch.meshgrid(*(torch.arange(7.0),) * 3, indexing="ij"))  # (3, D, H, W): t
    displacement = (torch.einsum("ij,jdhw->idhw", matrix, grid) - grid)[None]  # t -> A t
    expected = torch.linalg.det(matrix.double()).item()
    assert torch.allclose(jacobian_determinant(displacement), torch.full((1, 7, 7, 7), expected), atol=1e-5)
    mirrored = matrix.clone()
    mirrored[:, 0] *= -1  # one axis reflected: the same volume change, folded
    reflected = (torch.einsum("ij,jdhw->idhw", mirrored, grid) - grid)[None]
    assert torch.allclose(jacobian_determinant(reflected), torch.full((1, 7, 7, 7), -expected), atol=1e-5)


def test_warp_keeps_its_index_grid_per_shape_and_matches_monai():
    from monai.networks.blocks import DVF2DDF, Warp

    from ltnet.nn import warp as warping

    image, field = torch.rand(2, 2, 7, 9, 11), torch.randn(2, 3, 7, 9, 11)
    expected = Warp(mode="bilinear", padding_mode="border")(image, field)
    assert torch.allclose(warp(image, field), expected, atol=1e-6)
    kept = warping._WARP_BORDER.ref_grid
    assert torch.allclose(warp(image, 0.5 * field), Warp(mode="bilinear", padding_mode="border")(image, 0.5 * field))
    assert warping._WARP_BORDER.ref_grid is kept  # the same shape reuses the grid
    assert torch.equal(kept[1, :, 3, 4, 5], torch.tensor([3.0, 4.0, 5.0]))  # each voxel's own index, per batch item
    assert warp(image[:1, :, :5], field[:1, :, :5]).shape == (1, 2, 5, 9, 11)
    assert warping._WARP_BORDER.ref_grid.shape == (1, 3, 5, 9, 11)  # another shape builds its own
    monai_integrated = DVF2DDF(num_steps=7, mode="bilinear", padding_mode="border")(0.2 * field)
    assert torch.allclose(integrate(0.2 * field), monai_integrated, atol=1e-6)
