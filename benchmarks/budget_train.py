"""Train the accuracy benchmark's models side by side on one device, each for as many iterations as fit a wall-clock
budget, or for a fixed number.

For GPU time of fixed length: every job first runs ``--calibrate`` iterations, all
side by side as the real runs will be, which measures each job's start-up seconds and
seconds per iteration under that load; each job then trains afresh with
``floor((budget - start-up) / seconds per iteration * --margin)`` iterations, so the
learning-rate and loss-coupling schedules (which are shares of the total) run to their end.
With ``--same-iterations`` every fitted job gets the fewest of them (one budget in iterations for all, as a
comparison of methods wants); with ``--snapshots K`` it is rounded down to a multiple of 100 K and each fitted run
keeps its model every 1/K of it, for a curve of accuracy against iterations.

A job is ``DATA:RECIPE[:X,Y,Z][:SEED][:iN]``: RECIPE ``ltnet`` or ``voxelmorph`` as in ``benchmarks/accuracy.py``, or
one of ``SCAN_RECIPES`` (the pre-alignment holding the scan fixed); ``iN`` trains exactly N iterations instead of
fitting the budget. A recipe with a teaching stage spends its last ``--teach-stage`` iterations of the total there,
as ``benchmarks/long_training.py`` counts. Each job trains one model per atlas of DATA, written where
``accuracy.py --model`` finds it: ``--work/<DATA>/<RECIPE>_<atlas>_seed<SEED>[_iN].pt``, with its snapshots
beside it, named as ``benchmarks/long_report.py`` reads them.

    python benchmarks/budget_train.py --device cuda --budget-s 360 --work runs/gpu \\
        --job hippocampus:ltnet --job hippocampus:voxelmorph --job ibsr18:ltnet:120,96,120
    python benchmarks/accuracy.py --data ibsr18 --model "LT-Net=runs/gpu/ibsr18/ltnet_{atlas}_seed0.pt" ...

Prints one JSON line per model (iterations, seconds, command) and writes them to ``--work/budget.json``.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import RECIPES, atlas_cohort, train_command  # noqa: E402
from classical import DATA, DATASETS, pairs  # noqa: E402
from long_training import registration_iterations  # noqa: E402

#: The configurations of the long comparison (``benchmarks/long_report.py``), each with the scan held fixed.
SCAN_RECIPES = {
    "ltnet_scan": ["--prealign-fixed", "scan", "--teach-stage", "0"],  # accuracy.py's "LT-Net (--prealign-fixed scan)"
    "recipe_scan": ["--prealign-fixed", "scan"],  # the same with its teaching stage
    "voxelmorph_scan": ["--voxelmorph", "--prealign-fixed", "scan"],
    "paper_scan": ["--paper", "--prealign-fixed", "scan"],
}
STEMS = {stem: extra for stem, extra in RECIPES.values()} | SCAN_RECIPES


def job_models(spec: str, work: Path, lr: float, device: str) -> list[dict]:
    """The trainings of one job: ``{"job", "out", "command", "extra", "fixed"}`` per atlas (iterations still a
    placeholder; ``fixed`` the iterations of an ``iN`` job, else None)."""
    data, recipe, *rest = spec.split(":")
    if recipe not in STEMS:
        sys.exit(f"--job {spec}: recipe {recipe!r} is none of {', '.join(STEMS)}")
    grid = next((r.split(",") for r in rest if "," in r), None)
    seed = next((r for r in rest if r.isdigit()), "0")
    fixed = next((int(r[1:]) for r in rest if r.startswith("i") and r[1:].isdigit()), None)
    dataset = DATASETS[data]
    folder = DATA / dataset.folder
    models = []
    for atlas in dict.fromkeys(a for a, _ in pairs(dataset, 1)):
        cohort = atlas_cohort(dataset, atlas, work / data)
        out = work / data / f"{recipe}_{atlas}_seed{seed}{f'_i{fixed}' if fixed else ''}.pt"
        extra = [*STEMS[recipe], *(["--grid", *grid] if grid else []), "--seed", seed]
        command = train_command(
            out,
            cohort,
            folder / "images" / f"{atlas}.nii.gz",
            folder / "labels" / f"{atlas}.nii.gz",
            0,
            lr,
            extra,
            device,
            checkpoint_every=10**6,
        )
        models.append({"job": spec, "out": out, "command": command, "extra": extra, "fixed": fixed})
    return models


def with_iterations(model: dict, total: int, out: Path, teach: bool = True) -> list[str]:
    """``model``'s command for a run of ``total`` iterations in all, its teaching stage (if any, and ``teach``)
    included, written to ``out``."""
    stages = registration_iterations(total, model["extra"]) if teach else ["--iterations", str(total)]
    command = list(model["command"])
    at = command.index("--iterations")
    command[at : at + 2] = stages
    if not teach:
        command += ["--teach-stage", "0"]
    elif model.get("snapshot_every"):
        command += ["--snapshot-every", str(model["snapshot_every"])]
    command[command.index("--out") + 1] = str(out)
    return command


def fitted_iterations(models: list[dict], budget_s: float, margin: float, same: bool, snapshots: int) -> None:
    """Set each model's ``iterations``: its fixed count, or what fits ``budget_s`` at its calibrated speed. With
    ``same``, every fitted model gets the fewest of those; with ``snapshots`` K, that is rounded down to a multiple
    of 100 K (where one fits) and each fitted model keeps K snapshots (``snapshot_every``) along it."""
    for m in models:
        m["iterations"] = m["fixed"] or max(1, int((budget_s - m["startup_s"]) / m["step_s"] * margin))
    fitted = [m for m in models if not m["fixed"]]
    if same and fitted:
        fewest = min(m["iterations"] for m in fitted)
        if snapshots and fewest >= 100 * snapshots:
            fewest -= fewest % (100 * snapshots)
        for m in fitted:
            m["iterations"] = fewest
            if snapshots and fewest % snapshots == 0:
                m["snapshot_every"] = fewest // snapshots


def run_side_by_side(commands: list[list[str]], logs: list[Path]) -> list[float]:
    """Start every command at once (stdout to its log); wait for all; the seconds each took."""
    started = time.perf_counter()
    outputs = [log.open("w") for log in logs]
    processes = [subprocess.Popen(c, stdout=out, stderr=subprocess.STDOUT) for c, out in zip(commands, outputs)]
    seconds = [0.0] * len(processes)
    while any(p.poll() is None for p in processes) or not all(seconds):
        for i, p in enumerate(processes):
            if p.poll() is not None and not seconds[i]:
                seconds[i] = time.perf_counter() - started
                if p.returncode != 0:
                    for other in processes:
                        other.kill()
                    sys.exit(
                        f"training failed ({p.returncode}): {' '.join(commands[i])}\n{logs[i].read_text()[-2000:]}"
                    )
        time.sleep(0.2)
    for out in outputs:
        out.close()
    return seconds


def step_seconds(log: Path) -> float:
    """Seconds per iteration from a JSON-lines training log: the slope between its first and last progress events."""
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    events = [e for e in events if e.get("event") == "progress"]
    (first, at_first), (last, at_last) = [(e["iteration"], e["elapsed_s"]) for e in (events[0], events[-1])]
    if last <= first:
        sys.exit(f"{log}: too few progress events to time an iteration; raise --calibrate")
    return (at_last - at_first) / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", action="append", required=True, metavar="DATA:RECIPE[:X,Y,Z][:SEED][:iN]")
    parser.add_argument(
        "--budget-s", type=float, required=True, help="wall-clock seconds for the real runs, all side by side"
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", default="runs/budget")
    parser.add_argument("--lr", type=float, default=3e-4, help="as benchmarks/accuracy.py")
    parser.add_argument("--calibrate", type=int, default=60, help="iterations of the timing run")
    parser.add_argument("--margin", type=float, default=0.9, help="share of the budget to plan for")
    parser.add_argument("--same-iterations", action="store_true", help="every fitted job trains the fewest that fit")
    parser.add_argument("--snapshots", type=int, default=0, help="with --same-iterations: K snapshots along each run")
    args = parser.parse_args()
    work = Path(args.work)
    models = [m for spec in args.job for m in job_models(spec, work, args.lr, args.device)]
    for m in models:
        if m["out"].exists():
            sys.exit(f"{m['out']}: exists; move it away or choose another --work (nothing is overwritten)")
    logs = [m["out"].with_suffix(".calibrate.log") for m in models]
    calibration = [
        with_iterations(m, args.calibrate, m["out"].with_suffix(".calibrate.pt"), teach=False) for m in models
    ]
    total = run_side_by_side(calibration, logs)
    for m, log, seconds in zip(models, logs, total):
        step = step_seconds(log)
        m["step_s"], m["startup_s"] = step, seconds - step * args.calibrate
        m["out"].with_suffix(".calibrate.pt").unlink()
    fitted_iterations(models, args.budget_s, args.margin, args.same_iterations, args.snapshots)
    final = [with_iterations(m, m["iterations"], m["out"]) for m in models]
    total = run_side_by_side(final, [m["out"].with_suffix(".log") for m in models])
    report = []
    for m, command, seconds in zip(models, final, total):
        row = {
            "job": m["job"],
            "model": str(m["out"]),
            "iterations": m["iterations"],
            "snapshot_every": m.get("snapshot_every", 0),
            "seconds": round(seconds, 1),
            "calibrated_step_s": round(m["step_s"], 4),
            "startup_s": round(m["startup_s"], 1),
            "command": " ".join(command[1:]),
        }
        print(json.dumps(row), flush=True)
        report.append(row)
    (work / "budget.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
