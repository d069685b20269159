"""The results table of the README and of docs/BENCHMARKS.md's summary, computed from the benchmark CSVs.

Usage: ``python benchmarks/summary.py`` (rewrites both tables; ``--check`` only says whether they are current).
Every number in the table comes from the per-pair CSVs in docs/benchmarks/ that ``benchmarks/accuracy.py``,
``benchmarks/classical.py`` and ``benchmarks/distill.py`` write, so the README cannot drift from the benchmark pages.
The README's sentence on speed without bfloat16 comes the same way from ``docs/benchmarks/cpu_speed.json``
(``benchmarks/cpu_speed.py``).
"""

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSV_DIR = ROOT / "docs" / "benchmarks"
README = ROOT / "README.md"
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
SPEED_BEGIN, SPEED_END = "<!-- cpu-speed:begin -->", "<!-- cpu-speed:end -->"
RUNTIMES = {"openvino": "with the `fast` extra (OpenVINO)", "torch": "in torch alone"}
SECTION = "results"  # docs/BENCHMARKS.md: <!-- results --> ... <!-- /results -->, as benchmarks/report.py writes

# (data set heading, CSV stems of benchmarks/classical.py, benchmarks/accuracy.py and benchmarks/distill.py)
DATASETS = (
    ("MSD hippocampus, 59 scans", ("classical_hippocampus", "accuracy_hippocampus", "distill")),
    ("IBSR brains, 12 pairs", ("classical_ibsr18", "accuracy_ibsr18", "distill_ibsr18")),
)
# (row label, method name in the CSVs per data set, in the order of DATASETS)
ROWS = (
    ("elastix affine + B-spline", ("elastix affine + B-spline", "elastix affine + B-spline")),
    ("ANTs SyN", ("ANTs SyN (antspyx)", "ANTs SyN (antspyx)")),
    ("VoxelMorph (same training)", ("VoxelMorph (λ 1, --prealign-fixed scan)", "VoxelMorph (L_sim + L_smooth)")),
    ("**LTNet**", ("LT-Net (--prealign-fixed scan, --teach 10)", "LT-Net (--lambda2 1)")),
    (
        "**LTNet `--refine 3`**",
        (
            "LT-Net (--prealign-fixed scan, --teach 10) + refinement (3 steps)",
            "LT-Net (--lambda2 1) + refinement (3 steps)",
        ),
    ),
)
# The distilled row (benchmarks/distill.py): its method and the source model it was distilled from, timed in the same
# run, so its CPU time shows as a ratio to that model's (the distillation benchmark's timings are not the accuracy
# benchmark's: other runs, other versions of the pre-alignment). Shown once every data set has its distill CSV.
DISTILLED = ("**LTNet distilled**", "distilled (--refine 3, 2000 iterations)", "source model")
NOTE = (
    "Mean Dice over the targets against their reference labels (one labeled atlas each; the learned models never "
    "saw a label of their cohort) and CPU seconds per scan (user + system), pre-alignment and LTNet's QC included. "
    "LTNet and VoxelMorph: hippocampus `--prealign-fixed scan`, LTNet also `--teach 10` (the bundled model's "
    "recipe), averaged over 3 training seeds; IBSR a 4 mm grid, LTNet `--lambda2 1`. "
)
DISTILLED_NOTE = (
    "LTNet distilled: a segmentation network trained by `ltnet distill` on LTNet's refined transfers to the cohort "
    "(2000 iterations; training seeds: {seeds}), its CPU time a ratio to its LTNet model's timed in the same run, "
    "both with the QC, which runs the registration. "
)


def read_rows(path: Path) -> dict[str, list[dict]]:
    """The CSV's rows grouped by method."""
    by_method = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_method[row["method"]].append(row)
    return by_method


def score(rows: list[dict]) -> tuple[float, float]:
    """(mean Dice, mean CPU seconds per scan): each target averaged over its seeds first, then over targets."""
    per_target = defaultdict(list)
    for row in rows:
        per_target[(row["atlas"], row["target"])].append(row)
    dice = [sum(float(r["mean_dice"]) for r in rs) / len(rs) for rs in per_target.values()]
    cpu = [sum(float(r["seconds_cpu"]) for r in rs) / len(rs) for rs in per_target.values()]
    return sum(dice) / len(dice), sum(cpu) / len(cpu)


def results_table(csv_dir: Path = CSV_DIR, details: str = "[docs/BENCHMARKS.md](docs/BENCHMARKS.md)") -> str:
    """The Markdown table (and its note) of mean Dice and CPU seconds per scan for each data set and method."""
    methods = []
    for _, stems in DATASETS:
        merged = {}
        for stem in stems:
            if (csv_dir / f"{stem}.csv").exists():
                merged.update(read_rows(csv_dir / f"{stem}.csv"))
        methods.append(merged)
    header = "| method | " + " | ".join(f"{name}: Dice | CPU s" for name, _ in DATASETS) + " |"
    lines = [header, "|---|" + "---:|---:|" * len(DATASETS)]
    for label, names in ROWS:
        cells = []
        for merged, name in zip(methods, names):
            if name not in merged:
                raise SystemExit(f"benchmarks/summary.py: no rows for {name!r} in the CSVs of {csv_dir}")
            dice, cpu = score(merged[name])
            cells += [f"{dice:.3f}", f"{cpu:.3g}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    label, distilled, source = DISTILLED
    if all(distilled in merged for merged in methods):
        cells, seeds = [], []
        for (heading, _), merged in zip(DATASETS, methods):
            dice, cpu = score(merged[distilled])
            cells += [f"{dice:.3f}", f"{cpu / score(merged[source])[1]:.2f}x LTNet"]
            seeds.append((len({row["seed"] for row in merged[distilled]}), heading.split(",")[0]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if len({count for count, _ in seeds}) == 1:
            each = f"{seeds[0][0]} on each data set"
        else:
            each = ", ".join(f"{count} ({name})" for count, name in seeds)
        note = NOTE + DISTILLED_NOTE.format(seeds=each)
    else:
        note = NOTE
    return "\n".join(lines) + "\n\n" + note + "Details: " + details + "."


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with everything between the ``begin`` and ``end`` markers replaced by ``block``."""
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"benchmarks/summary.py: markers {begin} ... {end} not found")
    return pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text)


def cpu_speed_sentence(csv_dir: Path = CSV_DIR) -> str:
    """The README's sentence on a whole-brain transfer's time without bfloat16, as ratios to elastix on the same pair
    (they hold on other CPUs better than the seconds, which it gives with the CPU they were measured on)."""
    speed = json.loads((csv_dir / "cpu_speed.json").read_text(encoding="utf-8"))
    seconds, elastix = speed["seconds"], speed["elastix_seconds"]
    if elastix is None:
        raise SystemExit(
            f"benchmarks/summary.py: {csv_dir / 'cpu_speed.json'} has no elastix time: rerun "
            "benchmarks/cpu_speed.py where elastix is installed"
        )
    runtimes = [r for r in RUNTIMES if r in seconds["labels"]]
    first = runtimes[0]

    def times(kind: str, runtime: str) -> str:
        return f"{seconds[kind][runtime] / elastix:.2f} times"

    ratios = [f"{times('labels', r)} as long {RUNTIMES[r]}" for r in runtimes]
    ratios[0] = ratios[0].replace(" as long ", " as long as elastix's B-spline registration of the same pair ")
    shown = " and ".join(f"{seconds['labels'][r]:.1f} s" for r in runtimes)
    x, y, z = speed["grid"]
    return (
        f"**Speed without bfloat16.** On a CPU without bfloat16 instructions ({speed['cpu']}, {speed['threads']} "
        f"threads), labelling a whole brain at {x}x{y}x{z}, the pre-alignment included, takes {' and '.join(ratios)} "
        f"({shown}; elastix {elastix:.1f} s); {RUNTIMES[first]}, the QC without the backward network "
        f"(`--no-cycle-qc`) makes it {times('match', first)} and the full QC {times('qc', first)} elastix's time "
        "([Speed on a float32 CPU](docs/BENCHMARKS.md#speed-on-a-float32-cpu))."
    )


def readme_text(readme: str, csv_dir: Path = CSV_DIR) -> str:
    readme = replace_block(readme, README_BEGIN, README_END, results_table(csv_dir))
    return replace_block(readme, SPEED_BEGIN, SPEED_END, cpu_speed_sentence(csv_dir))


def benchmarks_text(benchmarks: str, csv_dir: Path = CSV_DIR) -> str:
    block = results_table(csv_dir, "the accuracy and classical-baseline sections below")
    return replace_block(benchmarks, f"<!-- {SECTION} -->", f"<!-- /{SECTION} -->", block)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table differs from the CSVs")
    args = parser.parse_args(argv)
    stale = []
    for path, rewrite in ((README, readme_text), (BENCHMARKS_MD, benchmarks_text)):
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
