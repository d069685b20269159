"""Accuracy against training iterations: the runs of benchmarks/long_training.py on the hippocampus benchmark.

Each ``--run LABEL=STEM[,STEM...]`` is one configuration trained with one seed per stem (``<work>/<STEM>.pt``
with its snapshots ``<STEM>_it<N>.pt``). Every snapshot at a multiple of ``--every`` up to ``--iterations``
is scored as benchmarks/accuracy.py scores a model: the atlas hippocampus_007 transferred onto the other 59
scans with the QC, Dice against their reference labels on each scan's own grid. Reported: mean Dice against
iterations (the mean over seeds, each seed in brackets), and at ``--iterations`` Dice per label, HD95, folding,
the seed spread and the paired difference of each configuration against ``--baseline``.

Each snapshot's scores are kept in ``<work>/<STEM>_it<N>.scores.csv``, so a rerun scores only new snapshots (and
scores made where the models were trained stand without them); a snapshot not trained yet is left out of the
curve (the final tables need every run at ``--iterations``).

    python benchmarks/long_report.py --run "VoxelMorph=voxelmorph_scan_seed0,voxelmorph_scan_seed1" \\
        --run "LT-Net recipe=ltnet_scan_seed0,ltnet_scan_seed1" --baseline VoxelMorph

Results go to the "long-training" section of docs/BENCHMARKS.md, with the per-target rows of the final
snapshots and the curve under docs/benchmarks/.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATA, mean_over_seeds, seed_table  # noqa: E402
from classical import DATASETS, OUT, Timer, Warped, pairs, read_csv, score, table, write_csv  # noqa: E402
from report import machine, write_section  # noqa: E402

from ltnet.data.io import read_image  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.training import snapshot_path  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

DATASET = DATASETS["hippocampus"]


def snapshot_scores(path: Path, method: str, seed: int, targets: list[tuple[str, str]]) -> list[dict]:
    """One accuracy row per target for the model in ``path`` (cached beside it), with ``seed`` and ``iteration``."""
    cache = path.with_suffix(".scores.csv")
    if cache.exists():
        rows = read_csv(cache)
        if {(r["atlas"], r["target"]) for r in rows} >= set(targets):
            return [{**r, "method": method, "seed": seed} for r in rows if (r["atlas"], r["target"]) in targets]
    model = load_model(path)
    threads = torch.get_num_threads()
    rows = []
    for atlas, name in targets:
        target = read_image(DATA / "images" / f"{name}.nii.gz")
        reference = sitk.Cast(sitk.ReadImage(str(DATA / "labels" / f"{name}.nii.gz")), sitk.sitkUInt8)
        with Timer() as t:
            result = transfer(model, target, "cpu", extras=False)
        warped = Warped(result.labels, result.qc["folded_fraction"], t.wall, t.cpu)
        rows.append({**score(warped, atlas, name, reference, DATASET, method, threads), "iteration": model.iteration})
    write_csv(rows, cache)
    return [{**r, "seed": seed} for r in rows]


def seed_means(rows: list[dict], method: str, iteration: int) -> list[float]:
    """The mean Dice over the targets of each seed of ``method`` at ``iteration`` (none where not scored)."""
    mine = [r for r in rows if r["method"] == method and int(r["iteration"]) == iteration]
    seeds = sorted({r["seed"] for r in mine})
    return [float(np.mean([float(r["mean_dice"]) for r in mine if r["seed"] == s])) for s in seeds]


def curve_table(rows: list[dict], methods: list[str], iterations: list[int]) -> str:
    """Mean Dice over the targets at each iteration: the mean over seeds, each seed's in brackets."""
    lines = [
        "| configuration | " + " | ".join(str(i) for i in iterations) + " |",
        "|---|" + "---|" * len(iterations),
    ]
    for method in methods:
        cells = []
        for iteration in iterations:
            means = seed_means(rows, method, iteration)
            seeds = f" ({', '.join(f'{m:.3f}' for m in means)})" if len(means) > 1 else ""
            cells.append(f"{np.mean(means):.3f}{seeds}" if means else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def against_baseline(rows: list[dict], methods: list[str], baseline: str) -> str:
    """Each configuration against ``baseline`` at the final iteration, paired over targets (each target's Dice the
    mean over seeds), with both seed spreads (std over seeds of the mean Dice)."""

    def per_target(method):
        return {
            (r["atlas"], r["target"]): float(r["mean_dice"]) for r in mean_over_seeds(rows) if r["method"] == method
        }

    def spread(method):
        return float(np.std(seed_means(rows, method, int(rows[0]["iteration"]))))

    theirs = per_target(baseline)
    lines = [
        f"Paired over the targets, each configuration against {baseline} (seed spread: the std over seeds of the mean "
        "Dice):",
        "",
        "| configuration | targets | mean Dice difference | better on | seed spread (this, baseline) |",
        "|---|---|---|---|---|",
    ]
    for method in (m for m in methods if m != baseline):
        mine = per_target(method)
        common = sorted(mine.keys() & theirs.keys())
        difference = np.array([mine[t] - theirs[t] for t in common])
        lines.append(
            f"| {method} | {len(common)} | {difference.mean():+.3f} | {int((difference > 0).sum())} of {len(common)} "
            f"| {spread(method):.3f}, {spread(baseline):.3f} |"
        )
    return "\n".join(lines)


def curve_plot(rows: list[dict], methods: list[str], iterations: list[int], path: Path) -> None:
    """Mean Dice against iterations, one line per configuration (the mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for method in methods:
        scored = {i: seed_means(rows, method, i) for i in iterations}
        points = [(i, np.mean(means)) for i, means in scored.items() if means]
        axes.plot(*zip(*points), marker="o", label=method)
    axes.set(xlabel="training iterations", ylabel="mean Dice, 59 targets", title="MSD hippocampus, one atlas")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/long", help="the folder of benchmarks/long_training.py")
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=STEM[,STEM...]")
    parser.add_argument("--baseline", help="the LABEL the others are compared with (default: the first --run)")
    parser.add_argument("--iterations", type=int, default=10000, help="the runs' total")
    parser.add_argument("--every", type=int, default=2500, help="the snapshots' spacing")
    parser.add_argument("--targets-every", type=int, default=1, help="score every K-th target only (quick checks)")
    parser.add_argument("--no-write", action="store_true", help="print the results only: no docs section, CSV or plot")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="monai")
    work = Path(args.work)
    runs = {label: stems.split(",") for label, stems in (item.split("=", 1) for item in args.run)}
    methods = list(runs)
    baseline = args.baseline or methods[0]
    if baseline not in runs:
        parser.error(f"--baseline {baseline}: not the LABEL of a --run ({', '.join(methods)})")
    targets = sorted(pairs(DATASET, args.targets_every))
    iterations = list(range(args.every, args.iterations + 1, args.every))
    rows = []
    for method, stems in runs.items():
        for seed, stem in enumerate(stems):
            for iteration in iterations:
                path = snapshot_path(work / f"{stem}.pt", iteration)
                if path.exists() or path.with_suffix(".scores.csv").exists():  # scores kept where the model is not
                    rows += snapshot_scores(path, method, seed, targets)
                    print(method, stem, iteration, flush=True)
    final = [r for r in rows if int(r["iteration"]) == args.iterations]
    done = {(r["method"], r["seed"]) for r in final}
    missing = [stem for m, stems in runs.items() for s, stem in enumerate(stems) if (m, s) not in done]
    parts = [curve_table(rows, methods, iterations)]
    if not missing:
        parts += [
            table(mean_over_seeds(final), DATASET, methods),
            seed_table(final, [m for m in methods if len(runs[m]) > 1], qc_below=False),
            against_baseline(final, methods, baseline) if len(methods) > 1 else "",
        ]
        parts = [part for part in parts if part]
    else:
        parts.append(f"Not yet at {args.iterations} iterations: {', '.join(missing)}; the final tables wait for them.")
    if args.no_write:
        print(*parts, sep="\n\n")
        return
    if final:
        write_csv(final, OUT / "long_training.csv")
    curve_plot(rows, methods, iterations, OUT / "long_training.png")
    seeds = ", ".join(f"{m}: `{'`, `'.join(stems)}`" for m, stems in runs.items())
    command = "python benchmarks/long_report.py " + " ".join(f'--run "{item}"' for item in args.run)
    command += f" --baseline {baseline}" if args.baseline else ""
    defaults = {"work": "runs/long", "iterations": 10000, "every": 2500, "targets_every": 1}
    for name, default in defaults.items():  # the options given otherwise, so the command reproduces the section
        if getattr(args, name) != default:
            command += f" --{name.replace('_', '-')} {getattr(args, name)}"
    final_tables = "\n\n".join(parts[1:])
    text = f"""## Accuracy against training iterations, MSD hippocampus (`benchmarks/long_report.py`)

Each configuration trained by `benchmarks/long_training.py` (`ltnet train --snapshot-every {args.every}`, lr 3e-4,
batch 1, on the accuracy benchmark's cohort and atlas), one model per seed ({seeds}), each snapshot scored on
{len(targets)} targets as the accuracy benchmark scores a model (the QC on; seconds per scan from this run).
Per-target rows at {args.iterations} iterations: [`long_training.csv`](benchmarks/long_training.csv).
Machine: {machine()}.

Mean Dice against iterations (the mean over seeds; each seed in brackets):

{parts[0]}

![mean Dice against iterations](benchmarks/long_training.png)

{final_tables}

Command: `{command}`
"""
    write_section("long-training", text)
    print(text)


if __name__ == "__main__":
    main()
