"""Distillation against its source model, on the hippocampus or the IBSR brains (needs ../shared/data).

Protocol as ``benchmarks/accuracy.py``: the unlabeled cohort of an atlas is every other subject's image, and the
targets are those same scans, scored on each scan's own grid against reference labels no method saw.

- ``hippocampus``: atlas hippocampus_007, 59 targets. The source model is the bundled demo model by default
  (trained on this atlas with ``--prealign-fixed scan``; ``benchmarks/build_demo_model.py``).
- ``ibsr18``: each of the 4 subjects as atlas in turn against the other 3 (12 pairs). Each atlas's source model is
  trained here with the accuracy benchmark's IBSR recipe (``ltnet train --lambda2 1 --grid 64 48 64``, 1000
  iterations, lr 3e-4, no teaching stage, seed 0).

``ltnet distill`` trains a segmentation network on the source model's transfers to the cohort, once per seed, and
the script scores the source model (with and without ``--refine 3``) and the distilled models, and the reference
labels carried onto the network grid and back (``through_the_grid``: how well any segmenter on that grid could do).

    python benchmarks/distill.py --work runs/distill [--data hippocampus] [--source MODEL] [--seeds 2]
    python benchmarks/distill.py --data ibsr18 --work runs/distill_ibsr18 [--seeds 2]
    python benchmarks/distill.py --data ibsr18 --work runs/distill_ibsr18 --atlas IBSR_03 --no-write &  # in parallel

Every model is kept in --work and resumed when present (the IBSR source models too), so an interrupted run
continues where it stopped; each atlas's scores are kept there too (``scores_<atlas>_<refine>_<iterations>.csv``), so a
run without ``--atlas`` after the parallel ones only writes the results. Results go to the "distill" (hippocampus) or
"distill-ibsr18" section of docs/BENCHMARKS.md and ``docs/benchmarks/distill[_ibsr18].csv``.
"""

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import (  # noqa: E402
    TITLES,
    atlas_cohort,
    mean_over_seeds,
    paired_comparison,
    rows_by_pair,
    seed_table,
    train_command,
)
from classical import DATA, DATASETS, OUT, Timer, Warped, pairs, read_csv, score, table, write_csv  # noqa: E402
from report import machine, write_section  # noqa: E402

from ltnet import sample  # noqa: E402
from ltnet.data.grid import NetworkGrid, resample  # noqa: E402
from ltnet.data.io import read_image  # noqa: E402
from ltnet.data.prepare import prepare_scan  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.segmenter import labels_on_target  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

#: The reference labels carried onto the source model's network grid, or one twice as fine, and back
#: (``through_the_grid``)
CEILING = "reference labels through the network grid"
CEILING_FINER = "reference labels through a grid twice as fine"

#: ibsr18: each atlas's source model, the accuracy benchmark's best learned IBSR row ("LT-Net (--lambda2 1)")
IBSR_SOURCE_ITERATIONS, IBSR_SOURCE_LR = 1000, 3e-4
IBSR_SOURCE_FLAGS = ["--lambda2", "1", "--grid", "64", "48", "64", "--teach-stage", "0", "--seed", "0"]


def resumed(command: list[str], out: Path) -> None:
    """Run an ``ltnet train`` or ``ltnet distill`` command line, with ``--resume`` when ``out`` exists (a finished
    model is left as it is)."""
    subprocess.run([*command, *(["--resume"] if out.exists() else [])], check=True, stdout=subprocess.DEVNULL)


def distill_command(
    source: Path, cohort: Path, out: Path, iterations: int, refine: int, seed: int, device: str
) -> list[str]:
    """The ``ltnet distill`` command line."""
    return [
        *[sys.executable, "-m", "ltnet", "distill", "--model", str(source), "--images", str(cohort)],
        *["--out", str(out), "--iterations", str(iterations), "--refine", str(refine), "--seed", str(seed)],
        *["--device", device, "--progress", "jsonl"],
    ]


def source_model(
    data: str, atlas: str, cohort: Path, work: Path, given: str | None, device: str, iterations: int
) -> Path:
    """The model distilled for ``atlas``: ``given`` (hippocampus: the bundled demo model by default), or for the
    IBSR atlases one trained (and resumed) in ``work``."""
    if data == "hippocampus":
        return Path(given or sample.demo_model_path())
    folder = DATA / DATASETS[data].folder
    out = work / f"source_{atlas}.pt"
    command = train_command(
        out,
        cohort,
        folder / "images" / f"{atlas}.nii.gz",
        folder / "labels" / f"{atlas}.nii.gz",
        iterations,
        IBSR_SOURCE_LR,
        IBSR_SOURCE_FLAGS,
        device,
    )
    if not (out.exists() and load_model(out).iteration >= iterations):
        resumed(command, out)
    return out


def through_the_grid(
    values: list[int], target: sitk.Image, reference: sitk.Image, grid: NetworkGrid, to_scan: sitk.Transform
) -> sitk.Image:
    """``reference`` (``target``'s label map, label ``values`` with the background first) carried onto ``grid`` (a
    model's network grid, or a finer one over the same box) and back as a segmenter's labels are
    (``ltnet.segmenter.labels_on_target``), through the model's pre-alignment ``to_scan`` (grid points -> ``target``
    points): the labels of a segmenter on that grid that gave each voxel its true share of every
    label, about the best any segmenter there can do. Each label's mask is smoothed to about one grid voxel
    (Gaussian, FWHM one grid spacing) before the grid samples it, so a voxel gets its share, not the label at its
    centre."""
    sigma = grid.spacing / (2 * np.sqrt(2 * np.log(2)))
    shares = [
        resample(
            sitk.SmoothingRecursiveGaussian(sitk.Cast(reference == value, sitk.sitkFloat32), sigma),
            grid.reference(),
            to_scan,
            default=1.0 if k == 0 else 0.0,
        )
        for k, value in enumerate(values)
    ]
    probabilities = torch.from_numpy(np.stack([sitk.GetArrayFromImage(share) for share in shares]))
    return labels_on_target(probabilities, values, grid, target, to_scan.GetInverse())


def ceiling_text(rows: list[dict], refined: str, spacings: set[float], dataset) -> str:
    """What the grids' ceilings (``through_the_grid``) say, for the text: the network grid's mean Dice per label and
    HD95, how often the refined registration, which labels at the atlas's resolution, exceeds it, and the ceiling of a
    grid twice as fine."""
    mine, finer, theirs = (rows_by_pair(rows, method) for method in (CEILING, CEILING_FINER, refined))
    above = sum(float(theirs[k]["mean_dice"]) > float(mine[k]["mean_dice"]) for k in mine if k in theirs)
    mean = lambda key, of=mine: np.mean([float(r[key]) for r in of.values()])  # noqa: E731
    per_label = ", ".join(f"{name} {mean(f'dice_{name}'):.3f}" for name in dataset.labels.values())
    grids = " or ".join(f"{spacing:.3g}" for spacing in sorted(spacings))
    halves = " or ".join(f"{spacing / 2:.3g}" for spacing in sorted(spacings))
    return (
        f"A segmenter labels the scan at the network grid, {grids} mm here. The reference labels themselves, carried "
        "onto that grid and back as a segmenter's are (each grid voxel given its share of every label: "
        f"`through_the_grid` in the script), score {mean('mean_dice'):.3f} mean Dice ({per_label}), about the best a "
        f"segmenter on this grid can do; their HD95, {mean('hd95_mm'):.2f} mm, is what the grid alone costs at the "
        "boundaries, where thin structures vanish. The registration with refinement, whose labels follow the field at "
        f"the atlas's own resolution, scores above that on {above} of {len(mine)} pairs. Through a grid twice as fine "
        f"({halves} mm) the reference labels score {mean('mean_dice', finer):.3f} (HD95 "
        f"{mean('hd95_mm', finer):.2f} mm)."
    )


def folded(model, qc: dict) -> float | None:
    """The folded share of the field the labels followed; None for a segmenter's labels, which follow no field."""
    return None if model.segmenter is not None else qc["folded_fraction"]


def distilling_cost(distillations: list[dict]) -> str:
    """The CPU time of the distillations (``ltnet distill`` records it in each model, over every resumed run), for
    the text."""
    recorded = [d["cpu_seconds"] for d in distillations if "cpu_seconds" in d]
    if not recorded:
        return "CPU time not recorded (models written by an earlier `ltnet distill`)"
    text = f"{np.mean(recorded) / 60:.0f} CPU min per distillation (making its examples included)"
    if len(recorded) < len(distillations):
        text += f", over the {len(recorded)} of {len(distillations)} that recorded it"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["hippocampus", "ibsr18"], default="hippocampus")
    parser.add_argument("--work", default="runs/distill")
    parser.add_argument("--source", help="hippocampus: the model to distil (default: the bundled demo model)")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument(
        "--source-iterations", type=int, default=IBSR_SOURCE_ITERATIONS, help="ibsr18: the source models' training"
    )
    parser.add_argument("--refine", type=int, default=3, help="ltnet distill --refine: the teaching transfers'")
    parser.add_argument("--seeds", type=int, default=2, help="distil with seeds 0..N-1")
    parser.add_argument("--every", type=int, default=1, help="score every K-th target only (quick checks)")
    parser.add_argument(
        "--atlas",
        action="append",
        help="ibsr18: only this atlas (repeatable; to train atlases in parallel processes, with --no-write)",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only: no docs section or CSV")
    parser.add_argument(
        "--device", default="cpu", help="where the models train and transfer (default cpu; cuda: the GPU's precision)"
    )
    args = parser.parse_args()
    if args.source and args.data != "hippocampus":
        parser.error("--source is for --data hippocampus (the IBSR source models are trained here)")
    warnings.filterwarnings("ignore", module="monai")
    dataset = DATASETS[args.data]
    folder = DATA / dataset.folder
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    scored = [(a, t) for a, t in sorted(pairs(dataset, args.every)) if not args.atlas or a in args.atlas]
    if not scored:
        parser.error(f"--atlas {' '.join(args.atlas)}: not an atlas of {args.data}")
    threads = torch.get_num_threads()
    distilled_name = f"distilled (--refine {args.refine}, {args.iterations} iterations)"
    rows, distillations, cohort_sizes, sources = [], [], set(), {}
    for atlas in dict.fromkeys(a for a, _ in scored):
        cohort = atlas_cohort(dataset, atlas, work)
        cohort_sizes.add(len(list(cohort.iterdir())))
        source_path = source_model(args.data, atlas, cohort, work, args.source, args.device, args.source_iterations)
        distilled = []
        for seed in range(args.seeds):
            out = work / f"distilled_{atlas}_{args.refine}_{args.iterations}_seed{seed}.pt"
            model = load_model(out) if out.exists() else None
            if model is None or model.segmenter.iteration < args.iterations:
                resumed(distill_command(source_path, cohort, out, args.iterations, args.refine, seed, args.device), out)
                model = load_model(out)
            distilled.append(model)
            distillations.append(distilled[-1].segmenter.training)
        source = load_model(source_path)
        sources[atlas] = (source_path, source)
        methods = {
            "source model": [(source, 0)],
            "source model + refinement (3 steps)": [(source, 3)],
            distilled_name: [(model, 0) for model in distilled],
        }
        targets = [t for a, t in scored if a == atlas]
        cache = work / f"scores_{atlas}_{args.refine}_{args.iterations}.csv"  # an atlas's rows, for a later run
        kept = [{**r, "seed": int(r["seed"])} for r in (read_csv(cache) if cache.exists() else [])]
        kept = [r for r in kept if r["target"] in targets and r["seed"] < len(methods[distilled_name])]
        ceilings = {CEILING: source.grid, CEILING_FINER: source.grid.finer(2)}
        wanted = {(t, m, s) for t in targets for m, models in methods.items() for s in range(len(models))}
        wanted |= {(t, m, 0) for t in targets for m in ceilings}
        missing = wanted - {(r["target"], r["method"], r["seed"]) for r in kept}
        scores = kept
        for name in sorted({t for t, _, _ in missing}):
            target = read_image(folder / "images" / f"{name}.nii.gz")
            reference = sitk.Cast(sitk.ReadImage(str(folder / "labels" / f"{name}.nii.gz")), sitk.sitkUInt8)
            for method, models in methods.items():
                for seed, (model, steps) in enumerate(models):
                    if (name, method, seed) not in missing:
                        continue
                    with Timer() as t:
                        result = transfer(model, target, args.device, refine_steps=steps, extras=False)
                    warped = Warped(result.labels, folded(model, result.qc), t.wall, t.cpu)
                    scores.append({**score(warped, atlas, name, reference, dataset, method, threads), "seed": seed})
            to_scan = None  # the source model's pre-alignment of the target, once for every grid
            for method, grid in ceilings.items():
                if (name, method, 0) in missing:
                    with Timer() as t:
                        to_scan = to_scan or prepare_scan(target, source.atlas, True).to_scan
                        labels = through_the_grid(source.atlas.values, target, reference, grid, to_scan)
                    ceiling = Warped(labels, None, t.wall, t.cpu)
                    scores.append({**score(ceiling, atlas, name, reference, dataset, method, threads), "seed": 0})
            print(atlas, name, {f"{r['method']} {r['seed']}": r["mean_dice"] for r in scores if r["target"] == name})
        if missing:
            write_csv(scores, cache)
        rows += scores
    names = ["source model", "source model + refinement (3 steps)", distilled_name]
    averaged = mean_over_seeds(rows)
    settings = distilled[0].segmenter.training["settings"]
    if args.data == "hippocampus":
        ((source_path, source),) = sources.values()
        origin = f"the source model (`{source_path.name}`, atlas `{scored[0][0]}`, {source.iteration} iterations)"
        protocol = f"Scored on {len(scored)} targets"
    else:
        flags = " ".join(IBSR_SOURCE_FLAGS)
        origin = (
            f"each atlas's source model (`ltnet train ... --iterations {args.source_iterations} "
            f"--lr {IBSR_SOURCE_LR:g} {flags}`, trained by this script)"
        )
        protocol = f"Each subject as atlas in turn; scored on {len(scored)} atlas -> target pairs"
    section, csv_name = (
        ("distill", "distill.csv")
        if args.data == "hippocampus"
        else (f"distill-{args.data}", f"distill_{args.data}.csv")
    )
    command = "benchmarks/distill.py" + ("" if args.data == "hippocampus" else f" --data {args.data}")
    seeds = "seed 0" if args.seeds == 1 else f"seeds 0 to {args.seeds - 1}"
    text = f"""## Distillation, {TITLES[args.data]} (`{command}`)

`ltnet distill` trained MONAI's `UNet` on the transfers of {origin} to the {", ".join(map(str, sorted(cohort_sizes)))}
cohort scans (each scan with its transferred labels, the atlas warped onto it, and the atlas; refined with
`--refine {args.refine}` before distilling), {args.iterations} iterations, Adam lr {settings["learning_rate"]:g},
augmentation {"on" if settings["augment"] else "off"}, {seeds}: {distilling_cost(distillations)}.
{protocol} against their reference labels on
each scan's own grid; the rows average each target over the seeds, and seconds per scan include the pre-alignment and
the QC (which still runs the registration). Per-target results: [`{csv_name}`](benchmarks/{csv_name}).
Machine: {machine()}.

{table(averaged, dataset, names)}

{seed_table(rows, [distilled_name], qc_below=False)}

{paired_comparison(averaged, distilled_name, names[:-1])}

{ceiling_text(averaged, names[1], {s.grid.spacing for _, s in sources.values()}, dataset)}
"""
    print(text)
    if not args.no_write:
        write_csv(rows, OUT / csv_name)
        write_section(section, text)


if __name__ == "__main__":
    main()
