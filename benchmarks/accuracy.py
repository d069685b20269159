"""One-shot accuracy: no registration, affine only, VoxelMorph, LT-Net, beside elastix and ANTs, on ../shared/data.

Protocol: one atlas (image + labels); every other scan's image is the unlabeled
cohort; their labels are used only for scoring, on each scan's own grid.
``hippocampus``: atlas hippocampus_007 against the other 59 scans; ``ibsr18``: each of
the 4 subjects as atlas in turn against the other 3 (12 pairs, one model per atlas).
The learned methods are trained with the same budget (iterations, cohort,
grid, learning rate) by ``ltnet train`` (LT-Net: the paper's losses;
VoxelMorph: ``--voxelmorph``, the same code with only L_sim + L_smooth).

    python benchmarks/accuracy.py --work runs/accuracy [--iterations 1500]
    python benchmarks/accuracy.py --data ibsr18 --work runs/ibsr --iterations 1000 --grid 64 48 64 --refine-steps 3 20

Trained models are kept in --work (``<method>_<atlas>_seed<N>.pt``) and reused when present;
``--model LABEL=PATH`` scores given models instead (``{atlas}`` in PATH stands for the atlas's name).
Results go to the "accuracy-<data>" section of docs/BENCHMARKS.md, with per-pair rows and a box plot
under docs/benchmarks/; the elastix and ANTs rows are read from the per-pair CSV of
``benchmarks/classical.py --data <data>`` (same atlases and targets) when it exists.
"""

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from classical import (
    DATA as SHARED_DATA,
)  # noqa: E402
from classical import (
    DATASETS,
    OUT,
    Timer,
    Warped,
    box_plot,
    pairs,
    read_csv,
    score,
    subjects,
    table,
    write_csv,
)
from report import machine, mean_std, write_section  # noqa: E402

from ltnet.data.intensity import normalise  # noqa: E402
from ltnet.data.io import read_image, read_label_map  # noqa: E402
from ltnet.data.prealign import affine_prealign  # noqa: E402
from ltnet.metrics import labels_with_transform, labels_without_registration  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

DATA = SHARED_DATA / "hippocampus"
CLASSICAL = ["elastix affine + B-spline", "ANTs SyN (antspyx)"]
TITLES = {"hippocampus": "MSD hippocampus", "ibsr18": "IBSR18 brain MRI"}
RECIPES = {
    "VoxelMorph (L_sim + L_smooth)": ("voxelmorph", ["--voxelmorph"]),
    "LT-Net (ltnet train defaults)": ("ltnet", []),
}


def train_command(
    out: Path,
    cohort: Path,
    atlas_image: Path,
    atlas_labels: Path,
    iterations: int,
    lr: float,
    extra: list[str],
    device: str = "cpu",
    checkpoint_every: int = 100,
) -> list[str]:
    """The ``ltnet train`` command line of one benchmark model (JSON-lines progress)."""
    return [
        sys.executable,
        "-m",
        "ltnet",
        "train",
        "--atlas-image",
        str(atlas_image),
        "--atlas-labels",
        str(atlas_labels),
        "--images",
        str(cohort),
        "--out",
        str(out),
        "--iterations",
        str(iterations),
        "--device",
        device,
        "--progress",
        "jsonl",
        "--checkpoint-every",
        str(checkpoint_every),
        "--lr",
        str(lr),
        *extra,
    ]


def link_cohort(scans: list[Path], folder: Path) -> Path:
    """``folder`` holding a link to each scan (the unlabeled cohort ``ltnet train --images`` reads); existing links are
    kept."""
    folder.mkdir(parents=True, exist_ok=True)
    for scan in scans:
        if not (folder / scan.name).exists():
            os.symlink(scan, folder / scan.name)
    return folder


def atlas_cohort(dataset, atlas: str, work: Path) -> Path:
    """The unlabeled cohort of ``atlas``: links to every other subject's image in ``work/cohort_<atlas>``."""
    images = SHARED_DATA / dataset.folder / "images"
    return link_cohort([images / f"{s}.nii.gz" for s in subjects(dataset) if s != atlas], work / f"cohort_{atlas}")


def train(
    out: Path, cohort: Path, atlas_image: Path, atlas_labels: Path, iterations: int, lr: float, extra: list[str]
) -> Path:
    if out.exists():
        return out
    subprocess.run(
        train_command(out, cohort, atlas_image, atlas_labels, iterations, lr, extra),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(DATASETS), default="hippocampus")
    parser.add_argument("--work", default="runs/accuracy", help="folder for the trained models")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument(
        "--lr", type=float, default=3e-4, help="learning rate (3e-4: the CPU budget is far below the paper's)"
    )
    parser.add_argument(
        "--grid",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="network grid for the trainings (default: ltnet train's)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LABEL=PATH[,PATH...]",
        help="score this trained model under LABEL (repeatable); several paths are the same recipe trained with "
        "different seeds; {atlas} in a path is the atlas's name; without any, trains and scores VoxelMorph "
        "and LT-Net (--seeds of each) for every atlas",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="without --model: train each learned method with seeds 0..N-1"
    )
    parser.add_argument("--note", default="", help="a sentence on how the given models were trained, for the docs")
    parser.add_argument("--every", type=int, default=1, help="score every K-th target only (quick checks)")
    parser.add_argument(
        "--refine-steps",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also score LT-Net with N steps of test-time refinement (one row per N given)",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the results only (tuning trials): no docs section, CSV or plot"
    )
    args = parser.parse_args()
    warnings.filterwarnings(
        "ignore", module="monai"
    )  # as the ltnet command does: MONAI's deprecation notes, once per refinement step
    dataset = DATASETS[args.data]
    folder = SHARED_DATA / dataset.folder
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    scored = sorted(pairs(dataset, args.every))
    atlases = list(dict.fromkeys(a for a, _ in scored))
    image, labels = (
        (lambda name: folder / "images" / f"{name}.nii.gz"),
        (lambda name: folder / "labels" / f"{name}.nii.gz"),
    )

    def models_of(atlas: str) -> dict[str, list[Path]]:
        if args.model:
            return {
                label: [Path(p.format(atlas=atlas)) for p in paths.split(",")]
                for label, paths in (item.split("=", 1) for item in args.model)
            }
        cohort = atlas_cohort(dataset, atlas, work)
        grid = ["--grid", *map(str, args.grid)] if args.grid else []
        return {
            label: [
                train(
                    work / f"{stem}_{atlas}_seed{seed}.pt",
                    cohort,
                    image(atlas),
                    labels(atlas),
                    args.iterations,
                    args.lr,
                    [*extra, *grid, "--seed", str(seed)],
                )
                for seed in range(args.seeds)
            ]
            for label, (stem, extra) in RECIPES.items()
        }

    threads = torch.get_num_threads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(
        threads
    )  # the pre-alignment too, so CPU seconds compare with elastix's at the same count
    rows, qc_rows, refined_qc_rows, loaded = [], [], {}, {}
    for atlas in atlases:
        loaded = {name: [load_model(path) for path in paths] for name, paths in models_of(atlas).items()}
        ltnet_name = next(name for name in loaded if name.startswith("LT-Net"))
        learned = {name: (seeds, 0) for name, seeds in loaded.items()}
        for steps in args.refine_steps:
            learned[f"{ltnet_name} + refinement ({steps} steps)"] = (loaded[ltnet_name], steps)
        atlas_labels = read_label_map(labels(atlas)).image
        first_atlas = next(iter(loaded.values()))[0].atlas  # "Affine only" is its pre-alignment alone
        atlas_on_grid = first_atlas.image_sitk()
        for name in (t for a, t in scored if a == atlas):
            target = read_image(image(name))
            reference = sitk.Cast(sitk.ReadImage(str(labels(name))), sitk.sitkUInt8)

            def add(method: str, warped: Warped, seed="", qc=None) -> None:
                qc_columns = (
                    {"qc_score": qc["score"], "qc_verdict": qc["verdict"]} if qc else {"qc_score": "", "qc_verdict": ""}
                )
                # called only within this iteration, so the pair it scores is always the current one
                scored_row = score(warped, atlas, name, reference, dataset, method, threads)  # noqa: B023
                rows.append({**scored_row, "seed": seed, **qc_columns})

            with Timer() as t:
                warped_labels = labels_without_registration(atlas_labels, reference)
            add("No registration", Warped(warped_labels, None, t.wall, t.cpu))
            with Timer() as t:
                to_scan = affine_prealign(atlas_on_grid, normalise(target), fixed=first_atlas.prealign_fixed)
                warped_labels = labels_with_transform(atlas_labels, reference, to_scan.GetInverse())
            add("Affine only", Warped(warped_labels, None, t.wall, t.cpu))
            for method, (seeds, steps) in learned.items():
                for seed, model in enumerate(seeds):
                    with Timer() as t:
                        result = transfer(model, target, "cpu", refine_steps=steps, extras=False)
                    add(method, Warped(result.labels, result.qc["folded_fraction"], t.wall, t.cpu), seed, result.qc)
                    if method == ltnet_name and seed == 0:
                        qc_rows.append((result.qc, rows[-1]["mean_dice"]))
                    elif steps and seed == 0:
                        refined_qc_rows.setdefault(method, []).append((result.qc, rows[-1]["mean_dice"]))
            print(
                atlas,
                name,
                {
                    f"{r['method']} {r['seed']}": r["mean_dice"]
                    for r in rows
                    if (r["atlas"], r["target"]) == (atlas, name)
                },
                flush=True,
            )

    per_seed = rows
    seed_text = seed_table(per_seed, [m for m, (seeds, _) in learned.items() if len(seeds) > 1])
    rows = mean_over_seeds(per_seed) + classical_rows(args.data, set(scored))
    methods = [
        "No registration",
        "Affine only",
        *[m for m in CLASSICAL if any(r["method"] == m for r in rows)],
        *learned,
    ]
    refined = [m for m in learned if m not in loaded]
    other_ltnets = [m for m in loaded if m.startswith("LT-Net") and m != ltnet_name]
    comparisons = "\n\n".join(
        [paired_comparison(rows, ltnet_name, [m for m in methods if m != ltnet_name])]
        + [paired_comparison(rows, m, CLASSICAL) for m in other_ltnets]
        + [paired_comparison(rows, m, [*CLASSICAL, *[v for v in loaded if v != ltnet_name]]) for m in refined]
    )
    if args.no_write:
        print(table(rows, dataset, methods), seed_text, comparisons, refined_qc_validation(refined_qc_rows), sep="\n\n")
        return
    write_csv(per_seed, OUT / f"accuracy_{args.data}.csv")
    title = TITLES[args.data]
    box_plot(
        rows, methods, OUT / f"accuracy_{args.data}.png", f"One-shot label transfer, {title}: mean Dice per target"
    )
    iterations = {name: seeds[0].iteration for name, seeds in loaded.items()}
    grid = next(iter(loaded.values()))[0].grid
    protocol = (
        f"Atlas `{atlases[0]}`; {len(scored)} target scans"
        if len(atlases) == 1
        else f"Each subject as atlas in turn, one model per atlas and method; {len(scored)} atlas -> target pairs"
    )
    text = f"""## Accuracy, one-shot, {title} (`benchmarks/accuracy.py --data {args.data}`)

{protocol}, scored on the targets' own grids against their reference labels
(Dice mean ± std over pairs; HD95 = 95th-percentile symmetric surface distance, mean over labels).
Learned models trained by `ltnet train` on the same cohort with the same budget: {iterations} iterations,
Adam lr {args.lr:g}, batch 1, network grid {grid.size} at {grid.spacing:.2f} mm, affine pre-alignment on.
Seconds per scan, wall (CPU): pre-alignment, inference, the QC and mapping the labels back (not reading the file, \
not the `--extras` images).
The elastix and ANTs rows are the same pairs from `benchmarks/classical.py` \
([`classical_{args.data}.csv`](benchmarks/classical_{args.data}.csv),
timed there on a shared machine: their CPU seconds are the fairer cost); every other row was measured in this run.
{args.note}
Per-pair results: [`accuracy_{args.data}.csv`](benchmarks/accuracy_{args.data}.csv). Machine: {machine()}.

{table(rows, dataset, methods)}

![mean Dice per target](benchmarks/accuracy_{args.data}.png)

{seed_text}

{comparisons}

{qc_validation(qc_rows, held_out_halves=args.data == "hippocampus")}

{refined_qc_validation(refined_qc_rows)}
"""
    write_section(f"accuracy-{args.data}", text)
    print(text)


def mean_over_seeds(rows: list[dict]) -> list[dict]:
    """One row per (target, method): each number the mean over the method's seeds (models trained with different
    seeds)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["atlas"], row["target"], row["method"]), []).append(row)
    averaged = []
    for group in groups.values():
        row = {key: value for key, value in group[0].items() if key != "seed"}
        for key, value in row.items():
            if key not in ("atlas", "target", "method", "threads", "qc_verdict") and value != "":
                row[key] = round(float(np.mean([float(r[key]) for r in group])), 6)
        averaged.append(row)
    return averaged


def seed_table(rows: list[dict], methods: list[str], qc_below: bool = True) -> str:
    """Mean Dice over the targets of each seed of each method, and the spread over seeds (``qc_below``: a QC
    validation of seed 0 follows)."""
    if not methods:
        return ""
    seeds = sorted({r["seed"] for r in rows if r["method"] in methods})
    lines = [
        "Training seeds: mean Dice over the targets of each model, and the mean ± std over seeds "
        "(the rows above average each",
        "target over the seeds" + ("; the QC validation below uses seed 0)." if qc_below else ")."),
        "",
        "| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std over seeds |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for method in methods:
        means = [
            np.mean([float(r["mean_dice"]) for r in rows if r["method"] == method and r["seed"] == s]) for s in seeds
        ]
        lines.append(f"| {method} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {mean_std(means)} |")
    return "\n".join(lines)


def classical_rows(data: str, scored: set[tuple[str, str]]) -> list[dict]:
    """The elastix and ANTs rows of ``benchmarks/classical.py`` for these (atlas, target) pairs (none if it has not
    been run)."""
    path = OUT / f"classical_{data}.csv"
    if not path.exists():
        return []
    return [r for r in read_csv(path) if r["method"] in CLASSICAL and (r["atlas"], r["target"]) in scored]


def rows_by_pair(rows: list[dict], method: str) -> dict[tuple[str, str], dict]:
    """``method``'s rows keyed by their (atlas, target) pair."""
    return {(r["atlas"], r["target"]): r for r in rows if r["method"] == method}


def paired_comparison(rows: list[dict], method: str, others: list[str]) -> str:
    """One line per other method: paired mean Dice difference over the pairs both scored, wins, and the time ratio."""
    mine = rows_by_pair(rows, method)
    lines = [
        f"Paired over atlas -> target pairs, {method} against each method:",
        "",
        "| against | pairs | mean Dice difference | better on | CPU seconds ratio (other / this) |",
        "|---|---|---|---|---|",
    ]
    for other in others:
        theirs = rows_by_pair(rows, other)
        common = sorted(mine.keys() & theirs.keys())
        if not common:
            continue
        difference = np.array([float(mine[t]["mean_dice"]) - float(theirs[t]["mean_dice"]) for t in common])
        seconds = lambda rs, common=common: np.mean([float(rs[t]["seconds_cpu"]) for t in common])  # noqa: E731
        lines.append(
            f"| {other} | {len(common)} | {difference.mean():+.3f} | {int((difference > 0).sum())} of {len(common)} "
            f"| {seconds(theirs) / seconds(mine):.2f} |"
        )
    return "\n".join(lines)


def spearman(a, b) -> float:
    """Spearman rank correlation (no ties expected in continuous measures)."""
    ranks = lambda x: np.argsort(np.argsort(np.asarray(x)))  # noqa: E731
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def qc_validation(rows, held_out_halves: bool) -> str:
    """How well each QC measure and the score rank the LT-Net transfers by their true mean Dice."""
    true = [d for _, d in rows]
    measures = {
        "score": [q["score"] for q, _ in rows],
        "label cycle Dice": [q["label_cycle_dice_mean"] for q, _ in rows],
        "LNCC over the transferred labels": [q["label_lncc"] for q, _ in rows],
        "LNCC over the whole grid": [q["lncc"] for q, _ in rows],
        "- image cycle error": [-q["image_cycle_error"] for q, _ in rows],
        "- inverse consistency (mm)": [-q["inverse_consistency_mm"] for q, _ in rows],
    }
    lines = ["| QC measure | Spearman with true Dice |", "|---|---|"]
    lines += [f"| {name} | {spearman(values, true):+.2f} |" for name, values in measures.items()]
    # the image match over the labels was chosen as the score on the even-numbered hippocampus targets (Spearman 0.55
    # there, docs/TUNING.md); the odd ones are held out
    held_out = (
        f"{spearman(measures['score'][1::2], true[1::2]):+.2f} "
        f"over the {len(true[1::2])} held-out (odd-numbered) targets"
        if held_out_halves
        else "chosen on hippocampus targets, so every pair here is held out"
    )
    worst = np.argsort(true)[: max(1, len(true) // 10)]
    flagged = sum(rows[i][0]["verdict"] != "OK" for i in worst)
    verdicts = {v: sum(q["verdict"] == v for q, _ in rows) for v in ("OK", "check", "likely failed")}
    worst_text = (
        f"Of the worst 10 % by true Dice ({len(worst)} transfer{'s' if len(worst) > 1 else ''}, "
        f"Dice {np.max([true[i] for i in worst]):.2f} or less), the verdict flags {flagged} (check or likely failed)."
    )
    return (
        "QC validation (LT-Net transfers): Spearman correlation between each measure and the true mean Dice, over all "
        f"{len(rows)} pairs (score: {held_out}).\n\n" + "\n".join(lines) + f"\n\nVerdicts: {verdicts}. {worst_text}"
    )


def refined_qc_validation(rows_by_method: dict[str, list]) -> str:
    """One line per refined row (seed 0): how its score, which reads G_F's own match (ltnet.qc), ranks and flags
    them."""
    lines = []
    for method, rows in rows_by_method.items():
        true = [d for _, d in rows]
        worst = np.argsort(true)[: max(1, len(true) // 10)]
        verdicts = {v: sum(q["verdict"] == v for q, _ in rows) for v in ("OK", "check", "likely failed")}
        lines.append(
            f"- {method}, seed 0: Spearman {spearman([q['score'] for q, _ in rows], true):+.2f} "
            "between the score and the true mean Dice (the refined field's own LNCC over the labels: "
            f"{spearman([q['label_lncc'] for q, _ in rows], true):+.2f}); "
            f"verdicts {verdicts}; of the worst {len(worst)} by true Dice, "
            f"{sum(rows[i][0]['verdict'] != 'OK' for i in worst)} flagged."
        )
    return "QC of the refined transfers:\n" + "\n".join(lines) if lines else ""


if __name__ == "__main__":
    main()
