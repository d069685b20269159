"""Label-space cycle terms, old forms against new, on the bundled sample: a short run that shows nothing breaks.

Each variant trains from the same seed on the seven training scans of ``ltnet/sample`` for
``--iterations`` (default 200) with ``ltnet train``'s default recipe (warm-up 0.5, coupling 0.1,
no adversarial term), or with ``--paper-recipe`` the paper's joint training (warm-up 0, coupling 1),
and is scored by its Dice on the three held-out sample scans (mean over the two labels).

    OMP_NUM_THREADS=1 python benchmarks/label_terms_sample.py [--iterations 200] [--paper-recipe]

Variants: ``L_anatomy_cyc`` over all channels (background included) and ``L_diff_cyc`` uniform over voxels
(the forms of older models), against the mean of per-label foreground soft Dice and the foreground-balanced
``L_diff_cyc``. Prints one line per variant and held-out scan.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltnet import sample  # noqa: E402
from ltnet.data.io import read_image  # noqa: E402
from ltnet.data.prepare import Atlas, prepare_scan  # noqa: E402
from ltnet.metrics import dice_per_label  # noqa: E402
from ltnet.model_file import LTNetModel  # noqa: E402
from ltnet.nn.cycle import CycleOptions  # noqa: E402
from ltnet.nn.losses import LossWeights  # noqa: E402
from ltnet.nn.networks import LTNetNetworks, NetworkConfig  # noqa: E402
from ltnet.training import TrainSettings, train  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

VARIANTS = {
    "all channels + uniform (older models)": CycleOptions(anatomy="all_channels", diff_cyc="uniform"),
    "foreground + balanced": CycleOptions(anatomy="foreground", diff_cyc="balanced"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper-recipe", action="store_true", help="warm-up 0 and coupling 1 instead of 0.5 / 0.1")
    parser.add_argument("--work", default="runs/label_terms_sample")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    config = NetworkConfig()
    atlas = Atlas.from_files(sample.atlas_image_path(), sample.atlas_labels_path(), None, config.grid_multiple)
    scans = [prepare_scan(read_image(p), atlas, True, args.seed).image for p in sample.training_scan_paths()]
    warmup, coupling = (0.0, 1.0) if args.paper_recipe else (0.5, 0.1)
    settings = TrainSettings(args.iterations, 1e-4, args.seed, args.iterations, warmup=warmup)
    print(f"grid {atlas.grid.size}, {args.iterations} iterations, warm-up {warmup}, coupling {coupling}")
    for name, options in VARIANTS.items():
        torch.manual_seed(args.seed)
        weights = replace(LossWeights.paper(adversarial=False), coupling=coupling)
        model = LTNetModel(LTNetNetworks(config), atlas, weights, cycle_options=options)
        started = time.monotonic()
        out = work / f"{options.anatomy}-{options.diff_cyc}-{'paper' if args.paper_recipe else 'default'}.pt"
        train(model, scans, out, settings, torch.device("cpu"))
        model.networks.eval()
        dices = []
        for scan_path in sample.held_out_scan_paths():
            result = transfer(model, read_image(scan_path), "cpu")
            reference = sitk.ReadImage(str(sample.label_path(scan_path)))
            per_label = dice_per_label(result.labels, reference, [label.value for label in model.labels])
            dices.append(float(np.mean(list(per_label.values()))))
            print(f"  {name}: {scan_path.name} Dice {dices[-1]:.4f}")
        print(f"{name}: mean Dice {np.mean(dices):.4f} ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
