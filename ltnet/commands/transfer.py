"""``ltnet transfer``: atlas labels onto each target, with QC and optional extra outputs."""

import json
import sys

import SimpleITK as sitk
import torch

from ltnet import distributed
from ltnet.batch_transfer import run_batch
from ltnet.data.io import atomic_write, read_image, write_image, write_label_map, write_text
from ltnet.data.prepare import Atlas
from ltnet.device import pick_device
from ltnet.errors import LTNetError
from ltnet.input_checks import ALLOW_FLAG
from ltnet.model_file import load_model
from ltnet.outputs import Job, create_folders, jobs_to_run, plan_jobs
from ltnet.paths import expand_images
from ltnet.progress import reporter, start_event
from ltnet.transfer import TransferResult


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="a model file written by `ltnet train`")
    parser.add_argument("--target", required=True, nargs="+", help="scans to label: files, DICOM folders or globs")
    parser.add_argument(
        "--out",
        required=True,
        help="label map file for one target (.nii.gz, .nrrd, .seg.nrrd) or a folder for several: one file per target "
        "named after it; targets of the same name get their parent folder's name in front (pat1_T1, pat2_T1)",
    )
    parser.add_argument("--qc", help="QC JSON file for one target, or a folder for several (named as the label maps)")
    parser.add_argument(
        "--extras", help="folder for the warped and reconstructed atlas, field, Jacobian and inverse-consistency maps"
    )
    parser.add_argument(
        "--format",
        choices=("nii.gz", "nrrd", "seg.nrrd"),
        help="label file type in an --out folder (default: the target's own)",
    )
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", action="store_true", help="replace output files that exist (by default they are refused)"
    )
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep the targets whose label map (and QC file, with --qc) exist, and label only the others: "
        "restarts a stopped cohort run",
    )
    parser.add_argument("--atlas-image", help="use this atlas instead of the model's (with --atlas-labels)")
    parser.add_argument("--atlas-labels", help="the label map of --atlas-image (integer NIfTI/NRRD or .seg.nrrd)")
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="accept targets (and --atlas-image) that look like label maps (integer images with few values, or "
        "segmentations), which are refused by default",
    )
    parser.add_argument(
        "--no-qc",
        action="store_true",
        help="labels only: skip the backward network and the quality checks (faster; docs/BENCHMARKS.md, 'Speed')",
    )
    parser.add_argument(
        "--no-cycle-qc",
        action="store_true",
        help="the QC score and verdict without the backward network: the image match and folding only, no cycle "
        "numbers (on a whole-brain grid a transfer takes about half as long as with the full QC; docs/QC.md)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--no-prealign", action="store_true", help="skip the affine pre-alignment to the atlas")
    parser.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="N",
        help="test-time refinement: fit the forward map to each target for N steps first, on a grid as fine as the "
        "scans allow (default 0). A few steps give most of the gain; each step costs far more on a whole brain "
        "than on a small crop, where a GPU helps (gains and times: docs/BENCHMARKS.md, 'Accuracy' and 'Speed')",
    )
    parser.add_argument(
        "--progress",
        choices=("bar", "jsonl"),
        default="bar",
        help="a bar for people or JSON lines for programs (docs/CORE_CONTRACT.md)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes that read and pre-align the next targets while one is computed (default 2; 0: none)",
    )


def run(args) -> int:
    """Label every target; under ``torchrun`` each rank takes ``targets[rank::world_size]`` (docs/SCALE.md).

    Every output name and the check on existing outputs are settled for all targets before the first is computed.
    """
    _check_arguments(args)
    ranks = distributed.from_environment()
    targets = expand_images(args.target, "--target")
    all_jobs = plan_jobs(targets, args.out, "." + args.format if args.format else None, args.qc, args.extras)
    todo = jobs_to_run(all_jobs, args.overwrite, args.skip_existing)
    refuse_labels = None if args.allow_label_like_images else ALLOW_FLAG
    if args.atlas_image and refuse_labels:
        read_image(args.atlas_image, refuse_labels)
    device = pick_device(args.device, announce=ranks.is_main or ranks.local_rank == 0, local_rank=ranks.local_rank)
    model = load_model(args.model, device)
    if args.no_cycle_qc and not model.has_reference_match:
        raise LTNetError(
            f"{args.model}: --no-cycle-qc scores the image match against the model's typical match, which this "
            "model file (written by an early LTNet) does not hold; leave out --no-cycle-qc."
        )
    if args.atlas_image:
        # another atlas, on a grid as large (in voxels) as the model's
        model.atlas = Atlas.from_files(
            args.atlas_image, args.atlas_labels, model.grid.size, model.networks.config.grid_multiple
        )
    progress = reporter(args.progress, "transfer") if ranks.is_main else None
    if progress:
        progress(start_event(device, inference=True))
        if len(todo) < len(all_jobs):
            print(f"ltnet: {len(all_jobs) - len(todo)} target(s) done already, kept (--skip-existing)", file=sys.stderr)
    create_folders(todo)
    jobs = ranks.shard(todo)
    ranking = []

    def write(job: Job, result: TransferResult) -> None:
        """The label map last: where it exists, so does everything else of its target (``--skip-existing``)."""
        if job.extras_prefix:
            write_extras(result, model, job)
        if job.qc_output:
            write_text(json.dumps(result.qc, indent=2), job.qc_output)
        write_label_map(result.labels, job.output, model.labels)

    def on_done(done: int, job: Job, result: TransferResult) -> None:
        if result.qc is not None:
            ranking.append((result.qc["score"], result.qc["verdict"], str(job.target)))
        if progress:  # rank 0 counts its own share (all targets in one process)
            progress({"event": "progress", "done": done, "total": len(jobs), "target": str(job.target)})

    def on_stage(index: int, job: Job, stage: str, step: int, steps: int) -> None:
        if progress:
            progress(
                {
                    "event": "stage",
                    "target": str(job.target),
                    "index": index,
                    "total": len(jobs),
                    "stage": stage,
                    "step": step,
                    "steps": steps,
                }
            )

    with distributed.session(ranks, device):
        distributed.barrier()  # every rank has checked the outputs before any writes one
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
                bool(args.extras),
                on_stage=on_stage,
                qc_cycle=not args.no_cycle_qc,
                refuse_labels_unless=refuse_labels,
            )
        except torch.cuda.OutOfMemoryError as error:
            if progress:
                progress.close(failed=True)
            raise LTNetError(
                f"{args.model}: the GPU ran out of memory at grid {model.grid.size}; use --device cpu, or a model "
                "trained on a smaller --grid."
            ) from error
        except BaseException:
            if progress:
                progress.close(failed=True)
            raise
        ranking = distributed.gather_lists(ranking)
        rates = distributed.gather_lists([(len(jobs), seconds)])
    if not progress:
        return 0
    progress({"event": "done"})
    progress.close()
    if args.progress == "bar":
        _print_verdicts(ranking)
    computed = sum(count for count, _ in rates)
    slowest = max(seconds for _, seconds in rates)
    print(
        f"ltnet: {computed} scan(s) in {slowest:.1f} s, {60 * computed / max(slowest, 1e-9):.1f} scans/min "
        f"({len(rates)} process(es))",
        file=sys.stderr,
    )
    return 0


def _check_arguments(args) -> None:
    if bool(args.atlas_image) != bool(args.atlas_labels):
        raise LTNetError("--atlas-image and --atlas-labels: give both to replace the model's atlas, or neither.")
    if args.refine < 0:
        raise LTNetError(f"--refine {args.refine}: give 0 or more steps.")
    if args.no_qc and (args.qc or args.extras):
        raise LTNetError("--no-qc: leave out --qc and --extras, which need the quality checks.")
    if args.no_cycle_qc and (args.no_qc or args.extras):
        raise LTNetError("--no-cycle-qc: leave out --no-qc (no QC at all) and --extras (images of the cycle).")
    if args.workers < 0:
        raise LTNetError(f"--workers {args.workers}: give 0 or more.")


def _print_verdicts(ranking: list[tuple[float, str, str]]) -> None:
    """The QC verdict of each target on stderr: one line for one target, else a table worst first."""
    if len(ranking) == 1:
        score, verdict, target = ranking[0]
        print(f"QC: {verdict} (score {score:.3f})  {target}", file=sys.stderr)
    elif ranking:
        print("QC, worst first:", file=sys.stderr)
        for score, verdict, target in sorted(ranking):
            print(f"  {score:.3f}  {verdict:<13}  {target}", file=sys.stderr)


def write_extras(result: TransferResult, model, job: Job) -> None:
    """The images behind the cycle-consistency overlays and the field as a transform (``Job.extras_files``)."""
    images = {
        "warped_atlas": result.warped_atlas,
        "reconstructed_atlas": result.reconstructed_atlas,
        "reconstructed_labels": result.reconstructed_labels,
        "atlas": model.atlas_image,
        "atlas_labels": model.atlas_labels,
        "jacobian": result.jacobian,
        "inverse_consistency": result.inverse_consistency,
    }
    files = job.extras_files()
    for name, image in images.items():
        write_image(image, files[name])
    transform = sitk.DisplacementFieldTransform(sitk.Image(result.field))
    atomic_write(files["field"], lambda tmp: sitk.WriteTransform(transform, str(tmp)))
