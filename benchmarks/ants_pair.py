"""ANTs SyN for one atlas -> target pair; run by ``classical.py`` in the benchmark venv that holds ``antspyx``.

    .venv-bench/bin/python benchmarks/ants_pair.py FIXED MOVING MOVING_LABELS OUT_LABELS OUT_JSON \\
        [--transform SyN] [--options JSON]

FIXED is the target image, MOVING the atlas image. Writes the atlas labels warped onto the
target grid (genericLabel interpolation) and a JSON with the wall and CPU seconds of
registration + label warp and the share of target voxels whose Jacobian determinant is <= 0.
Threads come from ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``. Kept apart from ``classical.py``
because antspyx pins a numpy older than the project's.
"""

import argparse
import json
import time

import ants
import numpy as np


def register(fixed, moving, moving_labels, transform: str, seed: int, options: dict):
    """SyN registration and the atlas labels on the fixed grid; returns (labels, forward transforms)."""
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    registration = ants.registration(
        fixed=fixed, moving=moving, type_of_transform=transform, random_seed=seed, **options
    )
    labels = ants.apply_transforms(
        fixed=fixed, moving=moving_labels, transformlist=registration["fwdtransforms"], interpolator="genericLabel"
    )
    return labels, registration["fwdtransforms"]


def folded_fraction(fixed, transforms) -> float:
    """Share of fixed-grid voxels where the deformable warp's Jacobian determinant is <= 0 (the affine part has
    det > 0)."""
    warp = next(t for t in transforms if t.endswith((".nii.gz", ".nii")))
    determinant = ants.create_jacobian_determinant_image(fixed, warp, do_log=False).numpy()
    return float(np.mean(determinant <= 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("fixed", "moving", "moving_labels", "out_labels", "out_json"):
        parser.add_argument(name)
    parser.add_argument("--transform", default="SyN")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--options", default="{}", help="JSON: further keyword arguments for ants.registration")
    args = parser.parse_args()
    fixed, moving = ants.image_read(args.fixed), ants.image_read(args.moving)
    moving_labels = ants.image_read(args.moving_labels, pixeltype="unsigned int")
    wall, cpu = time.perf_counter(), time.process_time()
    labels, transforms = register(fixed, moving, moving_labels, args.transform, args.seed, json.loads(args.options))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ants.image_write(labels, args.out_labels)
    result = {"seconds_wall": wall, "seconds_cpu": cpu, "folded_fraction": folded_fraction(fixed, transforms)}
    with open(args.out_json, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
