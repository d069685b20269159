"""Teaching ``G_F`` with its own refined fields (self-distillation from test-time refinement).

``ltnet.refine`` fits ``G_F``'s field to one scan in a few steps and raises the Dice
well above the network's own (docs/BENCHMARKS.md, "Tuning LT-Net", items 29 and 31).
Those refined fields need no labels, so they can teach the network: fine-tuning
adds ``weights.teach · mean((Δ_F − Δ_refined)²)`` (voxels²) to the training loss,
where ``Δ_refined`` is the field ``TEACH_STEPS`` refinement steps make for that scan,
computed from the network being fine-tuned the first time the scan is drawn and
kept in CPU memory: 3 float32 values per grid voxel per scan, 0.9 MB at the
hippocampus grid (40x48x40) but 83 MB at 160x192x224, about 10 GB for 120 scans
there. A resumed run computes them again
from its checkpoint's network.

On the hippocampus benchmark, ``ltnet train --init MODEL --teach 10 --iterations 600
--lr 1e-4`` raised the network's mean Dice from 0.769 to 0.779 over three seeds
(better on 50 of 59 targets), and to 0.793 with 3 refinement steps.
"""

import torch

from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import RegistrationNet
from ltnet.refine import refine

TEACH_STEPS = 20  # the refinement the network learns from (40 steps taught no better: item 31)


class RefinedFields:
    """The refined forward displacement ``(1, 3, D, H, W)`` (voxels) of each cohort scan, by its index."""

    def __init__(self, g_forward: RegistrationNet, weights: LossWeights, atlas: torch.Tensor, steps: int = TEACH_STEPS):
        self.g_forward, self.weights, self.atlas, self.steps = g_forward, weights, atlas, steps
        self.fields: dict[int, torch.Tensor] = {}

    def __call__(self, index: int, scan: torch.Tensor) -> torch.Tensor:
        """The refined field for cohort scan ``index`` (``scan``: ``(1, 1, D, H, W)`` on the atlas's device)."""
        if index not in self.fields:
            self.fields[index] = refine(self.g_forward, self.weights, self.atlas, scan, self.steps).detach().cpu()
        return self.fields[index].to(self.atlas.device, non_blocking=True)


def teach_term(field: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
    """Mean squared distance (voxels²) between ``G_F``'s displacement and the refined one, both ``(B, 3, D, H, W)``."""
    return ((field.float() - refined) ** 2).mean()
