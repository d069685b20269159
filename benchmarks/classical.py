"""Classical registration baselines: no registration, affine only, elastix affine + B-spline, ANTs SyN.

One-shot protocol on ../shared/data: the atlas image and labels are registered to each
target image (fixed = target, moving = atlas); the warped atlas labels are scored on the
target's own grid against its reference labels (Dice per label, HD95 in mm), with the
share of folded voxels (Jacobian determinant <= 0 on the target grid) and the wall and
CPU seconds per scan (registration + label warp; Jacobian and scoring not timed).

    python benchmarks/classical.py --data hippocampus [--every K] [--threads N]
    python benchmarks/classical.py --data ibsr18 [--threads N]
    python benchmarks/classical.py --data ibsr18 --resume --shard 0/2 &   # two 1-thread shards side by side,
    python benchmarks/classical.py --data ibsr18 --resume --shard 1/2     # then --from-csv merges and reports

hippocampus: atlas hippocampus_007, the other 59 scans as targets (every K-th with --every).
ibsr18: each of the 4 subjects as atlas in turn against the other 3 (12 pairs).

Benchmark-only dependencies (not needed by LTNet itself):

    apt-get install -y elastix            # elastix + transformix 5.0.1 (Debian bookworm)
    python3 -m venv .venv-bench && .venv-bench/bin/pip install antspyx

antspyx goes into its own venv because it pins numpy < 2.4 (it would downgrade the
project's numpy); ``ants_pair.py`` runs there as a child process. A missing elastix or
.venv-bench skips that method. Results: sections "classical-<data>" of docs/BENCHMARKS.md,
per-pair CSV, elastix parameter files and a box plot under docs/benchmarks/.
"""

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, mean_std, write_section  # noqa: E402

from ltnet.data.intensity import normalise  # noqa: E402
from ltnet.data.prealign import affine_prealign  # noqa: E402
from ltnet.metrics import dice_per_label, hausdorff95_mm, labels_with_transform, labels_without_registration  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "benchmarks"
ANTS_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
ANTS_WORKER = Path(__file__).resolve().parent / "ants_pair.py"


@dataclass(frozen=True)
class Dataset:
    folder: str
    labels: dict[int, str]
    atlases: tuple[str, ...] | None  # None: every subject is the atlas in turn
    elastix_affine: dict
    elastix_bspline: dict
    ants: dict  # keyword arguments for ants.registration beyond its defaults


# Parameter sets follow the elastix model zoo brain-MRI files (Par0000 affine / B-spline, Klein et al.
# 2010): adaptive stochastic gradient descent, Mattes MI with 32 bins, random sampling, smoothing pyramid.
# The B-spline grid is scaled to the field of view (4 mm for the ~35 mm hippocampus crops, 10 mm for brains).
DATASETS = {
    "hippocampus": Dataset(
        "hippocampus",
        {1: "anterior", 2: "posterior"},
        ("hippocampus_007",),
        {"NumberOfResolutions": 3, "MaximumNumberOfIterations": 250, "NumberOfSpatialSamples": 2048},
        {
            "NumberOfResolutions": 3,
            "MaximumNumberOfIterations": 500,
            "NumberOfSpatialSamples": 2048,
            "FinalGridSpacingInPhysicalUnits": 4.0,
        },
        {},
    ),
    "ibsr18": Dataset(
        "ibsr18",
        {1: "CSF", 2: "GM", 3: "WM"},
        None,
        {"NumberOfResolutions": 4, "MaximumNumberOfIterations": 250, "NumberOfSpatialSamples": 4096},
        {
            "NumberOfResolutions": 4,
            "MaximumNumberOfIterations": 500,
            "NumberOfSpatialSamples": 4096,
            "FinalGridSpacingInPhysicalUnits": 10.0,
        },
        # Defaults (2100/1200/1200/10 affine iterations) took > 5 CPU minutes per brain pair here; affine cut to fit the
        # budget.
        {"aff_iterations": [200, 100, 50, 0]},
    ),
}

ELASTIX_COMMON = {
    "FixedInternalImagePixelType": "float",
    "MovingInternalImagePixelType": "float",
    "FixedImageDimension": 3,
    "MovingImageDimension": 3,
    "UseDirectionCosines": "true",
    "Registration": "MultiResolutionRegistration",
    "Metric": "AdvancedMattesMutualInformation",
    "NumberOfHistogramBins": 32,
    "FixedImagePyramid": "FixedSmoothingImagePyramid",
    "MovingImagePyramid": "MovingSmoothingImagePyramid",
    "Optimizer": "AdaptiveStochasticGradientDescent",
    "ImageSampler": "RandomCoordinate",
    "NewSamplesEveryIteration": "true",
    "Interpolator": "BSplineInterpolator",
    "BSplineInterpolationOrder": 1,
    "ResampleInterpolator": "FinalBSplineInterpolator",
    "FinalBSplineInterpolationOrder": 3,
    "Resampler": "DefaultResampler",
    "HowToCombineTransforms": "Compose",
    "DefaultPixelValue": 0,
    "WriteResultImage": "false",
    "ResultImagePixelType": "float",
    "ResultImageFormat": "nii.gz",
}
ELASTIX_AFFINE = {
    "Transform": "AffineTransform",
    "AutomaticScalesEstimation": "true",
    "AutomaticTransformInitialization": "true",
    "AutomaticTransformInitializationMethod": "GeometricalCenter",
}
ELASTIX_BSPLINE = {"Transform": "BSplineTransform"}


@dataclass
class Warped:
    """One method's result for one pair: atlas labels on the target grid, folded share (None: no field), seconds."""

    labels: sitk.Image
    folded: float | None
    seconds_wall: float
    seconds_cpu: float


@dataclass
class Pair:
    """One atlas -> target pair, with the normalised images written once for the external tools."""

    atlas: str
    target: str
    atlas_image: sitk.Image
    atlas_labels: sitk.Image
    target_image: sitk.Image
    reference: sitk.Image
    atlas_file: Path
    atlas_labels_file: Path
    target_file: Path
    work: Path


# ---------------------------------------------------------------- pairs and inputs


def subjects(dataset: Dataset) -> list[str]:
    return sorted(p.name.removesuffix(".nii.gz") for p in (DATA / dataset.folder / "images").glob("*.nii.gz"))


def pairs(dataset: Dataset, every: int) -> list[tuple[str, str]]:
    """(atlas, target) names: each atlas against every ``every``-th other subject, counted from the one after it.

    With every subject as atlas (ibsr18) and ``every`` = 3 this is the cycle 1->2, 2->3, 3->4, 4->1.
    """
    names = subjects(dataset)
    atlases = dataset.atlases or names
    after = lambda a: names[names.index(a) + 1 :] + names[: names.index(a)]  # noqa: E731
    return [(a, t) for a in atlases for t in after(a)[::every]]


def load_pair(dataset: Dataset, atlas: str, target: str, work: Path) -> Pair:
    """Read and normalise both images, write them (float32 NIfTI) and the atlas labels for elastix / ANTs."""
    folder = DATA / dataset.folder
    work.mkdir(parents=True, exist_ok=True)
    atlas_image = normalise(sitk.Cast(sitk.ReadImage(str(folder / "images" / f"{atlas}.nii.gz")), sitk.sitkFloat32))
    target_image = normalise(sitk.Cast(sitk.ReadImage(str(folder / "images" / f"{target}.nii.gz")), sitk.sitkFloat32))
    atlas_labels = sitk.Cast(sitk.ReadImage(str(folder / "labels" / f"{atlas}.nii.gz")), sitk.sitkUInt8)
    reference = sitk.Cast(sitk.ReadImage(str(folder / "labels" / f"{target}.nii.gz")), sitk.sitkUInt8)
    files = {name: work / f"{name}.nii.gz" for name in ("atlas", "atlas_labels", "target")}
    for name, image in (("atlas", atlas_image), ("atlas_labels", atlas_labels), ("target", target_image)):
        sitk.WriteImage(image, str(files[name]))
    return Pair(
        atlas,
        target,
        atlas_image,
        atlas_labels,
        target_image,
        reference,
        files["atlas"],
        files["atlas_labels"],
        files["target"],
        work,
    )


def on_reference_grid(labels: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """A result read back from an external tool, checked to be on the target grid and given its exact geometry."""
    labels = sitk.Cast(labels, reference.GetPixelID())
    if labels.GetSize() != reference.GetSize() or not np.allclose(labels.GetOrigin(), reference.GetOrigin(), atol=1e-3):
        raise RuntimeError(f"result grid {labels.GetSize()} {labels.GetOrigin()} differs from the target's")
    labels.CopyInformation(reference)
    return labels


class Timer:
    """Wall seconds and CPU seconds of this process and its finished children."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, self._cpu() - self.cpu

    @staticmethod
    def _cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ---------------------------------------------------------------- methods


def no_registration(pair: Pair, dataset: Dataset, threads: int) -> Warped:
    with Timer() as t:
        labels = labels_without_registration(pair.atlas_labels, pair.reference)
    return Warped(labels, None, t.wall, t.cpu)


def affine_only(pair: Pair, dataset: Dataset, threads: int) -> Warped:
    """ltnet's affine pre-alignment; ``affine_prealign(atlas, target)`` maps atlas points to target points."""
    with Timer() as t:
        atlas_to_target = affine_prealign(pair.atlas_image, pair.target_image)
        labels = labels_with_transform(pair.atlas_labels, pair.reference, atlas_to_target.GetInverse())
    return Warped(labels, None, t.wall, t.cpu)


def elastix_parameter_text(parameters: dict) -> str:
    """An elastix parameter file: one ``(Name value ...)`` line per entry, strings quoted."""

    def value(v):
        return f'"{v}"' if isinstance(v, str) else str(v)

    return "".join(f"({name} {value(v)})\n" for name, v in parameters.items())


def elastix_parameter_files(dataset: Dataset, folder: Path) -> list[Path]:
    """Write the affine and B-spline parameter files for ``dataset`` into ``folder``."""
    files = []
    for stage, specific, overrides in (
        ("affine", ELASTIX_AFFINE, dataset.elastix_affine),
        ("bspline", ELASTIX_BSPLINE, dataset.elastix_bspline),
    ):
        path = folder / f"elastix_{dataset.folder}_{stage}.txt"
        path.write_text(elastix_parameter_text({**ELASTIX_COMMON, **specific, **overrides}))
        files.append(path)
    return files


def label_transform_file(transform: Path) -> Path:
    """A copy of elastix's last transform file that resamples labels: nearest value (order 0), integer pixels."""
    text = transform.read_text().replace("(FinalBSplineInterpolationOrder 3)", "(FinalBSplineInterpolationOrder 0)")
    text = text.replace('(ResultImagePixelType "float")', '(ResultImagePixelType "unsigned char")')
    if "(FinalBSplineInterpolationOrder 0)" not in text:
        raise RuntimeError(f"{transform}: no FinalBSplineInterpolationOrder entry to set to 0 for labels")
    path = transform.with_name("labels_" + transform.name)
    path.write_text(text)
    return path


def run_quiet(command: list, threads: int) -> None:
    subprocess.run([str(c) for c in command], check=True, stdout=subprocess.DEVNULL, env=thread_env(threads))


def elastix_bspline(pair: Pair, dataset: Dataset, threads: int) -> Warped:
    """elastix affine then B-spline (fixed = target, moving = atlas), transformix for labels and Jacobian."""
    out = pair.work / "elastix"
    out.mkdir(exist_ok=True)
    parameters = elastix_parameter_files(dataset, out)
    with Timer() as t:
        run_quiet(
            [
                "elastix",
                "-f",
                pair.target_file,
                "-m",
                pair.atlas_file,
                "-out",
                out,
                "-threads",
                threads,
                *[x for p in parameters for x in ("-p", p)],
            ],
            threads,
        )
        transform = label_transform_file(out / f"TransformParameters.{len(parameters) - 1}.txt")
        run_quiet(
            ["transformix", "-in", pair.atlas_labels_file, "-tp", transform, "-out", out, "-threads", threads], threads
        )
        labels = on_reference_grid(sitk.ReadImage(str(out / "result.nii.gz")), pair.reference)
    run_quiet(["transformix", "-jac", "all", "-tp", transform, "-out", out, "-threads", threads], threads)
    determinant = sitk.GetArrayFromImage(sitk.ReadImage(str(next(out.glob("spatialJacobian.*")))))
    return Warped(labels, float(np.mean(determinant <= 0)), t.wall, t.cpu)


def ants_syn(pair: Pair, dataset: Dataset, threads: int) -> Warped:
    """ANTs SyN (antspyx "SyN": affine then SyN, Mattes MI) in the benchmark venv; labels by genericLabel."""
    out_labels, out_json = pair.work / "ants_labels.nii.gz", pair.work / "ants.json"
    run_quiet(
        [
            ANTS_PYTHON,
            ANTS_WORKER,
            pair.target_file,
            pair.atlas_file,
            pair.atlas_labels_file,
            out_labels,
            out_json,
            "--options",
            json.dumps(dataset.ants),
        ],
        threads,
    )
    result = json.loads(out_json.read_text())
    labels = on_reference_grid(sitk.ReadImage(str(out_labels)), pair.reference)
    return Warped(labels, result["folded_fraction"], result["seconds_wall"], result["seconds_cpu"])


def thread_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(threads)}


def available_methods() -> dict:
    """Name -> function; elastix and ANTs only where installed."""
    methods = {"No registration": no_registration, "Affine only (ltnet affine_prealign)": affine_only}
    if shutil.which("elastix") and shutil.which("transformix"):
        methods["elastix affine + B-spline"] = elastix_bspline
    else:
        print("elastix not found: skipped (apt-get install -y elastix)", file=sys.stderr)
    if ANTS_PYTHON.exists():
        methods["ANTs SyN (antspyx)"] = ants_syn
    else:
        print(
            f"{ANTS_PYTHON} not found: ANTs skipped "
            "(python3 -m venv .venv-bench && .venv-bench/bin/pip install antspyx)",
            file=sys.stderr,
        )
    return methods


# ---------------------------------------------------------------- scoring and reporting


def score(
    warped: Warped, atlas: str, target: str, reference: sitk.Image, dataset: Dataset, method: str, threads: int
) -> dict:
    """One CSV row: Dice per label, mean Dice, HD95 (mm, mean over labels), folded share, seconds."""
    dice = dice_per_label(warped.labels, reference, dataset.labels)
    hd95 = [hausdorff95_mm(warped.labels, reference, v) for v in dataset.labels]
    row = {"atlas": atlas, "target": target, "method": method, "threads": threads}
    row |= {f"dice_{name}": round(dice[v], 4) for v, name in dataset.labels.items()}
    row |= {
        "mean_dice": round(float(np.mean(list(dice.values()))), 4),
        "hd95_mm": round(float(np.nanmean(hd95)), 3),
        "folded_fraction": "" if warped.folded is None else f"{warped.folded:.6f}",
        "seconds_wall": round(warped.seconds_wall, 3),
        "seconds_cpu": round(warped.seconds_cpu, 3),
    }
    return row


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def table(rows: list[dict], dataset: Dataset, methods: list[str]) -> str:
    """Markdown table, one line per method, mean ± std over pairs."""
    names = list(dataset.labels.values())
    lines = [
        "| method | "
        + " | ".join(f"Dice {n}" for n in names)
        + " | mean Dice | HD95 (mm) | folded voxels | seconds per scan, wall (CPU) | threads |",
        "|---|" + "---|" * (len(names) + 5),
    ]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        column = lambda key, mine=mine: [float(r[key]) for r in mine]  # noqa: E731
        folded = [float(r["folded_fraction"]) for r in mine if r["folded_fraction"] != ""]
        folded_text = f"{100 * np.mean(folded):.3f} % (max {100 * np.max(folded):.3f} %)" if folded else "0 (no field)"
        threads = sorted({r["threads"] for r in mine})
        lines.append(
            f"| {method} | "
            + " | ".join(mean_std(column(f"dice_{n}")) for n in names)
            + f" | {mean_std(column('mean_dice'))} | {mean_std(column('hd95_mm'))} | {folded_text}"
            + f" | {np.mean(column('seconds_wall')):.2f} ({np.mean(column('seconds_cpu')):.2f})"
            + f" | {', '.join(map(str, threads))} |"
        )
    return "\n".join(lines)


def box_plot(rows: list[dict], methods: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [[float(r["mean_dice"]) for r in rows if r["method"] == m] for m in methods]
    figure, axes = plt.subplots(figsize=(max(7.0, 1.15 * len(methods)), 4.5))
    axes.boxplot(values, showmeans=True)
    axes.set_xticks(range(1, len(methods) + 1), [textwrap.fill(m, 16) for m in methods], fontsize=7)
    axes.set_ylabel("mean Dice per target")
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def section(
    data: str,
    dataset: Dataset,
    rows: list[dict],
    methods: list[str],
    every: int,
    parameter_files: list[Path],
    figure: Path | None,
) -> str:
    protocol = describe_pairs(dataset, sorted({(r["atlas"], r["target"]) for r in rows}), every)
    parameters = ", ".join(f"[`{p.name}`](benchmarks/{p.name})" for p in parameter_files)
    plot = f"\n![mean Dice per target](benchmarks/{figure.name})\n" if figure else ""
    command = f"benchmarks/classical.py --data {data}" + (f" --every {every}" if every > 1 else "")
    ants_options = "".join(f", {k}={tuple(v)}" for k, v in dataset.ants.items())
    return f"""## Classical baselines, one-shot, {dataset.folder} (`{command}`)

{protocol}; fixed = target, moving = atlas; warped atlas labels scored on each target's own grid
against its reference labels (Dice mean ± std over pairs; HD95 = 95th-percentile symmetric surface
distance, mean over labels). Folded voxels: share of target-grid voxels with Jacobian determinant <= 0
(elastix: `transformix -jac all`; ANTs: `create_jacobian_determinant_image` of the SyN warp), mean and worst pair.
Seconds per scan: registration + label warp (not Jacobian or scoring), wall clock and CPU (user + system);
the machine may have been shared with other jobs (the notes below each table say how busy), so wall seconds can be
inflated and CPU seconds are the fairer cost; ANTs seconds are taken inside its worker, without Python start-up and \
antspyx import.
Per-pair results: [`classical_{data}.csv`](benchmarks/classical_{data}.csv).

- No registration: atlas labels at the same physical points. Affine only: `ltnet.data.prealign.affine_prealign`
  (Mattes MI, multi-resolution, the atlas fixed: its default) on `normalise`d images.
- elastix {elastix_version()}: affine then B-spline, adaptive stochastic gradient descent, Mattes MI (32 bins),
  random sampling, smoothing pyramid; affine: {settings(dataset.elastix_affine)}; \
B-spline: {settings(dataset.elastix_bspline)};
  labels by transformix with FinalBSplineInterpolationOrder 0. Parameter files: {parameters}.
- ANTs: antspyx {ants_version()} `ants.registration(type_of_transform="SyN", random_seed=1{ants_options})`, \
otherwise defaults
  (affine then SyN, Mattes MI, SyN iterations 40/20/0 at shrink 4/2/1); labels by \
`apply_transforms(interpolator="genericLabel")`.
- Inputs: images `normalise`d to [0, 1] (ltnet.data.intensity), the same for every method.
- Benchmark-only dependencies: `apt-get install -y elastix`; \
`python3 -m venv .venv-bench && .venv-bench/bin/pip install antspyx`
  (separate venv: antspyx 0.6.3 pins numpy < 2.4).
- Machine: {machine()}, {os.cpu_count()} cores.

{table(rows, dataset, methods)}
{plot}"""


def settings(parameters: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in parameters.items())


def describe_pairs(dataset: Dataset, done: list[tuple[str, str]], every: int) -> str:
    """One sentence on which atlas -> target pairs were scored."""
    if dataset.atlases:
        which = f"every {every}-th other scan" if every > 1 else "all other scans"
        return f"Atlas `{dataset.atlases[0]}`, {len(done)} targets ({which})"
    listed = ", ".join(f"{a} -> {t}" for a, t in done)
    n = len(subjects(dataset))
    subset = f", a subset of the {n * (n - 1)} ordered pairs, to fit the CPU budget" if len(done) < n * (n - 1) else ""
    return f"Each subject as atlas in turn: {len(done)} pairs ({listed}){subset}"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{**row, "threads": int(row["threads"])} for row in csv.DictReader(f)]


def report(data: str, dataset: Dataset, rows: list[dict], methods: list[str], every: int) -> str:
    """Parameter files, box plot and the docs section from the per-pair rows."""
    parameter_files = elastix_parameter_files(dataset, OUT) if "elastix affine + B-spline" in methods else []
    figure = OUT / f"classical_{data}.png"
    box_plot(rows, methods, figure, f"One-shot label transfer, {dataset.folder}: mean Dice per target")
    text = section(data, dataset, rows, methods, every, parameter_files, figure)
    write_section(f"classical-{data}", text)
    return text


def elastix_version() -> str:
    try:
        return subprocess.run(["elastix", "--version"], capture_output=True, text=True).stdout.split()[-1]
    except (OSError, IndexError):
        return "(not installed)"


def ants_version() -> str:
    try:
        return subprocess.run(
            [str(ANTS_PYTHON), "-c", "import ants; print(ants.__version__)"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "(not installed)"


def merged_rows(csv_path: Path, parts: list[Path]) -> list[dict]:
    """Rows of the main CSV and of shard CSVs, one set per (atlas, target, method), the latest kept."""
    rows = {}
    for path in [csv_path, *parts]:
        if path.exists():
            rows |= {(r["atlas"], r["target"], r["method"]): r for r in read_csv(path)}
    return list(rows.values())


def run_pairs(
    todo: list[tuple[str, str]], dataset: Dataset, threads: int, keep: list[dict], out_csv: Path | None
) -> list[dict]:
    """Every method on every pair; the CSV (``keep`` + new rows) is rewritten after each pair so work survives a
    stop."""
    methods = available_methods()
    rows = []
    with tempfile.TemporaryDirectory(prefix="classical_") as temporary:
        for i, (atlas, target) in enumerate(todo):
            pair = load_pair(dataset, atlas, target, Path(temporary) / f"{atlas}_{target}")
            for name, method in methods.items():
                rows.append(
                    score(method(pair, dataset, threads), atlas, target, pair.reference, dataset, name, threads)
                )
            print(
                f"[{i + 1}/{len(todo)}] {atlas} -> {target}",
                {r["method"].split(" (")[0]: (r["mean_dice"], r["seconds_wall"]) for r in rows[-len(methods) :]},
                flush=True,
            )
            shutil.rmtree(pair.work)
            if out_csv:
                write_csv(keep + rows, out_csv)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(DATASETS), required=True)
    parser.add_argument("--every", type=int, default=1, help="use every K-th target (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="threads for elastix, ANTs and SimpleITK")
    parser.add_argument("--limit", type=int, help="stop after this many pairs (timing trials; nothing is written)")
    parser.add_argument(
        "--resume", action="store_true", help="keep the pairs already in the CSV (and shard CSVs); run only the rest"
    )
    parser.add_argument(
        "--shard",
        help="I/N: run only the I-th of N slices of the pairs to do, into a shard CSV (merge with --from-csv)",
    )
    parser.add_argument(
        "--from-csv", action="store_true", help="merge shard CSVs into the CSV, then rebuild the docs section and plot"
    )
    args = parser.parse_args()
    dataset = DATASETS[args.data]
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = OUT / f"classical_{args.data}.csv"
    parts = sorted(OUT.glob(f"classical_{args.data}.part*.csv"))
    if args.from_csv:
        rows = merged_rows(csv_path, parts)
        write_csv(rows, csv_path)
        for part in parts:
            part.unlink()
        print(report(args.data, dataset, rows, list(dict.fromkeys(r["method"] for r in rows)), args.every))
        return
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    keep = merged_rows(csv_path, parts) if args.resume else []
    done = {(r["atlas"], r["target"]) for r in keep}
    todo = [p for p in pairs(dataset, args.every) if p not in done][: args.limit]
    if args.shard:
        index, count = map(int, args.shard.split("/"))
        rows = run_pairs(
            todo[index::count],
            dataset,
            args.threads,
            [],
            None if args.limit else OUT / f"classical_{args.data}.part{index}.csv",
        )
        return
    rows = run_pairs(todo, dataset, args.threads, keep, None if args.limit else csv_path)
    methods = list(available_methods())
    if args.limit:
        print(table(rows, dataset, methods))
        return
    print(report(args.data, dataset, keep + rows, methods, args.every))


if __name__ == "__main__":
    main()
