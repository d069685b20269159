"""Speed on a float32 CPU: where a whole-brain transfer's seconds go, torch beside OpenVINO, and elastix on the pair.

On a CPU without bfloat16 instructions (``ltnet.device.cpu_has_native_bfloat16``) the transfer computes in float32.
This measures, in one process and one run (so the ratios hold on a busy machine), by default at the paper's grid
160x192x224 (the bundled atlas and a sample scan resampled to it, as benchmarks/speed.py does) and with the
bundled demo model's trained networks (fully convolutional, so they run at any grid):

- each stage of ``ltnet.transfer.transfer``: pre-alignment, a pass of ``G_F``, a pass of ``G_B``, the label mapping
  onto the scan grid (``ltnet.scan_labels``), the QC (cycle warps, inverse consistency and the numbers);
- whole transfers: labels only, with the QC, and with the QC without the cycle (``--no-cycle-qc``);
- the U-Net passes and whole transfers in torch and in OpenVINO (``ltnet.fast_inference``), with the share of
  voxels whose label agrees between the two;
- a distilled model's labels (``ltnet distill``'s segmentation network, torch, weights as initialised: the time does
  not depend on them): its pass, the mapping of its probabilities onto the scan grid, and a labels-only transfer;
- bfloat16: measured only where the CPU computes it natively (elsewhere torch emulates it, which no transfer uses);
- elastix (B-spline registration and label warping of the same pair, as in benchmarks/speed.py) when installed;
- one training step at 64x64x64: the torch operations it spends its time in;
- a training step with the networks' weights channels-last (``ltnet.device.ready_for_training``, the default on
  a CPU) against the contiguous layout, at the hippocampus grid 40x48x40 and at 64x64x64, alternating.

    OMP_NUM_THREADS=2 python benchmarks/cpu_speed.py [--threads 2] [--no-train] [--no-write]

Results go to the "speed-float32-cpu" section of docs/BENCHMARKS.md, and the whole transfers' and elastix's seconds
to ``docs/benchmarks/cpu_speed.json``, from which ``benchmarks/summary.py`` writes the README's speed sentence.
"""

import argparse
import contextlib
import copy
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402
from speed import PAPER, elastix, pair  # noqa: E402

from ltnet import fast_inference, sample, training  # noqa: E402
from ltnet import qc as quality  # noqa: E402
from ltnet.data.prepare import prepare_scan  # noqa: E402
from ltnet.device import cpu_has_native_bfloat16, cpu_name, ready_for_inference  # noqa: E402
from ltnet.model_file import LTNetModel, load_model  # noqa: E402
from ltnet.nn.cycle import run_cycle  # noqa: E402
from ltnet.nn.networks import LTNetNetworks, NetworkConfig  # noqa: E402
from ltnet.scan_labels import labels_on_scan  # noqa: E402
from ltnet.segmenter import Segmenter, labels_on_target  # noqa: E402
from ltnet.training import TrainSettings, train  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

TRAIN_GRID = (64, 64, 64)
RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "cpu_speed.json"


def seconds(function, repeats: int = 1):
    """``(seconds, result)`` of ``function()``: the fastest of ``repeats`` calls (the stage rows take the second of
    two, so a first call's one-time costs, such as the memory first touched, do not count), and the last result."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def stage_seconds(function):
    """``seconds`` of a stage row: the second of two calls."""
    return seconds(function, repeats=2)


def with_runtime(runtime: str, function):
    """``function()`` with ``ltnet.fast_inference``'s runtime forced to ``runtime``."""
    saved = os.environ.get(fast_inference.RUNTIME_VARIABLE)
    os.environ[fast_inference.RUNTIME_VARIABLE] = runtime
    try:
        return function()
    finally:
        if saved is None:
            del os.environ[fast_inference.RUNTIME_VARIABLE]
        else:
            os.environ[fast_inference.RUNTIME_VARIABLE] = saved


def the_model(atlas) -> LTNetModel:
    """The demo model's trained networks and reference match with ``atlas`` (on the big grid); random networks if
    it is not built (a reference of 1, which times the QC as well)."""
    if sample.demo_model_path().exists():
        demo = load_model(sample.demo_model_path())
        return LTNetModel(demo.networks, atlas, demo.weights, reference_label_lncc=demo.reference_label_lncc)
    torch.manual_seed(0)
    from ltnet.nn.losses import LossWeights

    return LTNetModel(LTNetNetworks(NetworkConfig()), atlas, LossWeights.paper(), reference_label_lncc=1.0)


def stages(model, target, runtimes: list[str]) -> dict:
    """Seconds of each stage of one transfer (float32 CPU), per runtime where the runtime matters."""
    cpu = torch.device("cpu")
    atlas = model.atlas
    result = {}
    result["prealign"], prepared = stage_seconds(lambda: prepare_scan(target, atlas, True))
    nets = ready_for_inference(model.networks, cpu)
    atlas_t = torch.from_numpy(atlas.image).float()[None, None]
    one_hot = torch.from_numpy(atlas.one_hot).float()[None]
    scan_t = torch.from_numpy(prepared.image).float()[None, None]
    cycles = {}
    for runtime in runtimes:
        passes = with_runtime(runtime, lambda: fast_inference.inference_networks(nets, cpu))
        timed, cycles[runtime] = network_passes(passes, atlas_t, one_hot, scan_t)
        result.update({f"{name}_{runtime}": value for name, value in timed.items()})
    cycle = cycles[runtimes[0]]
    to_grid = prepared.to_scan.GetInverse()
    result["labels"], labels = stage_seconds(
        lambda: labels_on_scan(atlas.channels_sitk(), atlas.values, cycle.forward[0], atlas.grid, target, to_grid)
    )
    # ready_for_inference lays the weights out channels-last; the contiguous layout is what ran before
    contiguous = copy.deepcopy(nets.g_forward).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        result["g_forward_contiguous"], field = stage_seconds(lambda: contiguous(atlas_t, scan_t))
    before = labels_on_scan(atlas.channels_sitk(), atlas.values, field[0], atlas.grid, target, to_grid)
    result["layout_agreement"] = float(np.mean(sitk.GetArrayFromImage(before) == sitk.GetArrayFromImage(labels)))
    identity = SimpleNamespace(g_forward=None, g_backward=lambda moving, fixed: cycle.backward)
    with torch.no_grad():
        result["qc_warps"], _ = stage_seconds(
            lambda: run_cycle(identity, atlas_t, one_hot, scan_t, forward=cycle.forward)
        )

        def numbers():
            consistency = quality.inverse_consistency_mm(cycle, atlas.grid.spacing)
            reference = (model.reference_lncc, model.reference_label_lncc)
            return quality.measure(cycle, atlas_t, one_hot, scan_t, consistency, atlas.labels, reference)

        result["qc_numbers"], _ = stage_seconds(numbers)
    segmenter = distilled(model).segmenter
    result["segmenter"], probabilities = stage_seconds(lambda: segmenter.probabilities(scan_t)[0])
    result["segmenter_labels"], _ = stage_seconds(
        lambda: labels_on_target(probabilities, atlas.values, atlas.grid, target, to_grid)
    )
    return result


def distilled(model: LTNetModel) -> LTNetModel:
    """``model`` with a freshly initialised segmentation network of ``ltnet distill``'s default size."""
    torch.manual_seed(0)
    return replace(model, segmenter=Segmenter.new(len(model.atlas.values)))


def network_passes(passes, atlas_t, one_hot, scan_t) -> tuple[dict, object]:
    """Seconds of a ``G_F`` and a ``G_B`` pass in ``passes`` (``ltnet.fast_inference.InferenceNetworks``), and
    OpenVINO's export and compilation for both; the full cycle."""
    result = {}
    with torch.no_grad():
        if passes.runtime == "openvino":  # once per process and network
            tiny = atlas_t[..., :16, :16, :16].contiguous(), scan_t[..., :16, :16, :16].contiguous()
            result["compile"] = seconds(lambda: passes.g_forward.unet_field(*tiny))[0]
            result["compile"] += seconds(lambda: passes.g_backward.unet_field(*tiny))[0]
        result["g_forward"], forward = stage_seconds(lambda: passes.g_forward(atlas_t, scan_t))
        cycle = run_cycle(passes, atlas_t, one_hot, scan_t, with_backward=False, forward=forward)
        result["g_backward"], _ = stage_seconds(lambda: passes.g_backward(cycle.warped, atlas_t))
        return result, run_cycle(passes, atlas_t, one_hot, scan_t, forward=forward)


#: the whole-transfer rows: ``transfer`` options, and the row's name
WHOLE_TRANSFERS = {
    "labels": ({"qc": False}, "whole transfer, labels only (--no-qc)"),
    "qc": ({"qc": True}, "whole transfer with the QC"),
    "match": ({"qc": True, "qc_cycle": False}, "whole transfer with the QC without the cycle (--no-cycle-qc)"),
}


def whole_transfers(model, target, runtimes: list[str]) -> dict:
    """Seconds of ``transfer`` (pre-alignment included) in each way of ``WHOLE_TRANSFERS``, and the labels'
    agreement between the runtimes; without the ``--extras`` images, as ``ltnet transfer`` runs by default, and from
    one pre-alignment: the demo model's reference match is not this pair's, so its QC may judge it "likely failed"
    and try more pre-alignments, which a good transfer does not."""
    result, labels = {}, {}
    for runtime in runtimes:
        for kind, (options, _) in WHOLE_TRANSFERS.items():
            once = functools.partial(transfer, model, target, extras=False, retry_failed=False, **options)
            result[f"transfer_{kind}_{runtime}"], out = with_runtime(runtime, lambda once=once: seconds(once))
            labels[runtime] = sitk.GetArrayFromImage(out.labels)
    result["transfer_distilled"], _ = seconds(lambda: transfer(distilled(model), target, qc=False, extras=False))
    if len(runtimes) == 2:
        a, b = labels.values()
        result["agreement"] = float(np.mean(a == b))
        result["foreground_voxels"] = int((a > 0).sum())
    return result


LAYOUT_GRIDS = ((40, 48, 40), TRAIN_GRID)


def training_step(grid, layout: torch.memory_format, steps: int = 6) -> float:
    """Seconds of one training step of fresh networks (the demo model's configuration) at ``grid`` with the weights
    in ``layout``: the mean over ``steps`` steps after the first two."""
    atlas, target = pair(grid)
    with layout_for_training(layout):
        times = train_fresh(atlas, target, steps + 2)
    return (times[-1] - times[1]) / steps


def train_fresh(atlas, target, iterations: int) -> list[float]:
    """Train fresh networks of the demo model's configuration (seed 0) on ``atlas`` and ``target`` for
    ``iterations`` iterations; the elapsed seconds after each."""
    torch.manual_seed(0)
    model = the_model(atlas)
    model.networks = LTNetNetworks(model.networks.config)
    times = []
    with tempfile.TemporaryDirectory() as folder:
        train(
            model,
            [sitk.GetArrayFromImage(target)],
            Path(folder) / "m.pt",
            TrainSettings(iterations=iterations, checkpoint_every=10**6),
            torch.device("cpu"),
            lambda event: times.append(event["elapsed_s"]),
        )
    return times


@contextlib.contextmanager
def layout_for_training(layout: torch.memory_format):
    """``ltnet.training.train`` with its networks' weights in ``layout`` (the default puts them channels-last)."""
    chosen = training.ready_for_training

    def ready(networks, device):
        return chosen(networks, device).to(memory_format=layout)

    training.ready_for_training = ready
    try:
        yield
    finally:
        training.ready_for_training = chosen


def training_layouts() -> dict:
    """Seconds of a training step at each of ``LAYOUT_GRIDS``, contiguous and channels-last, the better of two
    rounds that alternate them."""
    layouts = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last_3d}
    result = {}
    for grid in LAYOUT_GRIDS:
        for _ in range(2):
            for name, layout in layouts.items():
                step = training_step(grid, layout)
                result[(grid, name)] = min(step, result.get((grid, name), float("inf")))
    return result


def training_profile(threads: int) -> list[tuple[str, float]]:
    """The torch operations training at ``TRAIN_GRID`` spends its time in: ``[("step_s", seconds of a step after the
    first), (name, share of the CPU time of 3 steps), ...]``, largest first (the share includes the model's
    reference match computed once at the end, one ``G_F`` pass)."""
    from torch.profiler import ProfilerActivity, profile

    atlas, target = pair(TRAIN_GRID)
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        times = train_fresh(atlas, target, 3)
    step = (times[-1] - times[0]) / (len(times) - 1)
    events = [e for e in profiled.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]
    return [("step_s", step)] + [(e.key, e.self_cpu_time_total / total) for e in top]


def row(name: str, values: list[str]) -> str:
    return f"| {name} | " + " | ".join(values) + " |"


def report(
    grid,
    stage: dict,
    whole: dict,
    runtimes: list[str],
    bf16: str,
    elastix_s,
    profile_rows,
    layouts: dict,
    command: str,
    load: float,
) -> str:
    def cell(key):
        return f"{stage[key]:.1f}" if key in stage else "-"

    ratio = (lambda a, b: f"{a / b:.2f}x") if len(runtimes) == 2 else (lambda a, b: "-")
    lines = [
        "### Speed on a float32 CPU",
        "",
        f"CPU: {cpu_name()} ({machine()}). One transfer of a sample scan at the grid "
        f"{grid[0]}x{grid[1]}x{grid[2]} with the demo model's networks, float32. Seconds: each stage row the "
        "second of two calls, each whole transfer one call after them; the ratios hold on a busy machine (both "
        "runtimes measured in the same run). "
        f"Load average during the run: {load:.1f} on {os.cpu_count()} cores (other jobs share the machine when it "
        "exceeds the cores: the pass ratios then hold better than the whole-transfer seconds).",
        "",
        "| stage | " + " | ".join(f"{r} (s)" for r in runtimes) + " | torch / openvino |",
        "| --- | " + " | ".join("---" for _ in runtimes) + " | --- |",
        row("pre-alignment", [cell("prealign")] + ["same"] * (len(runtimes) - 1) + [""]),
        row(
            "G_F pass", [cell(f"g_forward_{r}") for r in runtimes] + [_pair_ratio(stage, "g_forward", runtimes, ratio)]
        ),
        row("G_F pass, weights in the contiguous layout", [cell("g_forward_contiguous")] + [""] * len(runtimes)),
        row(
            "G_B pass (QC)",
            [cell(f"g_backward_{r}") for r in runtimes] + [_pair_ratio(stage, "g_backward", runtimes, ratio)],
        ),
        row("label mapping onto the scan grid", [cell("labels")] + ["same"] * (len(runtimes) - 1) + [""]),
        row("QC warps", [cell("qc_warps")] + ["same"] * (len(runtimes) - 1) + [""]),
        row("QC numbers and maps", [cell("qc_numbers")] + ["same"] * (len(runtimes) - 1) + [""]),
    ]
    lines += [
        row("distilled model: segmentation network pass", [cell("segmenter")] + [""] * len(runtimes)),
        row("distilled model: its labels onto the scan grid", [cell("segmenter_labels")] + [""] * len(runtimes)),
    ]
    if "compile_openvino" in stage:
        lines.append(row("OpenVINO export and compile (once per process)", ["", cell("compile_openvino"), ""]))
    for kind, (_, label) in WHOLE_TRANSFERS.items():
        keys = [f"transfer_{kind}_{r}" for r in runtimes]
        values = [f"{whole[k]:.1f}" for k in keys]
        lines.append(
            row(label + ", pre-alignment included", values + [_pair_ratio(whole, f"transfer_{kind}", runtimes, ratio)])
        )
    lines.append(
        row(
            "distilled model, whole transfer, labels only (--no-qc), pre-alignment included",
            [f"{whole['transfer_distilled']:.1f}"] + [""] * len(runtimes),
        )
    )
    if elastix_s is not None:
        elastix_cell = f"{elastix_s:.1f}" if isinstance(elastix_s, float) else elastix_s
        lines.append(row("elastix B-spline + transformix (all cores)", [elastix_cell] + [""] * len(runtimes)))
    lines += ["", f"bfloat16: {bf16}."]
    for r in runtimes:
        labels_only = whole[f"transfer_labels_{r}"]
        lines.append(
            f"{r}: the QC takes {whole[f'transfer_qc_{r}'] / labels_only:.2f} times a labels-only transfer, "
            f"{whole[f'transfer_match_{r}'] / labels_only:.2f} times without the cycle."
        )
    if "agreement" in whole:
        lines.append(
            f"Labels of the two runtimes agree on {100 * whole['agreement']:.3f} % of the scan's voxels "
            f"({whole['foreground_voxels']} labelled)."
        )
    lines.append(
        "The torch rows run the weights channels-last (`ltnet.device.ready_for_inference`); with the contiguous "
        f"layout the labels agree with theirs on {100 * stage['layout_agreement']:.3f} % of the scan's voxels."
    )
    if profile_rows:
        (_, step), *ops = profile_rows
        lines += [
            "",
            f"One training step at {TRAIN_GRID[0]}x{TRAIN_GRID[1]}x{TRAIN_GRID[2]} (G_F, G_B, D, losses, backward, "
            f"optimiser): {step:.2f} s. The largest shares of the CPU time of 3 steps, by torch operation:",
            "",
            "| torch operation | share |",
            "| --- | --- |",
        ] + [row(name, [f"{100 * share:.1f} %"]) for name, share in ops]
    if layouts:
        lines += [
            "",
            "A training step by the networks' weight layout, each the better of two rounds that alternate the layouts "
            "(channels-last is what `ltnet train` uses on a CPU, `ltnet.device.ready_for_training`):",
            "",
            "| grid | contiguous (s) | channels-last (s) | contiguous / channels-last |",
            "| --- | --- | --- | --- |",
        ]
        for g in LAYOUT_GRIDS:
            before, after = layouts[(g, "contiguous")], layouts[(g, "channels_last")]
            lines.append(row(f"{g[0]}x{g[1]}x{g[2]}", [f"{before:.2f}", f"{after:.2f}", f"{before / after:.2f}x"]))
    lines += ["", f"Command: `{command}`"]
    return "\n".join(lines)


def _pair_ratio(values: dict, key: str, runtimes: list[str], ratio) -> str:
    if len(runtimes) != 2:
        return "-"
    return ratio(values[f"{key}_{runtimes[0]}"], values[f"{key}_{runtimes[1]}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenVINO threads (default 2)")
    parser.add_argument("--grid", type=int, nargs=3, default=PAPER, help="network grid x y z (default 160 192 224)")
    parser.add_argument("--no-train", action="store_true", help="skip the training-step profile and layouts")
    parser.add_argument("--no-elastix", action="store_true", help="skip elastix")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runtimes = ["torch"] + (["openvino"] if fast_inference._openvino() is not None else [])
    grid = tuple(args.grid)
    atlas, target = pair(grid)
    model = the_model(atlas)
    print("stages", file=sys.stderr, flush=True)
    stage = stages(model, target, runtimes)
    print(stage, file=sys.stderr, flush=True)
    whole = whole_transfers(model, target, runtimes)
    print(whole, file=sys.stderr, flush=True)
    bf16 = (
        'this CPU computes it natively; see the "speed" section'
        if cpu_has_native_bfloat16()
        else "not measured: this CPU has no bfloat16 instructions (torch would emulate them), so transfers run float32"
    )
    elastix_s = None
    if not args.no_elastix:
        if shutil.which("elastix") is None:
            elastix_s = "not installed"
        else:
            elastix_s = float(elastix(grid, torch.device("cpu"), 1)["transfer_s"])
        print("elastix", elastix_s, file=sys.stderr, flush=True)
    profile_rows = [] if args.no_train else training_profile(args.threads)
    layouts = {} if args.no_train else training_layouts()
    print(layouts, file=sys.stderr, flush=True)
    command = "OMP_NUM_THREADS={0} python benchmarks/cpu_speed.py --threads {0}".format(args.threads) + (
        (" --no-train" if args.no_train else "") + (f" --grid {' '.join(map(str, grid))}" if grid != PAPER else "")
    )
    section = report(grid, stage, whole, runtimes, bf16, elastix_s, profile_rows, layouts, command, os.getloadavg()[1])
    print(section)
    if not args.no_write:
        write_section("speed-float32-cpu", section)
        write_results(RESULTS, grid, args.threads, runtimes, whole, elastix_s, command)


def write_results(path: Path, grid, threads: int, runtimes: list[str], whole: dict, elastix_s, command: str) -> None:
    """The whole transfers' seconds per runtime and elastix's, with the CPU they ran on, as JSON."""
    results = {
        "cpu": cpu_name(),
        "threads": threads,
        "grid": list(grid),
        "seconds": {
            kind: {runtime: round(whole[f"transfer_{kind}_{runtime}"], 2) for runtime in runtimes}
            for kind in WHOLE_TRANSFERS
        },
        "elastix_seconds": round(elastix_s, 2) if isinstance(elastix_s, float) else None,
        "command": command,
    }
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
