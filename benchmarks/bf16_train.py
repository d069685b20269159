"""``ltnet train`` with the networks under CPU bfloat16 autocast: the precision of CUDA training, on a CPU.

Checks GPU precision where no GPU is at hand (docs/BENCHMARKS.md, "Training on a GPU"):
the same arguments as ``ltnet train``; only ``ltnet.training.mixed_precision`` changes.

    python benchmarks/bf16_train.py train --atlas-image A --atlas-labels L --images COHORT --out m.pt \\
        --iterations 1500 --lr 3e-4 --seed 0 --device cpu
"""

import sys

import torch

import ltnet.training
from ltnet.cli import main

ltnet.training.mixed_precision = lambda device: torch.autocast("cpu", dtype=torch.bfloat16)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
