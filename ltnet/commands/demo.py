"""``ltnet demo``: label the bundled held-out sample scans with the bundled model, score them, draw a figure.

The figure needs matplotlib (``pip install 'ltnet[figure]'``); without it the demo writes the labels and the QC
and says in one line how to get the figure.
"""

import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ltnet import sample
from ltnet.data.io import read_image, read_label_map, write_label_map
from ltnet.device import pick_device
from ltnet.figure import missing_figure_support, transfer_figure
from ltnet.metrics import dice_per_label, labels_without_registration
from ltnet.model_file import load_model
from ltnet.paths import stem
from ltnet.transfer import transfer


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="ltnet-demo", help="output folder (default ./ltnet-demo)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def run(args) -> int:
    out = Path(args.out)
    for sub in ("labels", "qc"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    model = load_model(sample.demo_model_path(), device)
    atlas_labels = read_label_map(sample.atlas_labels_path()).image
    values = [label.value for label in model.labels]
    atlas_image, atlas_grid_labels = model.atlas_image, model.atlas_labels  # both on the network grid, as l̄ is
    rows, lines = [], []
    for scan_path in sample.held_out_scan_paths():
        target = read_image(scan_path)
        result = transfer(model, target, device)
        result.qc["target"] = str(scan_path)
        name = stem(scan_path)
        write_label_map(result.labels, out / "labels" / f"{name}.nii.gz", model.labels)
        (out / "qc" / f"{name}.json").write_text(json.dumps(result.qc, indent=2))
        reference = sitk.ReadImage(str(sample.label_path(scan_path)))
        ltnet_dice = dice_per_label(result.labels, reference, values)
        none_dice = dice_per_label(labels_without_registration(atlas_labels, reference), reference, values)
        lines.append(
            f"  {name}: Dice LTNet {_fmt(ltnet_dice)}  (no registration {_fmt(none_dice)})"
            f"  QC {result.qc['verdict']} ({result.qc['score']:.2f})"
        )
        rows.append(
            {
                "atlas": atlas_image,
                "atlas_labels": atlas_grid_labels,
                "target": target,
                "labels": result.labels,
                "cycle_error": sitk.Abs(result.reconstructed_atlas - atlas_image),
                "name": name,
                "dice": ltnet_dice,
                "qc": result.qc,
            }
        )
    print(
        "ltnet demo: labels of the three held-out sample scans (Dice against their reference labels):", file=sys.stderr
    )
    print("\n".join(lines), file=sys.stderr)
    missing = missing_figure_support()
    if missing:
        print(f"ltnet demo: {missing}", file=sys.stderr)
        print(f"wrote {out}/labels/ and {out}/qc/", file=sys.stderr)
    else:
        transfer_figure(out / "demo.png", rows, model.labels)
        print(f"wrote {out}/labels/, {out}/qc/ and {out}/demo.png", file=sys.stderr)
    return 0


def _fmt(scores: dict) -> str:
    return " / ".join(f"{v:.2f}" for v in scores.values()) + f" (mean {np.mean(list(scores.values())):.2f})"
