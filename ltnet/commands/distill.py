"""``ltnet distill``: train a segmentation network on a model's transfers to the cohort (``ltnet.distill``)."""

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ltnet.commands.run_arguments import add_run_arguments, check_run, note_nothing_to_do, run_to_end, start_progress
from ltnet.data.io import read_image
from ltnet.data.prepare import prepare_scan
from ltnet.device import pick_device
from ltnet.distill import DistillSettings, coarse_grid_note, distill, make_examples
from ltnet.errors import LTNetError
from ltnet.input_checks import ALLOW_FLAG
from ltnet.model_file import load_model
from ltnet.paths import expand_images
from ltnet.segmenter import Segmenter
from ltnet.training import LR_SCHEDULES

DEFAULTS = DistillSettings()


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="the model whose transfers teach the network (ltnet train's)")
    parser.add_argument(
        "--images", required=True, nargs="+", help="the unlabeled cohort: files, folders or globs (train's --images)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="the model file to write: --model's networks and atlas plus the segmentation network (also the "
        "checkpoint --resume continues)",
    )
    parser.add_argument(
        "--iterations", type=int, default=DEFAULTS.iterations, help=f"total iterations (default {DEFAULTS.iterations})"
    )
    parser.add_argument(
        "--refine",
        type=int,
        default=DEFAULTS.refine_steps,
        metavar="N",
        help="refinement steps for each cohort scan's transfer before it teaches (computed once at the start; "
        f"default {DEFAULTS.refine_steps}, 0: G_F's own fields)",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=DEFAULTS.learning_rate,
        help=f"Adam learning rate (default {DEFAULTS.learning_rate:g})",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default=DEFAULTS.lr_schedule,
        help="constant, or cosine: decay the learning rate to 0 at the last of --iterations along half a cosine "
        f"(default {DEFAULTS.lr_schedule}; a resumed run keeps its own)",
    )
    parser.add_argument(
        "--no-augment",
        action="store_true",
        help="train on the examples as they are (by default each is moved by a small random affine map and its "
        "contrast changed)",
    )
    add_run_arguments(parser, "distillation", "with the settings it started with (--iterations sets the new total)")
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="accept --images that look like label maps (integer images with few values, or segmentations)",
    )


def run(args) -> int:
    out = Path(args.out)
    if args.refine < 0:
        raise LTNetError(f"--refine {args.refine}: give 0 (off) or more steps.")
    if not args.lr > 0:
        raise LTNetError(f"--lr {args.lr}: give a positive learning rate.")
    check_run(out, args.iterations, args.resume)
    image_paths = expand_images(args.images)
    model = load_model(out if args.resume else args.model)
    if args.resume:
        if model.segmenter is None or not model.segmenter.training.get("settings"):
            raise LTNetError(f"{out}: holds no distillation to resume; run without --resume to start one.")
        settings = replace(DistillSettings(**model.segmenter.training["settings"]), iterations=args.iterations)
        if settings.iterations <= model.segmenter.iteration:
            note_nothing_to_do(out, model.segmenter.iteration, args.iterations)
            return 0
    else:
        settings = DistillSettings(
            args.iterations,
            args.lr,
            args.seed,
            max(1, args.checkpoint_every),
            args.refine,
            not args.no_augment,
            args.lr_schedule,
        )
        torch.manual_seed(settings.seed)
        model.segmenter = Segmenter.new(len(model.atlas.values))
    multiple = model.segmenter.grid_multiple
    if any(n % multiple for n in model.grid.size):
        raise LTNetError(
            f"{args.model}: its network grid {model.grid.size} is not a multiple of {multiple} voxels per axis, "
            "which the segmentation network needs; train a model with a --grid of multiples of 8."
        )
    note = coarse_grid_note(model)
    if note:
        print(f"ltnet: note: {note}", file=sys.stderr)
    device = pick_device(args.device)
    refuse_labels = None if args.allow_label_like_images else ALLOW_FLAG
    cpu_start = time.process_time()
    scans = [
        prepare_scan(read_image(path, refuse_labels), model.atlas, True, settings.seed).image for path in image_paths
    ]
    progress = start_progress(args.progress, "distilling", device)
    examples = make_examples(model, scans, settings.refine_steps, device)

    def work() -> int:
        distill(model, examples, out, settings, device, progress, cpu_start)
        return model.segmenter.iteration

    return run_to_end(work, out, progress)
