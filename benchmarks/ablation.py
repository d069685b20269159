"""Ablation on ../shared/data/hippocampus: LT-Net with one loss term switched off (or on) at a time.

Same protocol and cohort as ``benchmarks/accuracy.py`` (atlas ``hippocampus_007``;
the other scans as the unlabeled cohort; their labels only for scoring, on each
scan's own grid). Every variant is ``ltnet train`` with the same recipe (default:
``ltnet train``'s defaults, six terms), budget and seed, plus ``--without TERM`` or, for
the adversarial term the default leaves out, ``--adversarial``; the VoxelMorph
configuration of the paper's ablation is the recipe with every term but ``L_sim``
and ``L_smooth`` off.

    python benchmarks/ablation.py --work runs/ablation [--iterations 1500] [--recipe "..."] [--parallel 2]

Trained models are kept in --work and reused (an unfinished one resumes). ``--parallel N`` trains N variants at
once, one thread each. Results go to the "ablation-hippocampus" section of
docs/BENCHMARKS.md.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATA, link_cohort, train_command  # noqa: E402
from classical import DATASETS, OUT, Timer, Warped, score, table, write_csv  # noqa: E402
from report import machine, write_section  # noqa: E402

from ltnet.data.io import read_image  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

ATLAS = "hippocampus_007"
OFF = {
    "cyc": "L_cyc",
    "trans": "L_trans",
    "anatomy_cyc": "L_anatomy_cyc",
    "diff_cyc": "L_diff_cyc",
    "smooth": "L_smooth",
}


def variants(recipe: list[str]) -> dict[str, list[str]]:
    """Label -> ``ltnet train`` arguments, the recipe first (the other rows are compared with it)."""
    found = {"recipe": recipe, "with L_GAN (--adversarial)": [*recipe, "--adversarial"]}
    for term, name in OFF.items():
        found[f"without {name}"] = [*recipe, "--without", term]
    found["L_sim + L_smooth only (VoxelMorph configuration, λ2 = 3)"] = ["--voxelmorph", "--lambda2", "3"]
    return found


def train_all(
    work: Path, cohort: Path, runs: dict[str, list[str]], iterations: int, lr: float, parallel: int
) -> dict[str, Path]:
    """Train every variant not yet in ``work``, ``parallel`` at a time (one thread each); label -> model path."""
    paths = {label: work / (re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") + ".pt") for label in runs}
    pending = [label for label in runs if not paths[label].exists() or load_model(paths[label]).iteration < iterations]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"} if parallel > 1 else None
    while pending:
        batch, pending = pending[:parallel], pending[parallel:]
        processes = []
        for label in batch:
            resume = ["--resume"] if paths[label].exists() else []  # an interrupted run continues from its checkpoint
            command = train_command(
                paths[label],
                cohort,
                DATA / "images" / f"{ATLAS}.nii.gz",
                DATA / "labels" / f"{ATLAS}.nii.gz",
                iterations,
                lr,
                ["--seed", "0", *runs[label], *resume],
            )
            log = open(paths[label].with_suffix(".log"), "a")
            processes.append(
                (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment), log, label)
            )
        for process, log, label in processes:
            if process.wait() != 0:
                raise SystemExit(f"training {label} failed; see {paths[label].with_suffix('.log')}")
            log.close()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/ablation")
    parser.add_argument("--cohort", help="folder of the unlabeled cohort (default: every scan but the atlas)")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--recipe", default="", help="the ltnet train options of the full recipe, as one string")
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    scans = sorted(p for p in (DATA / "images").glob("*.nii.gz") if p.name != f"{ATLAS}.nii.gz")
    cohort = Path(args.cohort) if args.cohort else link_cohort(scans, work / "cohort")
    runs = variants(shlex.split(args.recipe))
    models = {
        label: load_model(path)
        for label, path in train_all(work, cohort, runs, args.iterations, args.lr, args.parallel).items()
    }

    dataset = DATASETS["hippocampus"]
    threads = torch.get_num_threads()
    rows = []
    for scan in scans:
        target = read_image(scan)
        reference = sitk.ReadImage(str(DATA / "labels" / scan.name))
        for label, model in models.items():
            with Timer() as t:
                result = transfer(model, target, "cpu", extras=False)
            rows.append(
                score(
                    Warped(result.labels, result.qc["folded_fraction"], t.wall, t.cpu),
                    ATLAS,
                    scan.name,
                    reference,
                    dataset,
                    label,
                    threads,
                )
            )
        print(scan.name, flush=True)
    write_csv(rows, OUT / "ablation_hippocampus.csv")
    recipe = {r["target"]: r["mean_dice"] for r in rows if r["method"] == "recipe"}
    changes = [
        f"- {label}: {np.mean([r['mean_dice'] - recipe[r['target']] for r in rows if r['method'] == label]):+.3f} "
        "mean Dice (better on "
        f"{sum(r['mean_dice'] > recipe[r['target']] for r in rows if r['method'] == label)} of {len(recipe)} targets)"
        for label in models
        if label != "recipe"
    ]
    recipe_options = args.recipe or "(defaults: --warmup 0.5 --coupling 0.1, six terms)"
    text = f"""## Ablation, one-shot, MSD hippocampus (`benchmarks/ablation.py`)

LT-Net with one loss term switched off at a time (`ltnet train --without TERM`), or the adversarial term the recipe
leaves out switched on, every variant trained with the same budget and seed: {args.iterations} iterations, \
Adam lr {args.lr:g},
batch 1, cohort `{cohort}` ({len(list(cohort.iterdir()))} scans), recipe `ltnet train {recipe_options}`. \
Atlas `{ATLAS}`; {len(scans)} targets scored on their own grids
(Dice mean ± std over targets; HD95 and the rest as in the accuracy table; per-target rows in
[`ablation_hippocampus.csv`](benchmarks/ablation_hippocampus.csv)). Machine: {machine()}.

{table(rows, dataset, list(models))}

Paired change against the recipe, per target:

{chr(10).join(changes)}
"""
    write_section("ablation-hippocampus", text)
    print(text)


if __name__ == "__main__":
    main()
