"""Which ingredients of ``ltnet distill`` earn their cost, and the spread over seeds (needs ../shared/data/hippocampus).

Protocol as ``benchmarks/distill.py``: atlas hippocampus_007, the other 59 scans as the unlabeled cohort and as the
targets, scored on each scan's own grid against reference labels no method saw. Every variant starts from the same
source model and trains a fresh segmenter for the same number of iterations (``ltnet.distill.distill``, in this
process); only the examples or one setting differ:

- ``source``: no segmenter: the source model's own transfers, for reference;
- ``all``: what ``ltnet distill`` does (each cohort scan with its refined soft transfer, the atlas warped onto it,
  and the atlas; augmented), at two or more seeds;
- ``scans``: the cohort scans with their transfers, and the atlas (no warped atlas);
- ``warped``: the warped atlas images, and the atlas (no cohort scan);
- ``hard``: each soft transfer replaced by its most probable label;
- ``refine0``: the transfers from ``G_F``'s own fields (no refinement);
- ``plain``: no augmentation;
- ``cosine``: ``all`` with the learning rate decayed to 0 along half a cosine (``--lr-schedule cosine``);
- ``refine10``: ``all`` with transfers refined for 10 steps (``--refine 10``);
- ``selftrain``: ``all`` with each scan's soft labels replaced by their mean with the probabilities the ``all``
  segmenter of the same seed gives that scan (one round of self-training);
- ``appearance``: ``all`` plus, for each scan ``j``, the atlas warped onto ``j`` with the appearance of another
  cohort scan ``k`` (scan ``k`` carried into the atlas space by ``G_B``, then along ``j``'s field), after Zhao et al.
  (CVPR 2019), with ``j``'s transferred labels.

    python benchmarks/distill_ablation.py --work runs/distill_ablation [--variants all hard ...] [--seeds 0 1]

Each variant's model and per-target rows are kept in --work and reused, so a killed run continues where it stopped.
Results go to the "distill-ablation" section of docs/BENCHMARKS.md and ``docs/benchmarks/distill_ablation.csv``.
"""

import argparse
import csv
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATA, atlas_cohort  # noqa: E402
from classical import DATASETS, OUT, Timer, Warped, score, write_csv  # noqa: E402
from report import machine, write_section  # noqa: E402

from ltnet import sample  # noqa: E402
from ltnet.data.io import read_image  # noqa: E402
from ltnet.data.prepare import prepare_scan  # noqa: E402
from ltnet.distill import DistillSettings, Examples, distill, make_examples  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.nn.warp import compose, warp  # noqa: E402
from ltnet.refine import refine  # noqa: E402
from ltnet.segmenter import Segmenter  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

ATLAS = "hippocampus_007"
VARIANTS = {
    "source": "the source model itself (registration, no refinement)",
    "all": "all ingredients (what ltnet distill does)",
    "scans": "cohort scans with their transfers, and the atlas",
    "warped": "warped atlas images, and the atlas",
    "hard": "hard labels (most probable label of each transfer)",
    "refine0": "transfers from G_F's fields (no refinement)",
    "plain": "no augmentation",
    "appearance": "all, plus the warped atlas with another scan's appearance",
    "cosine": "all, the learning rate decayed along a cosine (--lr-schedule cosine)",
    "refine10": "all, transfers refined for 10 steps instead of 3 (--refine 10)",
    "selftrain": "all, each scan's labels the mean of its transfer and the 'all' segmenter's (CPU: this round only)",
}


def keep_kinds(examples: Examples, kinds: set[str]) -> Examples:
    """The examples whose kind is in ``kinds`` (their labels are shared, so the label list stays whole)."""
    keep = [i for i, kind in enumerate(examples.kinds) if kind in kinds]
    return Examples(
        [examples.images[i] for i in keep],
        examples.labels,
        [examples.label_of[i] for i in keep],
        [examples.kinds[i] for i in keep],
    )


def hardened(examples: Examples) -> Examples:
    """The same examples with each soft label volume ``(1, K, D, H, W)`` replaced by its one-hot argmax."""
    hard = [
        torch.nn.functional.one_hot(labels.argmax(1), labels.shape[1]).movedim(-1, 1).float()
        for labels in examples.labels
    ]
    return replace(examples, labels=hard)


def with_appearance(examples: Examples, model, scans: list[np.ndarray], refine_steps: int, seed: int) -> Examples:
    """``examples`` plus one per scan ``j``: scan ``k`` (drawn among the others) taken into the atlas space by
    ``G_B`` and then along ``j``'s forward field, which carries the atlas labels onto ``j`` (``j``'s transferred
    labels: ``examples.labels[1 + j]``, as ``make_examples`` orders them)."""
    nets = model.networks.eval()
    atlas = torch.from_numpy(model.atlas.image).float()[None, None]
    draws = torch.Generator().manual_seed(seed)
    tensors = [torch.from_numpy(s).float()[None, None] for s in scans]
    added = replace(
        examples, images=list(examples.images), label_of=list(examples.label_of), kinds=list(examples.kinds)
    )
    for j, scan_j in enumerate(tensors):
        k = (j + 1 + int(torch.randint(len(scans) - 1, (1,), generator=draws))) % len(scans)
        if refine_steps > 0:
            forward = refine(nets.g_forward, model.weights, atlas, scan_j, refine_steps)
        else:
            with torch.no_grad():
                forward = nets.g_forward(atlas, scan_j)
        with torch.no_grad():
            backward = nets.g_backward(tensors[k], atlas)  # atlas space -> scan k
            added.images.append(warp(tensors[k], compose(forward, backward)))
        added.label_of.append(1 + j)
        added.kinds.append("appearance")
    return added


def self_trained(examples: Examples, teacher: Segmenter, scans: list[np.ndarray]) -> Examples:
    """``examples`` with the soft labels of each scan ``j`` (``examples.labels[1 + j]``, as ``make_examples`` orders
    them) replaced by their mean with ``teacher``'s probabilities for scan ``j``."""
    labels = list(examples.labels)
    for j, scan in enumerate(scans):
        labels[1 + j] = 0.5 * (labels[1 + j] + teacher.probabilities(torch.from_numpy(scan).float()[None, None]))
    return replace(examples, labels=labels)


def variant_examples(
    name: str, model, scans, base: dict[int, Examples], seed: int, work: Path
) -> tuple[Examples, dict]:
    """The examples of variant ``name`` and its changes to ``DistillSettings``; ``base[refine_steps]`` caches
    ``make_examples``; ``work`` holds the trained variants (``selftrain``'s teacher is ``all``'s)."""
    refine_steps = {"refine0": 0, "refine10": 10}.get(name, 3)
    if refine_steps not in base:
        base[refine_steps] = make_examples(model, scans, refine_steps, torch.device("cpu"))
    examples = base[refine_steps]
    if name == "scans":
        examples = keep_kinds(examples, {"scan", "atlas"})
    elif name == "warped":
        examples = keep_kinds(examples, {"warped_atlas", "atlas"})
    elif name == "hard":
        examples = hardened(examples)
    elif name == "appearance":
        examples = with_appearance(examples, model, scans, refine_steps, seed)
    elif name == "selftrain":
        teacher = work / f"all_seed{seed}.pt"
        if not teacher.exists():
            sys.exit(f"{teacher}: missing; the selftrain variant needs the 'all' variant of seed {seed} first")
        examples = self_trained(examples, load_model(teacher).segmenter, scans)
    changes = {"refine_steps": refine_steps, "augment": name != "plain"}
    return examples, changes | ({"lr_schedule": "cosine"} if name == "cosine" else {})


def run_variant(name: str, seed: int, args, source_path: Path, cohort: Path, base: dict, work: Path) -> list[dict]:
    """Train (or reuse) variant ``name`` at ``seed`` and score it on every target; the rows are kept in ``work``."""
    rows_path = work / f"{name}_seed{seed}.csv"
    if rows_path.exists():
        with open(rows_path, newline="") as f:
            return list(csv.DictReader(f))
    model = load_model(source_path)
    if "scans" not in base:  # pre-aligned once for every variant
        base["scans"] = [prepare_scan(read_image(p), model.atlas, True, 0).image for p in sorted(cohort.iterdir())]
    scans = base["scans"]
    out = work / f"{name}_seed{seed}.pt"
    with Timer() as training:
        examples = Examples([], [], [], [])
        if name != "source":
            examples, changes = variant_examples(name, model, scans, base["examples"], seed, work)
            settings = replace(DistillSettings(iterations=args.iterations, seed=seed), **changes)
            torch.manual_seed(seed)
            model.segmenter = Segmenter.new(len(model.atlas.values))
            distill(model, examples, out, settings, torch.device("cpu"))
    rows = []
    for target_name in sorted(p.name.split(".")[0] for p in cohort.iterdir()):
        target = read_image(DATA / "images" / f"{target_name}.nii.gz")
        reference = sitk.Cast(sitk.ReadImage(str(DATA / "labels" / f"{target_name}.nii.gz")), sitk.sitkUInt8)
        result = transfer(model, target, "cpu", qc=False, extras=False)
        row = score(
            Warped(result.labels, None, 0.0, 0.0), ATLAS, target_name, reference, DATASETS["hippocampus"], name, 1
        )
        rows.append(row | {"seed": seed, "examples": len(examples.images), "training_cpu_s": round(training.cpu, 1)})
    write_csv(rows, rows_path)
    print(name, seed, f"{np.mean([r['mean_dice'] for r in rows]):.4f}", flush=True)
    return rows


def section(rows: list[dict], source_path: Path, iterations: int) -> str:
    """The markdown section: one line per variant (mean over its seeds), paired against ``all`` at the same seed."""

    def by(name: str, seed: int) -> dict[str, float]:
        return {r["target"]: float(r["mean_dice"]) for r in rows if r["method"] == name and int(r["seed"]) == seed}

    seeds_all = sorted({int(r["seed"]) for r in rows if r["method"] == "all"})
    means_all = [np.mean(list(by("all", s).values())) for s in seeds_all]
    lines = [
        "| variant | seeds | examples | mean Dice (per seed) "
        "| against all ingredients, same seed: difference, better on | training CPU min |",
        "|---|---|---|---|---|---|",
    ]
    for name, description in VARIANTS.items():
        seeds = sorted({int(r["seed"]) for r in rows if r["method"] == name})
        if not seeds:
            continue
        mine = [r for r in rows if r["method"] == name]
        per_seed = ", ".join(f"{np.mean(list(by(name, s).values())):.3f}" for s in seeds)
        paired = []
        for s in seeds:
            if name != "all" and s in seeds_all:
                a, b = by(name, s), by("all", s)
                d = np.array([a[t] - b[t] for t in sorted(a.keys() & b.keys())])
                paired.append(f"{d.mean():+.3f}, {int((d > 0).sum())} of {len(d)}")
        lines.append(
            f"| {description} | {', '.join(map(str, seeds))} | {mine[0]['examples']} | {per_seed} "
            f"| {'; '.join(paired) or '-'} | {np.mean([float(r['training_cpu_s']) for r in mine]) / 60:.0f} |"
        )
    spread = f"{max(means_all) - min(means_all):.3f}" if len(means_all) > 1 else "not measured (one seed)"
    return f"""## Distillation ablation, MSD hippocampus (`benchmarks/distill_ablation.py`)

Each variant trains a fresh segmenter (MONAI `UNet`, 1.19 M parameters) for {iterations} iterations on examples
made by the source model `{source_path.name}`, and is scored on the 59 targets (atlas `{ATLAS}`) on each scan's
own grid. Per-target rows: [`distill_ablation.csv`](benchmarks/distill_ablation.csv). Spread of the mean Dice over
the seeds of all ingredients: {spread}. Machine: {machine()}.

{chr(10).join(lines)}

Command: `OMP_NUM_THREADS=1 python benchmarks/distill_ablation.py --work runs/distill_ablation --source {source_path}`
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/distill_ablation")
    parser.add_argument("--source", default=str(sample.demo_model_path()), help="the model to distil (this atlas's)")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds of 'all' (the others: the first)")
    parser.add_argument("--no-write", action="store_true", help="print the results only: no docs section or CSV")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="monai")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cohort = atlas_cohort(DATASETS["hippocampus"], ATLAS, work)
    base = {"examples": {}}
    rows = []
    for name in args.variants:
        for seed in args.seeds if name == "all" else args.seeds[:1]:
            rows += run_variant(name, seed, args, Path(args.source), cohort, base, work)
    text = section(rows, Path(args.source), args.iterations)
    print(text)
    if not args.no_write:
        write_csv(rows, OUT / "distill_ablation.csv")
        write_section("distill-ablation", text)


if __name__ == "__main__":
    main()
