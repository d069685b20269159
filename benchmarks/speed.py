"""Speed: seconds per transfer, training iterations per second and peak memory, LT-Net beside VoxelMorph and elastix.

For each grid (the hippocampus grid 40x48x40 and the paper's 160x192x224, x y z):
- LT-Net transfer: ``ltnet.transfer.transfer`` on one scan whose own grid has the same
  size: labels only (G_F and label warping onto the scan grid, ``ltnet transfer --no-qc``),
  with the QC (also G_B and the checks, the default), with the ``--extras`` images, and
  labels only after ``REFINE_STEPS`` steps of test-time refinement (``--refine``);
  pre-alignment timed apart;
- LT-Net training step: the full step of ``ltnet.training.train`` (G_F, G_B and D);
- VoxelMorph: ``VxmPairwise`` (the PyTorch ``VxmDense`` of the ``voxelmorph`` package,
  renamed in 0.3) on the same grid: forward + warp, and one training step (L_sim + L_smooth);
- elastix (the ``elastix``/``transformix`` programs): one B-spline registration of the
  same pair and the label warping with its result.
A CUDA run writes its own section ("speed-cuda"), beside the CPU one. Each measurement runs in its own process, so its
peak memory is its own (peak GPU
memory allocated by torch on a GPU; peak resident memory of the process on a CPU).

    python benchmarks/speed.py [--device auto|cpu|cuda] [--train-grid X Y Z] [--no-write]

On a CPU the training step at the paper's grid is slow (minutes) and needs more
memory than small machines have; ``--train-grid`` (default on a CPU: 80 96 112, an
eighth of the voxels) says which grid the big training row uses. Results go to the
"speed" section of docs/BENCHMARKS.md, with the device they were measured on.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, write_section  # noqa: E402

from ltnet import sample  # noqa: E402
from ltnet.data.grid import resample  # noqa: E402
from ltnet.data.intensity import normalise  # noqa: E402
from ltnet.data.io import read_image, read_label_map  # noqa: E402
from ltnet.data.prealign import affine_prealign  # noqa: E402
from ltnet.data.prepare import Atlas  # noqa: E402
from ltnet.device import inference_precision, mixed_precision, ready_for_inference  # noqa: E402
from ltnet.model_file import LTNetModel  # noqa: E402
from ltnet.nn import losses  # noqa: E402
from ltnet.nn.cycle import run_cycle  # noqa: E402
from ltnet.nn.losses import LossWeights  # noqa: E402
from ltnet.nn.networks import LTNetNetworks, NetworkConfig  # noqa: E402
from ltnet.training import TrainSettings, train  # noqa: E402
from ltnet.transfer import transfer  # noqa: E402

HIPPOCAMPUS = (40, 48, 40)
PAPER = (160, 192, 224)
REFINE_STEPS = 20  # the refinement the accuracy benchmark scores
ELASTIX_BSPLINE = """(Registration "MultiResolutionRegistration")
(Metric "AdvancedMattesMutualInformation")
(Transform "BSplineTransform")
(Optimizer "AdaptiveStochasticGradientDescent")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Interpolator "BSplineInterpolator")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(ImageSampler "RandomCoordinate")
(NumberOfResolutions 3)
(FinalGridSpacingInPhysicalUnits 10.0)
(MaximumNumberOfIterations 250)
(NumberOfSpatialSamples 2048)
(NewSamplesEveryIteration "true")
(NumberOfHistogramBins 32)
(FinalBSplineInterpolationOrder 3)
(WriteResultImage "false")
(ResultImageFormat "mha")
(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
"""


# ---- the pair every method sees --------------------------------------------------------------------------------


def pair(grid):
    """The sample atlas on a network grid of ``grid`` voxels, and a sample scan as a target of the same size."""
    atlas_image = read_image(sample.atlas_image_path())
    atlas = Atlas.on_grid(
        atlas_image, read_label_map(sample.atlas_labels_path(), atlas_image), grid, NetworkConfig().grid_multiple
    )
    target = resample(normalise(read_image(sample.scan_paths()[0])), atlas.grid.reference())
    return atlas, target


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device, repeats: int) -> float:
    """Mean seconds of ``function()`` over ``repeats`` calls after one warm-up call (warm-up only on a GPU)."""
    if device.type == "cuda":
        function()
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    sync(device)
    return (time.perf_counter() - started) / repeats


# ---- one measurement per process --------------------------------------------------------------------------------


def ltnet_transfer(grid, device, repeats):
    atlas, target = pair(grid)
    torch.manual_seed(0)
    model = LTNetModel(LTNetNetworks(NetworkConfig()), atlas, LossWeights.paper())
    nets = ready_for_inference(model.networks, device)
    atlas_t = torch.from_numpy(atlas.image)[None, None].to(device)
    one_hot = torch.from_numpy(atlas.one_hot)[None].to(device)
    scan = torch.from_numpy(sitk.GetArrayFromImage(target))[None, None].to(device)

    def forward_network_only():
        with torch.no_grad(), inference_precision(device):
            run_cycle(nets, atlas_t, one_hot, scan, with_backward=False)

    started = time.perf_counter()
    affine_prealign(atlas.image_sitk(), target, fixed=atlas.prealign_fixed)
    prealign_s = time.perf_counter() - started
    return {
        "grid": list(atlas.grid.size),
        "transfer_s": timed(
            lambda: transfer(model, target, device, prealign=False, qc=False, extras=False), device, repeats
        ),
        "qc_s": timed(lambda: transfer(model, target, device, prealign=False, qc=True, extras=False), device, repeats),
        "extras_s": timed(
            lambda: transfer(model, target, device, prealign=False, qc=True, extras=True), device, repeats
        ),
        "refine_s": timed(
            lambda: transfer(model, target, device, prealign=False, refine_steps=REFINE_STEPS, qc=False, extras=False),
            device,
            repeats,
        ),
        "networks_s": timed(forward_network_only, device, repeats),
        "prealign_s": prealign_s,
    }


def ltnet_train(grid, device, repeats, checkpointing=False):
    atlas, target = pair(grid)
    torch.manual_seed(0)
    model = LTNetModel(LTNetNetworks(NetworkConfig()), atlas, LossWeights.paper())
    times = []
    with tempfile.TemporaryDirectory() as folder:
        settings = TrainSettings(iterations=repeats + 1, checkpoint_every=10**6, checkpointing=checkpointing)
        train(
            model,
            [sitk.GetArrayFromImage(target)],
            Path(folder) / "m.pt",
            settings,
            device,
            lambda e: times.append((e["iteration"], e["elapsed_s"])),
        )
    (first, at_first), (last, at_last) = times[0], times[-1]  # on a GPU not every iteration reports
    step = (at_last - at_first) / (last - first)  # iterations after the first (warm-up, allocation)
    return {"grid": list(atlas.grid.size), "iterations_per_s": 1 / step, "step_s": step, "checkpointing": checkpointing}


def _vxm_tensors(grid, device):
    """Atlas image, one-hot labels and scan on the grid, zero-padded to a multiple of 32 (the default VxmPairwise
    U-Net)."""
    atlas, target = pair(grid)
    arrays = [atlas.image[None, None], atlas.one_hot[None], sitk.GetArrayFromImage(target)[None, None]]
    pad = [(0, 0), (0, 0)] + [(0, -n % 32) for n in atlas.image.shape]
    return [torch.from_numpy(np.pad(a, pad)).float().to(device) for a in arrays]


def _voxelmorph(device):
    import voxelmorph

    torch.manual_seed(0)
    return voxelmorph.nn.models.VxmPairwise(ndim=3, source_channels=1, target_channels=1, device=str(device)).to(device)


def vxm_transfer(grid, device, repeats):
    from voxelmorph.nn.functional import spatial_transform

    atlas_t, one_hot, scan = _vxm_tensors(grid, device)
    net = ready_for_inference(_voxelmorph(device), device)

    def run():
        with torch.no_grad(), inference_precision(device):
            field = net(atlas_t, scan)
            spatial_transform(one_hot, field[0])  # all label channels, linear

    return {"grid": list(atlas_t.shape[:1:-1]), "transfer_s": timed(run, device, repeats)}


def vxm_train(grid, device, repeats):
    atlas_t, _, scan = _vxm_tensors(grid, device)
    net = _voxelmorph(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step():
        with mixed_precision(device):
            warped, field = _warped_and_field(net, atlas_t, scan)
            loss = losses.similarity(scan, warped) + losses.smoothness(field)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (allocation), as for LT-Net
    seconds = timed(step, device, repeats)
    return {"grid": list(atlas_t.shape[:1:-1]), "iterations_per_s": 1 / seconds, "step_s": seconds}


def _warped_and_field(net, atlas_t, scan):
    out = net(atlas_t, scan, return_warped_source=True)
    field, warped = (out[0], out[1]) if out[0].shape[1] == 3 else (out[1], out[0])
    return warped, field


def elastix(grid, device, repeats):
    atlas, target = pair(grid)
    program = shutil.which("elastix")
    if program is None:
        return {"skipped": "elastix is not installed (apt-get install elastix)"}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        sitk.WriteImage(target, str(folder / "fixed.mha"))
        sitk.WriteImage(atlas.image_sitk(), str(folder / "moving.mha"))
        sitk.WriteImage(atlas.labels_sitk(), str(folder / "labels.mha"))
        (folder / "bspline.txt").write_text(ELASTIX_BSPLINE)
        started = time.perf_counter()
        subprocess.run(
            [
                program,
                "-f",
                folder / "fixed.mha",
                "-m",
                folder / "moving.mha",
                "-p",
                folder / "bspline.txt",
                "-out",
                folder,
            ],
            check=True,
            capture_output=True,
        )
        parameters = folder / "TransformParameters.0.txt"
        text = parameters.read_text().replace(
            "(FinalBSplineInterpolationOrder 3)", "(FinalBSplineInterpolationOrder 0)"
        )
        parameters.write_text(text)  # nearest neighbour for labels
        subprocess.run(
            ["transformix", "-in", folder / "labels.mha", "-tp", parameters, "-out", folder],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
    return {"grid": list(atlas.grid.size), "transfer_s": seconds, "threads": os.cpu_count()}


MEASUREMENTS = {f.__name__: f for f in (ltnet_transfer, ltnet_train, vxm_transfer, vxm_train, elastix)}


def measure_here(name, grid, device, repeats, checkpointing) -> dict:
    """Run one measurement in this process and add its peak memory."""
    device = torch.device(device)
    extra = {"checkpointing": checkpointing} if name == "ltnet_train" else {}
    result = MEASUREMENTS[name](tuple(grid), device, repeats, **extra)
    if device.type == "cuda":
        result["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        result["memory_kind"] = "GPU"
    else:
        result["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        result["memory_kind"] = "RSS"
    return result


def measure(name, grid, device, repeats, checkpointing=False) -> dict:
    """One measurement in a fresh process (its own peak memory); ``{"error": ...}`` if it failed."""
    command = [
        sys.executable,
        __file__,
        "--measure",
        name,
        "--grid",
        *map(str, grid),
        "--device",
        str(device),
        "--repeats",
        str(repeats),
    ]
    if checkpointing:
        command.append("--checkpointing")
    print("running", name, grid, "checkpointing" if checkpointing else "", file=sys.stderr, flush=True)
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        return {"error": (run.stderr.strip().splitlines() or ["failed"])[-1]}
    result = run.stdout.strip().splitlines()[-1]
    print(result, file=sys.stderr, flush=True)  # each result as it comes: a run cut short keeps them
    return json.loads(result)


# ---- the report ------------------------------------------------------------------------------------------------


def table(rows) -> str:
    lines = [
        "| method | what | grid (x y z) | time | per second | peak memory | vs LT-Net |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, what, result, reference in rows:
        if "error" in result or "skipped" in result:
            lines.append(f"| {method} | {what} | | {result.get('error') or result.get('skipped')} | | | |")
            continue
        seconds = result.get("transfer_s", result.get("step_s"))
        rate = (
            f"{result['iterations_per_s']:.3g} it/s"
            if "iterations_per_s" in result
            else f"{60 / seconds:.3g} scans/min"
        )
        ratio = f"{seconds / reference:.2f}×" if reference else "1×"
        grid = " ".join(map(str, result["grid"]))
        lines.append(
            f"| {method} | {what} | {grid} | {seconds:.3g} s | {rate} | "
            f"{result['peak_gib']:.2f} GiB {result['memory_kind']} | {ratio} |"
        )
    return "\n".join(lines)


def goals(rows, device) -> list[str]:
    """The speed and memory goals at the paper's grid, checked against this run's rows there."""
    paper = [r for m, w, r, _ in rows if m == "LT-Net" and r.get("grid") == list(PAPER)]
    lines = []
    transfer_row = next((r for r in paper if "networks_s" in r), None)
    if transfer_row:
        limit = 0.5 if device.type == "cuda" else 30.0
        verdict = "met" if transfer_row["transfer_s"] <= limit else "NOT met"
        lines.append(
            f"Goal: a transfer at 160x192x224 in at most {limit} s on this device: {transfer_row['transfer_s']:.3g} s "
            f"(labels, `--no-qc`), {verdict}; {transfer_row['qc_s']:.3g} s with the QC."
        )
    for r in paper:
        if "step_s" in r and r.get("memory_kind") == "GPU":
            fits = "fits" if r["peak_gib"] <= 24 else "does NOT fit"
            lines.append(
                f"Goal: a training step at 160x192x224 {'with' if r['checkpointing'] else 'without'} --checkpointing "
                f"{fits} in 24 GB ({r['peak_gib']:.1f} GiB)."
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--train-grid",
        type=int,
        nargs=3,
        help="grid of the big training rows (default: the paper's on a GPU, 80 96 112 on a CPU)",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--no-write", action="store_true", help="print the section instead of writing docs/BENCHMARKS.md"
    )
    parser.add_argument("--measure", choices=sorted(MEASUREMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--grid", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_here(args.measure, args.grid, args.device, args.repeats, args.checkpointing)))
        return
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    train_grid = tuple(args.train_grid or (PAPER if device.type == "cuda" else (80, 96, 112)))
    rows, notes = (
        [],
        [
            f"Load average when the run started: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
            "(other jobs slow every row alike)."
        ],
    )
    for grid, big_train in ((HIPPOCAMPUS, HIPPOCAMPUS), (PAPER, train_grid)):
        lt = measure("ltnet_transfer", grid, device, args.repeats)
        rows.append(("LT-Net", "transfer: G_F + label warping (`--no-qc`)", lt, None))
        if "networks_s" in lt:
            rows.append(("LT-Net", "  of which G_F alone", {**lt, "transfer_s": lt["networks_s"]}, lt["transfer_s"]))
            rows.append(
                (
                    "LT-Net",
                    "affine pre-alignment (ITK, one thread; vs G_F alone)",
                    {**lt, "transfer_s": lt["prealign_s"]},
                    lt["networks_s"],
                )
            )
            rows.append(
                (
                    "LT-Net",
                    "transfer with QC (G_B, checks; the default)",
                    {**lt, "transfer_s": lt["qc_s"]},
                    lt["transfer_s"],
                )
            )
            rows.append(
                (
                    "LT-Net",
                    "transfer with QC and `--extras` images",
                    {**lt, "transfer_s": lt["extras_s"]},
                    lt["transfer_s"],
                )
            )
            rows.append(
                (
                    "LT-Net",
                    f"labels after `--refine {REFINE_STEPS}`",
                    {**lt, "transfer_s": lt["refine_s"]},
                    lt["transfer_s"],
                )
            )
            verdict = "met" if lt["prealign_s"] <= lt["networks_s"] else "NOT met"
            notes.append(
                f"Pre-alignment at {' '.join(map(str, lt['grid']))}: {lt['prealign_s']:.2f} s against G_F's "
                f"{lt['networks_s']:.2f} s in the same run (goal: at most G_F's pass, {verdict}); the transfer rows "
                "above leave it out."
            )
        rows.append(
            (
                "VoxelMorph VxmPairwise",
                "forward + label warping (network grid)",
                measure("vxm_transfer", grid, device, args.repeats),
                lt.get("transfer_s"),
            )
        )
        rows.append(
            (
                "elastix 5 B-spline",
                "registration + transformix labels",
                measure("elastix", grid, device, 1),
                lt.get("transfer_s"),
            )
        )
        repeats = args.repeats if big_train == HIPPOCAMPUS or device.type == "cuda" else 1
        train_lt = measure("ltnet_train", big_train, device, repeats)
        rows.append(("LT-Net", "training step (G_F, G_B, D)", train_lt, None))
        rows.append(
            (
                "LT-Net",
                "training step, --checkpointing",
                measure("ltnet_train", big_train, device, repeats, True),
                train_lt.get("step_s"),
            )
        )
        rows.append(
            (
                "VoxelMorph VxmPairwise",
                "training step (L_sim + L_smooth)",
                measure("vxm_train", big_train, device, repeats),
                train_lt.get("step_s"),
            )
        )
    notes += goals(rows, device)
    section = "\n\n".join(
        [
            f"## Speed{' on a GPU' if device.type == 'cuda' else ''}\n\n"
            'Written by `benchmarks/speed.py`; "vs LT-Net" is the time ratio to the LT-Net row above it, '
            "measured in the same run on the same device.",
            f"Device: {machine()}.",
            table(rows),
            "\n".join(f"- {note}" for note in notes),
        ]
    )
    print(section)
    if not args.no_write:
        write_section("speed-cuda" if device.type == "cuda" else "speed", section)  # a GPU run keeps the CPU section


if __name__ == "__main__":
    main()
