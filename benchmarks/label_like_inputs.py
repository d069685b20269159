"""How far real scans are from the label-map check of ``ltnet.input_checks`` (which refuses label maps as images).

For every image of ../shared/data (hippocampus, ibsr18), their label maps, and the bundled sample: the voxel type,
the number of distinct values, whether the check refuses it, and how long the check took. Prints a Markdown table.

    python benchmarks/label_like_inputs.py
"""

import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ltnet import sample  # noqa: E402
from ltnet.input_checks import MAX_LABEL_VALUES, label_like_reason  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    groups = {
        f"{name} {kind}": sorted((DATA / name / kind).glob("*.nii.gz"))
        for name in ("hippocampus", "ibsr18")
        for kind in ("images", "labels")
    }
    groups["bundled sample images"] = [*sample.scan_paths(), sample.atlas_image_path()]
    print(
        f"| files | n | voxel types | distinct values (min-max) | refused (limit {MAX_LABEL_VALUES}) | check ms (max) |"
    )
    print("|---|---|---|---|---|---|")
    for group, paths in groups.items():
        if not paths:
            continue
        types, counts, refused, times = set(), [], 0, []
        for path in paths:
            image = sitk.ReadImage(str(path))
            types.add(image.GetPixelIDTypeAsString())
            counts.append(len(np.unique(sitk.GetArrayViewFromImage(image))))
            started = time.perf_counter()
            refused += label_like_reason(path, image) is not None
            times.append(1000 * (time.perf_counter() - started))
        print(
            f"| {group} | {len(paths)} | {', '.join(sorted(types))} | {min(counts)}-{max(counts)} | {refused} | "
            f"{max(times):.1f} |"
        )


if __name__ == "__main__":
    main()
