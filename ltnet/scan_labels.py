"""Atlas labels onto a scan's own grid along the forward field, in one torch pass.

For every voxel of the scan: its physical point ``x`` (the scan's origin, spacing
and direction), the network-grid point of ``x`` under the inverse pre-alignment,
that point's continuous grid index ``q``, the atlas index ``q + Δ_F(q)`` (``Δ_F``
in grid voxels, trilinear, zero outside the grid as in ITK's displacement-field
transform), and there the atlas's soft one-hot labels (trilinear; background
outside the grid); the result is their argmax. This is what resampling each
one-hot channel with SimpleITK along ``CompositeTransform([Δ_F, to_grid])`` gives
(``tests/test_scan_labels.py`` checks it on an oblique, anisotropic scan), done in
slabs on the transfer's device instead of once per channel.
"""

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ltnet.data.grid import NetworkGrid

SLAB_ELEMENTS = 2**23  # voxels x channels sampled at a time: bounds memory for many labels on large scans


def index_to_physical(image: sitk.Image) -> np.ndarray:
    """4x4 homogeneous matrix: voxel index ``(x, y, z, 1)`` of ``image`` -> LPS point."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3) @ np.diag(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


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
    one_hot: torch.Tensor, forward: torch.Tensor, grid: NetworkGrid, scan: sitk.Image, to_grid: sitk.Transform, values: list[int]
) -> sitk.Image:
    """The atlas label map on ``scan``'s grid (int32 label values, ``scan``'s geometry).

    ``one_hot`` ``(K, D, H, W)`` and ``forward`` ``(3, D, H, W)`` (voxels, tensor axis
    order) lie on ``grid``; ``to_grid`` maps scan points to grid points (affine).
    Channel 0 is the background.
    """
    scan_to_grid = np.linalg.inv(index_to_physical(grid.reference())) @ affine_matrix(to_grid) @ index_to_physical(scan)
    device = forward.device
    matrix = torch.as_tensor(scan_to_grid[:3], dtype=torch.float64, device=device)  # (3, 4): scan index xyz1 -> grid index xyz
    grid_size_xyz = torch.tensor(grid.size, dtype=torch.float64, device=device)
    forward = forward.float()
    shifted = one_hot.float().clone()
    shifted[0] -= 1.0  # sampled with zero padding, then +1: background is 1 outside the grid
    table = torch.as_tensor(values, dtype=torch.int32, device=device)
    nx, ny, nz = scan.GetSize()
    slab = max(1, SLAB_ELEMENTS // (nx * ny * max(3, len(values))))
    y, x = torch.meshgrid(torch.arange(ny, device=device, dtype=torch.float64), torch.arange(nx, device=device, dtype=torch.float64), indexing="ij")
    result = []
    for z0 in range(0, nz, slab):
        z = torch.arange(z0, min(nz, z0 + slab), device=device, dtype=torch.float64)
        index = torch.stack(torch.broadcast_tensors(x[None], y[None], z[:, None, None], torch.ones(1, device=device, dtype=torch.float64)), dim=-1)
        q = index @ matrix.T  # (nz, ny, nx, 3) grid index xyz
        displacement = _sample(forward, q, grid_size_xyz)  # (3, ...) zyx voxels
        atlas_index = q + displacement.permute(1, 2, 3, 0).flip(-1).double()
        probabilities = _sample(shifted, atlas_index, grid_size_xyz)
        probabilities[0] += 1.0
        result.append(table[probabilities.argmax(0)])
    labels = sitk.GetImageFromArray(torch.cat(result).cpu().numpy())
    labels.CopyInformation(scan)
    return labels


def _sample(volume: torch.Tensor, index_xyz: torch.Tensor, size_xyz: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of ``volume`` ``(C, D, H, W)`` at continuous indices ``(..., 3)`` (x, y, z), zero outside: ``(C, ...)``."""
    normalised = (2.0 * index_xyz / (size_xyz - 1) - 1.0).float()
    spatial = index_xyz.shape[:-1]
    sampled = F.grid_sample(volume[None], normalised.reshape(1, 1, 1, -1, 3), mode="bilinear", padding_mode="zeros", align_corners=True)
    return sampled.reshape(volume.shape[0], *spatial)
