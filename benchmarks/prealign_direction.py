"""Which image the affine pre-alignment should hold fixed: the atlas or the scan (``--prealign-fixed``).

For every atlas -> target pair of both benchmarks (the pairs of ``benchmarks/accuracy.py``: hippocampus atlas
hippocampus_007 and its 59 targets on the bundled model's 40x48x40 grid; IBSR each of the 4 subjects as atlas against
the 3 others on the 4 mm grid 64x48x64), the atlas is put on the network grid as ``ltnet train`` does, pre-aligned to
the target with each image held fixed in turn (``ltnet.data.prealign.affine_prealign``), and its labels carried
onto the target's own grid through the pre-alignment alone. Scored (mean Dice over labels) against the target's
reference labels: the network learns the rest of the way from there, so the choice sets where every learned method
starts.

    OMP_NUM_THREADS=1 nice python benchmarks/prealign_direction.py [--no-write]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classical import DATA, DATASETS, Warped, pairs, score  # noqa: E402
from report import machine, write_section  # noqa: E402

from ltnet.data.intensity import normalise  # noqa: E402
from ltnet.data.io import read_image, read_label_map  # noqa: E402
from ltnet.data.prealign import affine_prealign  # noqa: E402
from ltnet.data.prepare import Atlas  # noqa: E402
from ltnet.metrics import labels_with_transform  # noqa: E402

GRIDS = {"hippocampus": (40, 48, 40), "ibsr18": (64, 48, 64)}  # the grids the benchmarks' models were trained on
FIXED = ("atlas", "scan")


def affine_only_dice(data: str) -> dict[str, list[float]]:
    """Mean Dice of each pair of ``data`` with the atlas, then the scan, held fixed: ``{fixed: [dice per pair]}``."""
    dataset = DATASETS[data]
    folder = DATA / dataset.folder
    atlases, dice = {}, {fixed: [] for fixed in FIXED}
    for atlas_name, target_name in sorted(pairs(dataset, 1)):
        image, labels = (folder / "images" / f"{atlas_name}.nii.gz", folder / "labels" / f"{atlas_name}.nii.gz")
        if atlas_name not in atlases:
            atlases[atlas_name] = (Atlas.from_files(image, labels, GRIDS[data], 8), read_label_map(labels).image)
        atlas, atlas_labels = atlases[atlas_name]
        target = normalise(read_image(folder / "images" / f"{target_name}.nii.gz"))
        reference = sitk.Cast(sitk.ReadImage(str(folder / "labels" / f"{target_name}.nii.gz")), sitk.sitkUInt8)
        for fixed in FIXED:
            to_scan = affine_prealign(atlas.image_sitk(), target, fixed=fixed)
            warped = labels_with_transform(atlas_labels, reference, to_scan.GetInverse())
            row = score(Warped(warped, None, 0.0, 0.0), atlas_name, target_name, reference, dataset, fixed, 1)
            dice[fixed].append(float(row["mean_dice"]))
    return dice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    lines = [
        "| data | pairs | atlas fixed (default) | scan fixed | scan - atlas, paired | scan better on |",
        "|---|---|---|---|---|---|",
    ]
    for data in GRIDS:
        dice = affine_only_dice(data)
        difference = np.array(dice["scan"]) - np.array(dice["atlas"])
        lines.append(
            f"| {data} | {len(difference)} | {np.mean(dice['atlas']):.3f} | {np.mean(dice['scan']):.3f} "
            f"| {difference.mean():+.3f} | {int((difference > 0).sum())} of {len(difference)} |"
        )
        print(lines[-1], flush=True)
    text = f"""## Pre-alignment direction (`benchmarks/prealign_direction.py`)

Mean Dice of the atlas labels carried onto each target by the affine pre-alignment alone, with the atlas or the
scan held fixed (`--prealign-fixed`), on the pairs of the accuracy benchmarks (hippocampus: atlas
`hippocampus_007`, 40x48x40 grid; IBSR: every subject as atlas, 4 mm grid 64x48x64). Machine: {machine()}.

{chr(10).join(lines)}

Command: `OMP_NUM_THREADS=1 nice python benchmarks/prealign_direction.py`
"""
    print(text)
    if not args.no_write:
        write_section("prealign-direction", text)


if __name__ == "__main__":
    main()
