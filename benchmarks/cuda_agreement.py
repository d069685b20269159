"""Does a transfer on a GPU give the labels a CPU gives? The bundled model on each bundled sample scan, on both devices.

Per scan: the share of voxels whose label agrees between the CPU and the CUDA transfer
(the GPU runs the networks in bfloat16, so a few boundary voxels may differ), the mean
Dice of each against the scan's reference labels, the QC score on each, and the same
with ``--refine`` steps. Results go to the "cuda-agreement" section of docs/BENCHMARKS.md.

    python benchmarks/cuda_agreement.py [--refine-steps 20] [--no-write]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

from ltnet import sample  # noqa: E402
from ltnet.data.io import read_image  # noqa: E402
from ltnet.metrics import dice_per_label  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402


def agreement(a: sitk.Image, b: sitk.Image) -> float:
    """Share of voxels with the same label in two label maps on one grid."""
    return float((sitk.GetArrayViewFromImage(a) == sitk.GetArrayViewFromImage(b)).mean())


def grid(image: sitk.Image) -> tuple:
    """Size, origin, spacing and direction: what "on the same grid" compares."""
    return image.GetSize(), image.GetOrigin(), image.GetSpacing(), image.GetDirection()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refine-steps", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("cuda_agreement.py: no CUDA device here; run it on a machine with a GPU.")
    models = {device: load_model(sample.demo_model_path(), device) for device in ("cpu", "cuda")}
    values = [label.value for label in models["cpu"].labels]
    lines = [
        "| scan | steps | voxels agreeing | Dice CPU | Dice CUDA | QC score CPU | QC score CUDA |",
        "|---|---|---|---|---|---|---|",
    ]
    agreements = []
    for scan_path in sample.scan_paths():
        target = read_image(scan_path)
        reference = sitk.ReadImage(str(sample.label_path(scan_path)))
        for steps in (0, args.refine_steps):
            results = {
                device: transfer(model, target, device, refine_steps=steps, extras=False)
                for device, model in models.items()
            }
            for result in results.values():
                if grid(result.labels) != grid(target):
                    sys.exit(f"{scan_path}: labels are not on the scan's grid")
            dice = {d: np.mean(list(dice_per_label(r.labels, reference, values).values())) for d, r in results.items()}
            share = agreement(results["cpu"].labels, results["cuda"].labels)
            agreements.append((steps, share, dice["cpu"], dice["cuda"]))
            lines.append(
                f"| {scan_path.name} | {steps} | {share:.4f} | {dice['cpu']:.3f} | {dice['cuda']:.3f} | "
                f"{results['cpu'].qc['score']:.3f} | {results['cuda'].qc['score']:.3f} |"
            )
            print(lines[-1], flush=True)
    summary = []
    for steps in (0, args.refine_steps):
        rows = np.array([a[1:] for a in agreements if a[0] == steps])
        summary.append(
            f"- {steps} refinement steps: "
            f"voxels agreeing {rows[:, 0].min():.4f} at worst, {rows[:, 0].mean():.4f} on average; "
            f"mean Dice CPU {rows[:, 1].mean():.3f}, CUDA {rows[:, 2].mean():.3f}."
        )
    section = "\n\n".join(
        [
            "## CUDA against CPU (`benchmarks/cuda_agreement.py`)",
            f"The bundled demo model on the {len(sample.scan_paths())} bundled sample scans, "
            "transferred on the CPU (float32) and on "
            f"the GPU (bfloat16 networks), with and without test-time refinement. Device: {machine()}.",
            "\n".join(summary),
            "\n".join(lines),
        ]
    )
    print(section)
    if not args.no_write:
        write_section("cuda-agreement", section)


if __name__ == "__main__":
    main()
