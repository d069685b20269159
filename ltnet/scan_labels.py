"""Atlas labels onto a scan's own grid along the forward field, in one torch pass.

For every voxel of the scan: its physical point ``x`` (the scan's origin, spacing
and direction), the network-grid point of ``x`` under the inverse pre-alignment,
that point's continuous grid index ``q``, the atlas point at grid index
``q + Δ_F(q)`` (``Δ_F`` in grid voxels, trilinear, zero outside the grid as in
ITK's displacement-field transform), and there the atlas label map *at its own
resolution*: each label's mask interpolated trilinearly (background outside the
atlas), the result their argmax. So a field computed on a coarse network grid
still carries labels as fine as the atlas's own voxels (cortex, thin structures).

This is what resampling each label's mask with SimpleITK along
``CompositeTransform([Δ_F, to_grid])`` gives (``tests/test_scan_labels.py`` checks
it on oblique, anisotropic grids), done in slabs on the transfer's device instead
of once per label, and from the 8 atlas voxels around each point instead of from
one full-size mask per label; points with no label among those 8 take the background
without being weighed (most of a scan around a small structure).
"""

import itertools

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ltnet.data.grid import NetworkGrid
from ltnet.data.io import ijk_to_lps

SLAB_ELEMENTS = 2**23  # voxels x labels weighed at a time: bounds memory for many labels on large scans


def affine_matrix(transform: sitk.Transform) -> np.ndarray:
    """4x4 homogeneous matrix of an affine SimpleITK transform (LPS points -> LPS points)."""
    if not transform.IsLinear():
        raise ValueError(f"{transform.GetName()} is not affine")
    points = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    mapped = np.array([transform.TransformPoint(p.tolist()) for p in points])
    matrix = np.eye(4)
    matrix[:3, 3] = mapped[0]
    matrix[:3, :3] = (mapped[1:] - mapped[0]).T
    return matrix


def labels_on_scan(
    atlas_channels: sitk.Image,
    values: list[int],
    forward: torch.Tensor,
    grid: NetworkGrid,
    scan: sitk.Image,
    to_grid: sitk.Transform,
) -> sitk.Image:
    """The atlas label map on ``scan``'s grid (int32 label values, ``scan``'s geometry).

    ``atlas_channels``: the atlas label map as channel indices ``k`` (label value
    ``values[k]``, 0 the background) on its own grid, in the grid's physical space.
    ``forward`` ``(3, D, H, W)`` (grid voxels, tensor axis order) lies on ``grid``;
    ``to_grid`` maps scan points to grid points (affine).
    """
    grid_to_atlas = np.linalg.inv(ijk_to_lps(atlas_channels)) @ ijk_to_lps(grid.reference())
    scan_to_grid = np.linalg.inv(ijk_to_lps(grid.reference())) @ affine_matrix(to_grid) @ ijk_to_lps(scan)
    device = forward.device
    to_grid_index = torch.as_tensor(
        scan_to_grid[:3], dtype=torch.float64, device=device
    )  # (3, 4): scan index xyz1 -> grid index xyz
    to_atlas_index = torch.as_tensor(
        grid_to_atlas[:3], dtype=torch.float64, device=device
    )  # (3, 4): grid index xyz1 -> atlas index xyz
    grid_size_xyz = torch.tensor(grid.size, dtype=torch.float64, device=device)
    channels = torch.from_numpy(sitk.GetArrayFromImage(atlas_channels)).to(device)  # uint8 or int16, as stored
    padded = with_background_border(channels)  # once, not per slab
    near = near_foreground(padded)
    forward = forward.float()
    table = torch.as_tensor(values, dtype=torch.int32, device=device)
    nx, ny, nz = scan.GetSize()
    slab = max(1, SLAB_ELEMENTS // (nx * ny * max(3, len(values))))
    # scan index -> grid index is affine: one term per scan axis, summed by broadcasting over a slab
    x_term, y_term, z_term = (
        torch.arange(n, device=device, dtype=torch.float64)[:, None] * to_grid_index[:, axis]
        for axis, n in enumerate((nx, ny, nz))
    )  # (n, 3) each
    z_term = z_term + to_grid_index[:, 3]
    result = []
    for z0 in range(0, nz, slab):
        q = z_term[z0 : z0 + slab, None, None] + y_term[None, :, None] + x_term[None, None, :]  # (nz, ny, nx, 3)
        displacement = _sample(forward, q, grid_size_xyz)  # (3, ...) zyx voxels
        moved = q + displacement.permute(1, 2, 3, 0).flip(-1).double()
        atlas_index = moved @ to_atlas_index[:, :3].T + to_atlas_index[:, 3]
        result.append(labels_at(padded, near, atlas_index.reshape(-1, 3), table).reshape(moved.shape[:-1]))
    labels = sitk.GetImageFromArray(torch.cat(result).cpu().numpy())
    labels.CopyInformation(scan)
    return labels


def with_background_border(channels: torch.Tensor) -> torch.Tensor:
    """``channels`` ``(D, H, W)`` with a one-voxel border of channel 0 (the background): ``(D + 2, H + 2, W + 2)``."""
    return F.pad(channels, (1, 1, 1, 1, 1, 1))


def near_foreground(padded: torch.Tensor) -> torch.Tensor:
    """For each cell of ``padded`` (``with_background_border``; a cell = the 8 voxels from its corner ``base`` to
    ``base + 1``): whether any of them is not background. ``(D + 1, H + 1, W + 1)`` bool, indexed by the cell's
    corner."""
    foreground = (padded > 0).float()[None, None]
    return F.max_pool3d(foreground, kernel_size=2, stride=1)[0, 0] > 0


def labels_at(padded: torch.Tensor, near: torch.Tensor, index_xyz: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The label value (``table[channel]``) with the largest trilinear vote at each of ``index_xyz`` ``(N, 3)``:
    ``(N,)``. Points whose 8 neighbours are all background (``near``: ``near_foreground(padded)``) take the background
    without weighing them, which is what the votes would give and most of a scan's points on a small atlas."""
    base, upper = _cell(padded, index_xyz)
    inside = near[base[:, 2], base[:, 1], base[:, 0]]
    labels = table[0].expand(index_xyz.shape[0]).clone()
    if inside.any():
        labels[inside] = table[_cell_votes(padded, base[inside], upper[inside], len(table)).argmax(1)]
    return labels


def trilinear_votes(padded: torch.Tensor, index_xyz: torch.Tensor, count: int) -> torch.Tensor:
    """Each channel's mask interpolated trilinearly at ``index_xyz`` ``(N, 3)`` (indices of the unpadded volume):
    ``(N, count)``.

    ``padded`` is the channel-index volume with its background border (``with_background_border``):
    corners outside the volume land on it, so the background is 1 outside the atlas and every row sums to 1.
    """
    return _cell_votes(padded, *_cell(padded, index_xyz), count)


def _cell_votes(padded: torch.Tensor, base: torch.Tensor, upper: torch.Tensor, count: int) -> torch.Tensor:
    """``trilinear_votes`` of points given by their cell in ``padded`` (``_cell``: corner and offset, ``(N, 3)``
    each): ``(N, count)``."""
    weights = (1.0 - upper, upper)  # per axis, for corner offset 0 and 1
    strides = (1, padded.shape[2], padded.shape[1] * padded.shape[2])
    first = (
        base[:, 0] * strides[0] + base[:, 1] * strides[1] + base[:, 2] * strides[2]
    )  # no integer matmul: CUDA has none
    flat = padded.reshape(-1)
    votes = torch.zeros(base.shape[0], count, device=padded.device)
    for dx, dy, dz in itertools.product((0, 1), repeat=3):
        weight = weights[dx][:, 0] * weights[dy][:, 1] * weights[dz][:, 2]
        votes.scatter_add_(
            1, flat[first + (dx * strides[0] + dy * strides[1] + dz * strides[2])].long()[:, None], weight[:, None]
        )
    return votes


def _cell(padded: torch.Tensor, index_xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell of ``padded`` around each point ``index_xyz`` ``(N, 3)`` (indices of the unpadded volume): its corner
    (padded index, x y z, long) and the point's offset from it along each axis (float32 in [0, 1]), ``(N, 3)`` each.
    Points farther out than the border stay on it, so ``corner + 1`` is always inside ``padded``."""
    size_xyz = torch.tensor([n - 2 for n in padded.shape[::-1]], device=padded.device, dtype=index_xyz.dtype)
    point = torch.minimum(index_xyz.clamp(min=-1.0), size_xyz) + 1.0
    base = torch.minimum(point.floor(), size_xyz)
    return base.long(), (point - base).float()


def _sample(volume: torch.Tensor, index_xyz: torch.Tensor, size_xyz: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of ``volume`` ``(C, D, H, W)`` at continuous indices ``(..., 3)`` (x, y, z), zero outside:
    ``(C, ...)``."""
    normalised = (2.0 * index_xyz / (size_xyz - 1) - 1.0).float()
    spatial = index_xyz.shape[:-1]
    sampled = F.grid_sample(
        volume[None], normalised.reshape(1, 1, 1, -1, 3), mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return sampled.reshape(volume.shape[0], *spatial)
