"""Distillation against its source model on the hippocampus benchmark (needs ../shared/data/hippocampus).

Protocol as ``benchmarks/accuracy.py``: atlas hippocampus_007; the unlabeled cohort and the targets are the other
59 scans, scored on each scan's own grid against its reference labels, which no method saw. The source model is
the bundled demo model by default (trained on this atlas with ``--prealign-fixed scan``, then ``--teach 10``;
``benchmarks/build_demo_model.py``); ``ltnet distill`` trains a segmentation network on its transfers to the
cohort, and the script scores the source model (with and without ``--refine``) and the distilled model.

    python benchmarks/distill.py --work runs/distill [--source MODEL] [--iterations 2000] [--refine 3]

The distilled model is kept in --work (``distilled_<refine>_<iterations>.pt``) and resumed when present.
Results go to the "distill" section of docs/BENCHMARKS.md and ``docs/benchmarks/distill.csv``.
"""

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATA, atlas_cohort, paired_comparison  # noqa: E402
from classical import DATASETS, OUT, Timer, Warped, score, table, write_csv  # noqa: E402
from report import machine, write_section  # noqa: E402

from ltnet import sample  # noqa: E402
from ltnet.data.io import read_image  # noqa: E402
from ltnet.model_file import load_model  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

ATLAS = "hippocampus_007"


def distill_command(source: Path, cohort: Path, out: Path, iterations: int, refine: int, seed: int) -> list[str]:
    """The ``ltnet distill`` command line (resumes ``out`` when it exists)."""
    return [
        sys.executable,
        "-m",
        "ltnet",
        "distill",
        "--model",
        str(source),
        "--images",
        str(cohort),
        "--out",
        str(out),
        "--iterations",
        str(iterations),
        "--refine",
        str(refine),
        "--seed",
        str(seed),
        "--device",
        "cpu",
        "--progress",
        "jsonl",
        *(["--resume"] if out.exists() else []),
    ]


def folded(model, qc: dict) -> float | None:
    """The folded share of the field the labels followed; None for a segmenter's labels, which follow no field."""
    return None if model.segmenter is not None else qc["folded_fraction"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/distill")
    parser.add_argument("--source", default=str(sample.demo_model_path()), help="the model to distil (this atlas's)")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--refine", type=int, default=3, help="ltnet distill --refine: the teaching transfers'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=1, help="score every K-th target only (quick checks)")
    parser.add_argument("--no-write", action="store_true", help="print the results only: no docs section or CSV")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="monai")
    dataset = DATASETS["hippocampus"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    source_path = Path(args.source)
    source = load_model(source_path)
    cohort = atlas_cohort(dataset, ATLAS, work)
    out = work / f"distilled_{args.refine}_{args.iterations}.pt"
    with Timer() as distilling:
        subprocess.run(
            distill_command(source_path, cohort, out, args.iterations, args.refine, args.seed),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    distilled = load_model(out)
    threads = torch.get_num_threads()
    methods = {
        "source model": (source, 0),
        "source model + refinement (3 steps)": (source, 3),
        f"distilled (--refine {args.refine}, {distilled.segmenter.iteration} iterations)": (distilled, 0),
    }
    rows = []
    targets = sorted(p.name.split(".")[0] for p in cohort.iterdir())[:: args.every]
    for name in targets:
        target = read_image(DATA / "images" / f"{name}.nii.gz")
        reference = sitk.Cast(sitk.ReadImage(str(DATA / "labels" / f"{name}.nii.gz")), sitk.sitkUInt8)
        for method, (model, steps) in methods.items():
            with Timer() as t:
                result = transfer(model, target, "cpu", refine_steps=steps, extras=False)
            rows.append(
                score(
                    Warped(result.labels, folded(model, result.qc), t.wall, t.cpu),
                    ATLAS,
                    name,
                    reference,
                    dataset,
                    method,
                    threads,
                )
            )
        print(name, {r["method"]: r["mean_dice"] for r in rows if r["target"] == name}, flush=True)
    names = list(methods)
    comparison = paired_comparison(rows, names[-1], names[:-1])
    text = f"""## Distillation, MSD hippocampus (`benchmarks/distill.py`)

`ltnet distill` trained MONAI's `UNet` (1.19 M parameters) on the transfers of the source model
(`{source_path.name}`, atlas `{ATLAS}`, {source.iteration} iterations) to the {len(list(cohort.iterdir()))} cohort
scans (each scan with its transferred labels, the atlas warped onto it, and the atlas; refined with
`--refine {args.refine}` before distilling), {distilled.segmenter.iteration} iterations, Adam lr
{distilled.segmenter.training["settings"]["learning_rate"]:g}, seed {args.seed}, augmentation
{"on" if distilled.segmenter.training["settings"]["augment"] else "off"}: {distilling.wall / 60:.0f} min wall,
{distilling.cpu / 60:.0f} CPU min (this run; a resumed run counts only its own part). Scored on
{len(targets)} targets against their reference labels on each scan's own grid; seconds per scan include the
pre-alignment and the QC (which still runs the registration). Per-target results:
[`distill.csv`](benchmarks/distill.csv). Machine: {machine()}.

{table(rows, dataset, names)}

{comparison}
"""
    if args.no_write:
        print(text)
        return
    write_csv(rows, OUT / "distill.csv")
    write_section("distill", text)
    print(text)


if __name__ == "__main__":
    main()
