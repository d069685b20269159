"""Spatial transformer: warping, composing and integrating displacement fields.

Convention (VoxelMorph's, see LTNET.md): backward warping,
``(x ∘ Δ)(t) = x(t + Δ(t))`` with trilinear sampling.

A displacement field ``Δ`` has shape ``(B, 3, D, H, W)``; channel ``i`` is the
displacement along spatial tensor axis ``i`` (D, H, W), in voxels of the
network grid. MONAI's ``Warp`` and ``DVF2DDF`` do the sampling and the
scaling-and-squaring integration.
"""

import warnings

import torch
from monai.networks.blocks import DVF2DDF, Warp


class _GridKeepingWarp(Warp):
    """MONAI's ``Warp``, keeping its grid of voxel indices between calls on fields of one shape, dtype and device.

    MONAI 1.6 means to keep it, but compares the grid's shape with the field's wrongly and builds it again on every
    call (Project-MONAI/MONAI pull request 9082), which at a whole-brain grid costs about as much as the sampling.
    One grid is kept, the last one built (``(B, 3, D, H, W)``: 83 MB at 160x192x224).
    """

    def get_reference_grid(self, ddf: torch.Tensor, jitter: bool = False, seed: int = 0) -> torch.Tensor:
        if jitter:
            return super().get_reference_grid(ddf, jitter, seed)
        kept = self.ref_grid
        if kept is not None and (kept.shape, kept.dtype, kept.device) == (ddf.shape, ddf.dtype, ddf.device):
            return kept
        axes = (torch.arange(n, dtype=torch.float32, device=ddf.device) for n in ddf.shape[2:])
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))[None].expand(ddf.shape[0], -1, -1, -1, -1)
        grid = grid.to(ddf.dtype)  # (B, 3, D, H, W): each voxel's index along D, H and W
        self.ref_grid = grid
        return grid


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _WARP_BORDER = _GridKeepingWarp(mode="bilinear", padding_mode="border")
    _INTEGRATE = DVF2DDF(num_steps=7, mode="bilinear", padding_mode="border")
    _INTEGRATE.warp_layer = _GridKeepingWarp(mode="bilinear", padding_mode="border")  # 7 warps per integration


def warp(image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` ``(B, C, D, H, W)`` by ``displacement`` ``(B, 3, D, H, W)`` (voxels).

    Values outside the grid repeat the border.

    >>> warp(torch.zeros(1, 2, 8, 8, 8), torch.zeros(1, 3, 8, 8, 8)).shape
    torch.Size([1, 2, 8, 8, 8])
    """
    _check_field(image, displacement)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _WARP_BORDER(image, displacement)


def compose(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The displacement of "move by ``first``, then by ``second``", both ``(B, 3, D, H, W)`` voxels.

    ``c(t) = first(t) + second(t + first(t))``, so that
    ``(x ∘ second) ∘ first == x ∘ compose(first, second)`` under backward warping.
    """
    return first + warp(second, first)


def integrate(velocity: torch.Tensor) -> torch.Tensor:
    """Scaling and squaring (7 steps) of a stationary velocity field ``(B, 3, D, H, W)`` into a displacement
    (voxels)."""
    _check_field(velocity, velocity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _INTEGRATE(velocity)


def jacobian_determinant(displacement: torch.Tensor) -> torch.Tensor:
    """Determinant of the Jacobian of ``t -> t + Δ(t)``, ``(B, 3, D, H, W)`` -> ``(B, D, H, W)``.

    Central differences inside, one-sided at the border; 1 keeps volume, <= 0 is a fold. The 3x3 determinant by
    cofactors, voxel by voxel (a batched LU factorisation is four times slower on a CPU).
    """
    gradients = torch.gradient(displacement, dim=(2, 3, 4))  # d/d axis j, each (B, 3, D, H, W)
    j = [[gradients[col][:, row] + float(row == col) for col in range(3)] for row in range(3)]  # J[row][col]
    return (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )


def _check_field(image: torch.Tensor, displacement: torch.Tensor) -> None:
    if image.dim() != 5 or displacement.dim() != 5 or displacement.shape[1] != 3:
        raise ValueError(
            "expected image (B, C, D, H, W) and displacement (B, 3, D, H, W), "
            f"got {tuple(image.shape)} and {tuple(displacement.shape)}"
        )
    if image.shape[2:] != displacement.shape[2:] or image.shape[0] != displacement.shape[0]:
        raise ValueError(
            f"image {tuple(image.shape)} and displacement {tuple(displacement.shape)} differ in batch or grid"
        )


def field_on_grid(displacement: torch.Tensor, factor: float, size: tuple[int, int, int]) -> torch.Tensor:
    """A displacement ``(B, 3, D, H, W)`` (voxels) on a grid that shares its origin and direction but has
    ``factor`` times the voxels per mm (``NetworkGrid.finer``), ``size`` voxels ``(D', H', W')``: sampled
    trilinearly at each new voxel ``j``, which lies at index ``j / factor`` of the old grid (the edge value
    beyond it), and expressed in the new grid's voxels (times ``factor``). A factor below 1 goes coarser.
    """
    old = displacement.shape[2:]
    axes = [
        torch.arange(n, dtype=torch.float32, device=displacement.device) / factor * 2.0 / max(o - 1, 1) - 1.0
        for n, o in zip(size, old)
    ]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    grid = torch.stack([x, y, z], dim=-1)[None].expand(displacement.shape[0], -1, -1, -1, -1)
    sampled = torch.nn.functional.grid_sample(
        displacement.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return factor * sampled
