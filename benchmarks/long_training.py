"""Long trainings for the hippocampus benchmark, keeping the model every ``--every`` iterations for a Dice curve.

One ``ltnet train --snapshot-every`` run on the accuracy benchmark's cohort (every scan but the atlas
hippocampus_007): the model is ``<work>/<stem>.pt`` and its snapshots ``<stem>_it2500.pt``, ... beside it, each the
model at that iteration of the same run (schedules that are shares of the run, such as the warm-up, count from its
real total). Killed, it resumes where the last checkpoint stands (``ltnet train`` writes one every 100 iterations).
``--iterations`` is the run's total: a recipe with a teaching stage spends the last ``--teach-stage`` of it there.
Score the snapshots with ``benchmarks/long_report.py``.

    nice python benchmarks/long_training.py --stem voxelmorph_scan_seed0 -- --voxelmorph --prealign-fixed scan --seed 0
    nice python benchmarks/long_training.py --stem ltnet_scan_seed0 -- --prealign-fixed scan --seed 0
"""

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATA, train_command  # noqa: E402

from ltnet.commands.train_recipe import TEACH_STAGE_ITERATIONS  # noqa: E402

ATLAS = "hippocampus_007"


def registration_iterations(total: int, extra: list[str]) -> list[str]:
    """``--iterations`` and ``--teach-stage`` for a run of ``total`` iterations in all: the teaching stage that a new
    run from scratch ends with (unless ``extra`` sets it, or the recipe has none) is part of the total."""
    if "--teach-stage" in extra:
        teach = int(extra[extra.index("--teach-stage") + 1])
    elif any(flag in extra for flag in ("--voxelmorph", "--paper", "--init")):
        teach = 0
    else:
        teach = TEACH_STAGE_ITERATIONS
    return ["--iterations", str(total - teach), "--teach-stage", str(teach)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/long", help="folder for the models and snapshots")
    parser.add_argument("--stem", required=True, help="model name: <work>/<stem>.pt")
    parser.add_argument("--iterations", type=int, default=10000, help="the run's total, teaching stage included")
    parser.add_argument("--every", type=int, default=2500, help="keep a snapshot every N iterations")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --: further ltnet train arguments")
    args = parser.parse_args()
    extra = [a for a in args.extra if a != "--"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cohort = work / "cohort"
    cohort.mkdir(exist_ok=True)
    for scan in sorted((DATA / "images").glob("*.nii.gz")):
        if scan.name != f"{ATLAS}.nii.gz" and not (cohort / scan.name).exists():
            (cohort / scan.name).symlink_to(scan)
    out = work / f"{args.stem}.pt"
    command = train_command(
        out,
        cohort,
        DATA / "images" / f"{ATLAS}.nii.gz",
        DATA / "labels" / f"{ATLAS}.nii.gz",
        args.iterations,
        args.lr,
        [*extra, "--snapshot-every", str(args.every)],
    )
    at = command.index("--iterations")
    command[at : at + 2] = registration_iterations(args.iterations, extra)
    if out.exists():
        command.append("--resume")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(out, flush=True)


if __name__ == "__main__":
    main()
