"""The networks as the training loop calls them: optionally checkpointed, and under ``torchrun`` wrapped in DDP.

``TrainingNets`` has the attributes ``run_cycle`` and ``generator_terms`` use
(``g_forward``, ``g_backward``, ``discriminate``), so the method code in
``ltnet.nn.cycle`` runs unchanged on one process or many. DistributedDataParallel
(PyTorch's engine, not a home-made all-reduce) averages the gradients of ``G_F``,
``G_B`` and ``D`` over the ranks during ``backward``.
"""

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint

from ltnet import distributed
from ltnet.nn import losses
from ltnet.nn.networks import LTNetNetworks


class Checkpointed(nn.Module):
    """Runs ``module`` under gradient checkpointing: its activations are recomputed in ``backward`` instead of kept."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *inputs):
        return checkpoint(self.module, *inputs, use_reentrant=False)


class TrainingNets:
    """``G_F``, ``G_B`` (both maybe checkpointed) and ``D``, each in DDP when a process group is open.

    ``discriminate`` (used by the generator's adversarial term) calls the bare
    ``D``: that gradient only reaches the generators, so it need not be synchronised.
    ``discriminator_loss`` runs the DDP-wrapped ``D`` once on real and warped images
    together (DDP allows one forward per backward); instance normalisation makes
    that the same as two separate calls.
    """

    def __init__(self, nets: LTNetNetworks, device: torch.device, with_backward: bool, checkpointing: bool = False):
        self.nets = nets
        wrap = Checkpointed if checkpointing else (lambda m: m)
        self.g_forward = self._parallel(wrap(nets.g_forward), device)
        self.g_backward = self._parallel(wrap(nets.g_backward), device) if with_backward else None
        self.discriminator = self._parallel(nets.discriminator, device)

    @staticmethod
    def _parallel(module: nn.Module, device: torch.device) -> nn.Module:
        if not distributed.active():
            return module
        return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)

    def discriminate(self, image: torch.Tensor) -> torch.Tensor:
        """Patch scores ``(B, 1, d, h, w)`` of the bare ``D`` for images ``(B, 1, D, H, W)``."""
        return self.nets.discriminate(image)

    def discriminator_loss(self, scan: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        """Least-squares loss of ``D`` on real scans ``u`` and detached warped atlases ``ū``, both
        ``(B, 1, D, H, W)``."""
        scores = self.discriminator(torch.cat([scan, warped.detach()]))[-1]
        return losses.lsgan_discriminator(scores[: len(scan)], scores[len(scan) :])
