"""``ltnet transfer``: atlas labels onto each target, with QC and optional extra outputs."""

import json
import sys
from pathlib import Path

import SimpleITK as sitk
import torch

from ltnet import distributed
from ltnet.batch_transfer import Job, run_batch
from ltnet.data.io import write_image, write_label_map
from ltnet.data.prepare import Atlas
from ltnet.device import pick_device
from ltnet.errors import LTNetError
from ltnet.model_file import load_model
from ltnet.paths import expand_images, output_paths, stem
from ltnet.progress import reporter
from ltnet.transfer import TransferResult


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model file written by `ltnet train`")
    parser.add_argument("--target", required=True, nargs="+", help="scans to label: files, DICOM folders or globs")
    parser.add_argument(
        "--out", required=True, help="label map file for one target (.nii.gz, .nrrd, .seg.nrrd) or a folder for several"
    )
    parser.add_argument("--qc", help="QC JSON file for one target, or a folder for several")
    parser.add_argument(
        "--extras", help="folder for the warped and reconstructed atlas, field, Jacobian and inverse-consistency maps"
    )
    parser.add_argument(
        "--format",
        choices=("nii.gz", "nrrd", "seg.nrrd"),
        help="label file type in an --out folder (default: the target's own)",
    )
    parser.add_argument("--atlas-image", help="use this atlas instead of the model's (with --atlas-labels)")
    parser.add_argument("--atlas-labels", help="the label map of --atlas-image (integer NIfTI/NRRD or .seg.nrrd)")
    parser.add_argument(
        "--no-qc",
        action="store_true",
        help="labels only: skip the backward network and the quality checks (about twice as fast)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--no-prealign", action="store_true", help="skip the affine pre-alignment to the atlas")
    parser.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="N",
        help="test-time refinement: optimise the forward map on each target for N steps first, on a grid as fine as the scans allow (default 0). On the benchmarks, 3 steps gave most of the gain: +0.017 mean Dice for under 0.1 CPU seconds per hippocampus crop, +0.09 for about 3 s per brain with a 4 mm network grid; 20 steps +0.025 for 0.4 s and +0.10 for 16 s. About 9 s a step on a CPU for a 160x192x224 grid: use a GPU there",
    )
    parser.add_argument("--progress", choices=("bar", "jsonl"), default="bar")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes that read and pre-align the next targets while one is computed (default 2; 0: none)",
    )


def run(args) -> int:
    """Label every target; under ``torchrun`` each rank takes ``targets[rank::world_size]`` (docs/SCALE.md)."""
    ranks = distributed.from_environment()
    device = pick_device(args.device, announce=ranks.is_main or ranks.local_rank == 0, local_rank=ranks.local_rank)
    model = load_model(args.model, device)
    if bool(args.atlas_image) != bool(args.atlas_labels):
        raise LTNetError("--atlas-image and --atlas-labels: give both to replace the model's atlas, or neither.")
    if args.refine < 0:
        raise LTNetError(f"--refine {args.refine}: give 0 or more steps.")
    if args.no_qc and (args.qc or args.extras):
        raise LTNetError("--no-qc: leave out --qc and --extras, which need the quality checks.")
    if args.workers < 0:
        raise LTNetError(f"--workers {args.workers}: give 0 or more.")
    if args.atlas_image:
        # another atlas, on a grid as large (in voxels) as the model's
        model.atlas = Atlas.from_files(
            args.atlas_image, args.atlas_labels, model.grid.size, model.networks.config.grid_multiple
        )
    targets = expand_images(args.target, "--target")
    outputs = output_paths(targets, args.out, "." + (args.format or "nii.gz"), keep_names=not args.format)
    qc_outputs = output_paths(targets, args.qc, ".json") if args.qc else [None] * len(targets)
    extras = Path(args.extras) if args.extras else None
    if extras:
        extras.mkdir(parents=True, exist_ok=True)
    jobs = ranks.shard([Job(*paths) for paths in zip(targets, outputs, qc_outputs)])
    progress = reporter(args.progress, "transfer") if ranks.is_main else None
    ranking = []

    def write(job: Job, result: TransferResult) -> None:
        write_label_map(result.labels, job.output, model.labels)
        if job.qc_output:
            job.qc_output.write_text(json.dumps(result.qc, indent=2))
        if extras:
            write_extras(result, model, extras / stem(job.target))

    def on_done(done: int, job: Job, result: TransferResult) -> None:
        if result.qc is not None:
            ranking.append((result.qc["score"], result.qc["verdict"], str(job.target)))
        if progress:  # rank 0 counts its own share (all targets in one process)
            progress({"event": "progress", "done": done, "total": len(jobs), "target": str(job.target)})

    with distributed.session(ranks, device):
        try:
            seconds = run_batch(
                model,
                jobs,
                device,
                not args.no_prealign,
                write,
                on_done,
                args.workers,
                args.refine,
                not args.no_qc,
                bool(extras),
            )
        except torch.cuda.OutOfMemoryError as error:
            raise LTNetError(
                f"{args.model}: the GPU ran out of memory at grid {model.grid.size}; use --device cpu, or a model trained on a smaller --grid."
            ) from error
        ranking = distributed.gather_lists(ranking)
        rates = distributed.gather_lists([(len(jobs), seconds)])
    if not progress:
        return 0
    progress({"event": "done"})
    progress.close()
    if len(targets) > 1 and args.progress == "bar" and ranking:
        print("QC, worst first:", file=sys.stderr)
        for score, verdict, target in sorted(ranking):
            print(f"  {score:.3f}  {verdict:<13}  {target}", file=sys.stderr)
    slowest = max(seconds for _, seconds in rates)
    print(
        f"ltnet: {len(targets)} scan(s) in {slowest:.1f} s, {60 * len(targets) / max(slowest, 1e-9):.1f} scans/min ({len(rates)} process(es))",
        file=sys.stderr,
    )
    return 0


def write_extras(result: TransferResult, model, prefix: Path) -> None:
    """The images behind the cycle-consistency overlays, named ``<prefix>_<what>.nrrd``, and the field as a transform."""
    images = {
        "warped_atlas": result.warped_atlas,
        "reconstructed_atlas": result.reconstructed_atlas,
        "reconstructed_labels": result.reconstructed_labels,
        "atlas": model.atlas_image,
        "atlas_labels": model.atlas_labels,
        "jacobian": result.jacobian,
        "inverse_consistency": result.inverse_consistency,
    }
    for name, image in images.items():
        write_image(image, f"{prefix}_{name}.nrrd")
    sitk.WriteTransform(sitk.DisplacementFieldTransform(sitk.Image(result.field)), f"{prefix}_field.h5")
