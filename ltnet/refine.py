"""Test-time refinement: fit the networks to one target before transferring.

``G_F`` and ``G_B`` are optimised for a few steps on the single pair (atlas,
target) with the model's own unsupervised and cycle losses (the adversarial
term is left out: one target is no distribution), with the model's cycle-to-``G_F``
coupling. The model itself is not
changed; a refined copy of its networks is returned.
"""

import copy
from dataclasses import replace

import torch

from ltnet.nn.cycle import generator_terms, run_cycle, weighted_total
from ltnet.nn.losses import LossWeights
from ltnet.nn.networks import LTNetNetworks


def refine(
    networks: LTNetNetworks, weights: LossWeights, atlas: torch.Tensor, atlas_labels: torch.Tensor, scan: torch.Tensor, steps: int, learning_rate: float = 1e-4
) -> LTNetNetworks:
    """A copy of ``networks`` after ``steps`` Adam steps on one pair; tensors ``(1, C, D, H, W)`` on the networks' device."""
    refined = copy.deepcopy(networks).train()
    weights = replace(weights, gan=0.0)
    parameters = list(refined.g_forward.parameters()) + (list(refined.g_backward.parameters()) if weights.needs_backward else [])
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    for _ in range(steps):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=scan.device.type == "cuda"):
            cycle = run_cycle(refined, atlas, atlas_labels, scan, with_backward=weights.needs_backward, coupling=weights.coupling)
            total = weighted_total(generator_terms(refined, cycle, atlas, atlas_labels, scan, weights), weights)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return refined.eval()
