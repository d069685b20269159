"""Long trainings for the hippocampus benchmark, with a snapshot every ``--every`` iterations for a Dice curve.

Each stage is ``ltnet train --resume`` up to the next multiple of ``--every`` (the first starts the model),
and the model after each stage is kept as ``<stem>_it<N>.pt`` beside it. Killed, the script resumes
where the last checkpoint stands (``ltnet train`` writes one every 100 iterations). Score the snapshots with
``benchmarks/accuracy.py --model "LABEL=runs/long/<stem>_it2500.pt" ...``.

The staging is exact for recipes without schedules that are shares of the total (the VoxelMorph configuration,
a constant learning rate); a recipe with ``--warmup``/``--coupling`` ramps is trained in one stage to its total
(``--every`` equal to ``--iterations``), with ``--checkpoint-every`` snapshots instead.

    nice -n 19 python benchmarks/long_training.py --stem voxelmorph_seed0 --iterations 10000 -- --voxelmorph --seed 0
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATA, train_command  # noqa: E402

ATLAS = "hippocampus_007"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/long", help="folder for the models and snapshots")
    parser.add_argument("--stem", required=True, help="model name: <work>/<stem>.pt")
    parser.add_argument("--iterations", type=int, default=10000)
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
    for stage in range(args.every, args.iterations + 1, args.every):
        snapshot = work / f"{args.stem}_it{stage}.pt"
        if snapshot.exists():
            continue
        command = train_command(
            out,
            cohort,
            DATA / "images" / f"{ATLAS}.nii.gz",
            DATA / "labels" / f"{ATLAS}.nii.gz",
            stage,
            args.lr,
            ["--teach-stage", "0", *extra],  # the registration alone, grown stage by stage
        )
        if out.exists():
            command.append("--resume")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        shutil.copyfile(out, snapshot)
        print(f"{snapshot}", flush=True)


if __name__ == "__main__":
    main()
