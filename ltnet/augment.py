"""Random changes to the training scans (``ltnet train --augment``).

Each drawn scan is moved by a small random affine map about the grid's centre
(rotation, scaling and shift per axis) and its contrast changed by a random gamma,
so ``G_F`` sees more varied targets than the cohort holds. The atlas is never
changed: at transfer time it is always the same image. The draws come from their
own seeded generator, for every slot of the global batch on every rank
(``ltnet.sampling``), so a resumed or multi-process run sees the same scans as
one uninterrupted process.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Largest changes drawn (uniformly in ±), and the spread of the contrast change.

    ``rotation_deg`` about each axis; ``scale`` as a share per axis; ``shift_voxels`` per
    axis on the network grid; ``log_gamma_std``: the scan's values in [0, 1] are raised to
    ``exp(N(0, log_gamma_std))``.
    """

    rotation_deg: float = 6.0
    scale: float = 0.06
    shift_voxels: float = 2.0
    log_gamma_std: float = 0.2

    def draw(self, generator: torch.Generator, count: int) -> torch.Tensor:
        """``(count, 10)`` parameters: three angles (rad), three scales, three shifts (voxels), one gamma."""
        uniform = torch.rand(count, 9, generator=generator) * 2.0 - 1.0
        angles = uniform[:, :3] * math.radians(self.rotation_deg)
        scales = 1.0 + uniform[:, 3:6] * self.scale
        shifts = uniform[:, 6:9] * self.shift_voxels
        gamma = torch.exp(torch.randn(count, 1, generator=generator) * self.log_gamma_std)
        return torch.cat([angles, scales, shifts, gamma], dim=1)


def apply(scans: torch.Tensor, parameters: torch.Tensor) -> torch.Tensor:
    """``(B, 1, D, H, W)`` scans in [0, 1] moved and re-contrasted by ``(B, 10)`` parameters from ``Augmentation.draw``.

    The map is rigid-plus-scaling in voxel units (the network grid is isotropic), about
    the grid's centre; voxels it brings in from outside take the nearest edge value.
    """
    parameters = parameters.to(scans.device, torch.float32)
    angles, scales, shifts, gamma = parameters[:, :3], parameters[:, 3:6], parameters[:, 6:9], parameters[:, 9]
    half = torch.tensor([(n - 1) / 2.0 for n in reversed(scans.shape[2:])], device=scans.device)  # x, y, z (W, H, D)
    matrix = _rotation(angles) @ torch.diag_embed(scales)
    normalised = matrix * half[None, None, :] / half[None, :, None]  # S⁻¹ A S: voxel units to grid_sample's [-1, 1]
    theta = torch.cat([normalised, (shifts / half)[:, :, None]], dim=2)
    grid = F.affine_grid(theta, list(scans.shape), align_corners=True)
    moved = F.grid_sample(scans.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return moved.clamp(0.0, 1.0) ** gamma[:, None, None, None, None]


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` angles about x, y, z (rad) -> ``(B, 3, 3)`` rotations ``R_z R_y R_x``."""
    c, s = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])
    rx = torch.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1).view(-1, 3, 3)
    ry = torch.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1).view(-1, 3, 3)
    rz = torch.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx
