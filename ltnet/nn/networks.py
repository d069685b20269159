"""The three networks of LT-Net: two registration U-Nets and a PatchGAN discriminator.

Both are MONAI blocks (``VoxelMorphUNet``, ``PatchDiscriminator``); this module
only sets them up as LTNET.md specifies.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from monai.networks.nets import PatchDiscriminator, VoxelMorphUNet
from torch import nn

from ltnet.nn.warp import integrate


def unet_channels(levels: int) -> tuple[int, ...]:
    """MONAI ``VoxelMorphUNet`` channels for a U-Net with ``levels`` down-samplings (max-pooling by 2).

    MONAI's channels come in (down, up) pairs; a full-resolution 16-channel convolution, then 32
    channels at every coarser level. 4 levels is VoxelMorph's network as LT-Net uses it: encoder
    16-32-32-32 (each followed by a pooling), decoder 32-32-32-32-32-16-16 (the last two are
    ``final_channels``); 3 levels drops the coarsest one.
    """
    if levels < 1:
        raise ValueError(f"a U-Net needs at least 1 level, not {levels}")
    return (16, 32) + (32, 32) * (levels - 1)


DEFAULT_LEVELS = 3
PAPER_LEVELS = 4


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of ``G_F``, ``G_B`` and ``D``; stored in every model file."""

    unet_channels: tuple[int, ...] = unet_channels(DEFAULT_LEVELS)
    final_channels: tuple[int, ...] = (16, 16)
    diffeomorphic: bool = False
    field_downsize: int = (
        1  # the U-Net's field averaged over blocks of this many voxels per axis, then upsampled (1: as predicted)
    )
    discriminator_channels: int = 16
    discriminator_layers: int = 3

    @property
    def levels(self) -> int:
        """Number of down-samplings (max-pooling by 2) of the U-Net."""
        return len(self.unet_channels) // 2

    @property
    def grid_multiple(self) -> int:
        """Every network grid size must be a multiple of this (one halving per level)."""
        return 2**self.levels

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "NetworkConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class Float32Conv3d(nn.Conv3d):
    """A convolution that runs in float32 under autocast: the U-Net's flow layer, whose output is the field.

    With the field in bfloat16 (8 bits of mantissa), training in bfloat16 lagged float32 by 0.04 to 0.06 in
    LNCC after 300 iterations (CPU emulation, two seeds); with this layer in float32 it matched (docs/BENCHMARKS.md,
    "Training on a GPU"). On the CPU, without autocast, it is a plain ``nn.Conv3d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())


class RegistrationNet(nn.Module):
    """VoxelMorph-style U-Net: ``(moving, fixed)`` -> displacement ``Δ`` with ``fixed ≈ moving ∘ Δ``.

    Inputs ``(B, 1, D, H, W)`` each; output ``(B, 3, D, H, W)`` in voxels. With
    ``diffeomorphic`` the U-Net predicts a stationary velocity that is
    integrated by scaling and squaring. With ``field_downsize`` k > 1 its field is
    averaged over k³ blocks and upsampled trilinearly (VoxelMorph's ``int_downsize``
    idea): the map keeps only what a grid k times coarser holds, as the refinement's
    update does (``ltnet.refine``).
    """

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.diffeomorphic = config.diffeomorphic
        self.field_downsize = config.field_downsize
        self.unet = VoxelMorphUNet(
            spatial_dims=3,
            in_channels=2,
            unet_out_channels=config.unet_channels[-1],
            channels=config.unet_channels,
            final_conv_channels=config.final_channels,
        )
        flow_layer = self.unet.net[1].final_conv_out.conv
        nn.init.normal_(flow_layer.weight, mean=0.0, std=1e-5)
        nn.init.zeros_(flow_layer.bias)
        flow_layer.__class__ = Float32Conv3d  # same parameters and names; only its forward changes

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        return self.displacement(self.unet_field(moving, fixed))

    def unet_field(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """What the U-Net predicts, ``(B, 3, D, H, W)`` voxels: the displacement, or the velocity of a diffeomorphic
        net."""
        field = self.unet(torch.cat([moving, fixed], dim=1))
        if self.field_downsize == 1:
            return field
        coarse = F.avg_pool3d(field, self.field_downsize, ceil_mode=True)
        return F.interpolate(coarse, size=field.shape[2:], mode="trilinear", align_corners=False)

    def displacement(self, unet_field: torch.Tensor) -> torch.Tensor:
        """The displacement of a U-Net field: itself, or its scaling-and-squaring integral for a diffeomorphic net."""
        return integrate(unet_field) if self.diffeomorphic else unet_field


def make_discriminator(config: NetworkConfig) -> nn.Module:
    """3-D PatchGAN: ``(B, 1, D, H, W)`` image -> list of layer outputs, the last one the patch scores."""
    return PatchDiscriminator(
        spatial_dims=3,
        channels=config.discriminator_channels,
        in_channels=1,
        num_layers_d=config.discriminator_layers,
        norm="INSTANCE",
    )


class LTNetNetworks(nn.Module):
    """``G_F`` (atlas -> scan), ``G_B`` (back) and ``D`` in one module, so they move and save together."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        self.g_forward = RegistrationNet(config)
        self.g_backward = RegistrationNet(config)
        self.discriminator = make_discriminator(config)

    def discriminate(self, image: torch.Tensor) -> torch.Tensor:
        """Patch scores ``(B, 1, d, h, w)`` for images ``(B, 1, D, H, W)``; 1 means "a real scan"."""
        return self.discriminator(image)[-1]
