"""How long a training takes: durations as text, seconds per iteration measured from the progress lines,
and an estimate before a training starts.

Progress lines (`ltnet train --progress jsonl`) carry `iteration`, `total`, `elapsed_s` (seconds since the
training loop started) and `eta_s`.
"""


def formatDuration(seconds):
    """'1 h 02 min', '3 min 05 s', '42 s'; '' for None."""
    if seconds is None:
        return ""
    seconds = int(round(max(0.0, float(seconds))))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def secondsPerIteration(progressEvents):
    """Seconds per iteration from progress events (dicts), or None before the first one.

    From two events or more: the time between the first and the last over the iterations between them, so
    the start-up (reading, pre-alignment, the first step's set-up) does not count. From one event: its
    `eta_s` over the iterations left (ltnet's mean since the loop started), else its `elapsed_s` over its
    iteration.
    """
    events = [event for event in progressEvents if "iteration" in event and "elapsed_s" in event]
    if not events:
        return None
    first, last = events[0], events[-1]
    iterations = int(last["iteration"]) - int(first["iteration"])
    if iterations > 0:
        return max(0.0, float(last["elapsed_s"]) - float(first["elapsed_s"])) / iterations
    left = int(last.get("total", 0)) - int(last["iteration"])
    if left > 0 and last.get("eta_s") is not None:
        return float(last["eta_s"]) / left
    return float(last["elapsed_s"]) / max(1, int(last["iteration"]))


class SpeedMemory:
    """Seconds per iteration measured by the trainings since Slicer started, by setting key (device, grid, atlas),
    for an estimate of the next training's time before it starts."""

    def __init__(self):
        self.measured = {}

    def record(self, key, seconds):
        if seconds:
            self.measured[key] = float(seconds)

    def estimateText(self, key, iterations, measuredBy="training with this device, grid and atlas", typical=None):
        """'About 12 min 00 s (600 iterations x 1.2 s, measured ...)', or how the time will be known.
        `measuredBy` says which earlier run measured the speed; `typical` is the scale given before any run
        (TYPICAL_SPEED by default)."""
        seconds = self.measured.get(key)
        if seconds is None:
            return (
                f"Time: {iterations} iterations; the ETA shows after the first iterations, measured on this "
                f"computer. {typical or TYPICAL_SPEED}"
            )
        return (
            f"Time: about {formatDuration(iterations * seconds)} ({iterations} iterations x {seconds:.2g} s, "
            f"measured by the last {measuredBy})."
        )


# Measured with `ltnet train --init demo_model.pt --teach 10 --grid 64 64 64 --device cpu` on the bundled sample's
# ten scans, float32, one thread on a busy shared 2-core machine: iterations 1-6 took 14 to 29 s each (each first
# draw of a scan also computes its refined map once).
TYPICAL_SPEED = (
    "For scale: fine-tuning with teaching on a 64x64x64 grid took 14 to 29 s per iteration in its first iterations "
    "on one core of a busy 2-core CPU; a GPU is many times faster."
)

# docs/BENCHMARKS.md and docs/CLI.md, "Distillation": MONAI's UNet took 0.47 s per iteration at the hippocampus grid
# (40x48x40) on one CPU core; 2000 iterations on the 59-scan cohort took 11 min wall.
TYPICAL_DISTILL_SPEED = (
    "For scale: distillation took 0.47 s per iteration at the hippocampus grid (40x48x40) on one CPU core "
    "(2000 iterations: 11 min, after the cohort's transfers are computed once); a GPU is many times faster."
)
