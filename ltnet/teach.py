"""Teaching ``G_F`` with its own refined fields (self-distillation from test-time refinement).

``ltnet.refine`` fits ``G_F``'s field to one scan in a few steps and raises the Dice
well above the network's own (docs/TUNING.md, "A few refinement steps").
Those refined fields need no labels, so they can teach the network: fine-tuning
adds ``weights.teach`` times the mean of ``(Δ_F − Δ_refined)²`` (voxels², weighted as
below) to the training loss, where ``Δ_refined`` is the field ``TEACH_STEPS``
refinement steps make for that scan,
computed from the network being fine-tuned the first time the scan is drawn and
kept in CPU memory: 3 float32 values per grid voxel per scan, 0.9 MB at the
hippocampus grid (40x48x40) but 83 MB at 160x192x224, about 10 GB for 120 scans
there. A resumed run computes them again
from its checkpoint's network.

The distance counts where the labels go (``label_weights``): voxels within ``LABEL_REACH``
of the atlas labels as the refined field carries them weigh 1, the others ``LABEL_FLOOR``. The
network cannot follow its refined fields everywhere (it stays about 0.4 voxel from
them), and the Dice depends on the field at the labels, not in the background.

On the hippocampus benchmark, ``ltnet train --init MODEL --teach 10 --iterations 600
--lr 1e-4`` raised the network's mean Dice from 0.769 to 0.779 over three seeds with
every voxel weighted alike (better on 50 of 59 targets), and to 0.793 with 3
refinement steps; weighted toward the labels, to 0.784 (better than untaught on 58 of 59,
level with elastix) and 0.794 (docs/TUNING.md, "``G_F`` taught by its own refinement" and
"Teaching where the labels go").
"""

import torch
import torch.nn.functional as F

from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import RegistrationNet
from ltnet.nn.warp import warp
from ltnet.refine import refine

TEACH_STEPS = 20  # the refinement the network learns from (targets of 40 steps taught no better: 0.780 against 0.781)
LABEL_REACH = 1  # voxels around the warped atlas labels that the distance counts fully (0 to 3 gave 0.781-0.782)
LABEL_FLOOR = 0.0  # weight of the other voxels (0 to 0.1 gave 0.781-0.782 mean Dice; every voxel alike 0.779)


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


def label_weights(atlas_labels: torch.Tensor, refined: torch.Tensor) -> torch.Tensor:
    """Per-voxel weights ``(B, 1, D, H, W)`` of the teach term, from the atlas labels ``(B, K, D, H, W)`` (one-hot,
    channel 0 the background): their foreground warped by the ``refined`` field (between 0 and 1 at label borders),
    its maximum over ``LABEL_REACH`` voxels around each voxel, raised to at least ``LABEL_FLOOR``."""
    with torch.no_grad():
        foreground = warp(atlas_labels[:, 1:].sum(1, keepdim=True).float(), refined)
        near = F.max_pool3d(foreground, 2 * LABEL_REACH + 1, stride=1, padding=LABEL_REACH)
        return LABEL_FLOOR + (1.0 - LABEL_FLOOR) * near


def teach_term(field: torch.Tensor, refined: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared distance (voxels²) between ``G_F``'s displacement and the refined one, both ``(B, 3, D, H, W)``,
    averaged with ``weights`` ``(B, 1, D, H, W)`` (``label_weights``) when given, else over every voxel."""
    squared = (field.float() - refined) ** 2
    if weights is None:
        return squared.mean()
    return (weights * squared).sum() / (weights.sum() * field.shape[1]).clamp_min(1e-8)
