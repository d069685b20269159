"""Train the accuracy benchmark's models side by side on one device, each for as many iterations as fit a wall-clock
budget.

For GPU time of fixed length: every job first runs ``--calibrate`` iterations, all
side by side as the real runs will be, which measures each job's start-up seconds and
seconds per iteration under that load; each job then trains afresh with
``floor((budget - start-up) / seconds per iteration * --margin)`` iterations, so the
learning-rate and loss-coupling schedules (which are shares of the total) run to their end.

A job is ``DATA:RECIPE[:X,Y,Z][:SEED]`` (RECIPE ``ltnet`` or ``voxelmorph``, as in
``benchmarks/accuracy.py``); it trains one model per atlas of DATA, written where
``accuracy.py --model`` finds it: ``--work/<DATA>/<RECIPE>_<atlas>_seed<SEED>.pt``.

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

STEMS = {stem: extra for stem, extra in RECIPES.values()}


def job_models(spec: str, work: Path, lr: float, device: str) -> list[dict]:
    """The trainings of one job: ``{"out", "command"}`` (iterations still a placeholder) per atlas."""
    data, recipe, *rest = spec.split(":")
    grid = next((r.split(",") for r in rest if "," in r), None)
    seed = next((r for r in rest if r.isdigit()), "0")
    dataset = DATASETS[data]
    folder = DATA / dataset.folder
    models = []
    for atlas in dict.fromkeys(a for a, _ in pairs(dataset, 1)):
        cohort = atlas_cohort(dataset, atlas, work / data)
        out = work / data / f"{recipe}_{atlas}_seed{seed}.pt"
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
        models.append({"job": spec, "out": out, "command": command})
    return models


def with_iterations(command: list[str], iterations: int, out: Path) -> list[str]:
    command = list(command)
    command[command.index("--iterations") + 1] = str(iterations)
    command[command.index("--out") + 1] = str(out)
    return command


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
    parser.add_argument("--job", action="append", required=True, metavar="DATA:RECIPE[:X,Y,Z][:SEED]")
    parser.add_argument(
        "--budget-s", type=float, required=True, help="wall-clock seconds for the real runs, all side by side"
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", default="runs/budget")
    parser.add_argument("--lr", type=float, default=3e-4, help="as benchmarks/accuracy.py")
    parser.add_argument("--calibrate", type=int, default=60, help="iterations of the timing run")
    parser.add_argument("--margin", type=float, default=0.9, help="share of the budget to plan for")
    args = parser.parse_args()
    work = Path(args.work)
    models = [m for spec in args.job for m in job_models(spec, work, args.lr, args.device)]
    for m in models:
        if m["out"].exists():
            sys.exit(f"{m['out']}: exists; move it away or choose another --work (nothing is overwritten)")
    logs = [m["out"].with_suffix(".calibrate.log") for m in models]
    calibration = [with_iterations(m["command"], args.calibrate, m["out"].with_suffix(".calibrate.pt")) for m in models]
    total = run_side_by_side(calibration, logs)
    for m, log, seconds in zip(models, logs, total):
        step = step_seconds(log)
        m["step_s"], m["startup_s"] = step, seconds - step * args.calibrate
        m["iterations"] = max(1, int((args.budget_s - m["startup_s"]) / step * args.margin))
        m["out"].with_suffix(".calibrate.pt").unlink()
    final = [with_iterations(m["command"], m["iterations"], m["out"]) for m in models]
    total = run_side_by_side(final, [m["out"].with_suffix(".log") for m in models])
    report = []
    for m, command, seconds in zip(models, final, total):
        row = {
            "job": m["job"],
            "model": str(m["out"]),
            "iterations": m["iterations"],
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
