"""``ltnet train``: build or resume a model and train it on a cohort."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ltnet import distributed, sampling
from ltnet.commands import train_recipe
from ltnet.commands.run_arguments import add_run_arguments, check_run, note_nothing_to_do, run_to_end, start_progress
from ltnet.data.grid import resample, resample_labels
from ltnet.data.intensity import normalise
from ltnet.data.io import read_image, read_label_map
from ltnet.data.prealign import FIXED_IMAGES
from ltnet.data.prepare import Atlas, channel_indices, finest_refinement_grid, prepare_scan, refinement_source
from ltnet.device import pick_device
from ltnet.errors import LTNetError
from ltnet.input_checks import ALLOW_FLAG
from ltnet.model_file import LTNetModel, load_model
from ltnet.nn.cycle import OPTION_CHOICES
from ltnet.nn.losses import TERMS, LossWeights
from ltnet.nn.networks import LTNetNetworks, NetworkConfig, unet_channels
from ltnet.paths import expand_images
from ltnet.training import LR_SCHEDULES, TrainSettings, snapshot_path, teaching_stage, train


def add_arguments(parser) -> None:
    parser.add_argument("--atlas-image", required=True, help="the atlas image (NIfTI, NRRD, MHA, DICOM folder)")
    parser.add_argument(
        "--atlas-labels", required=True, help="the atlas label map (integer NIfTI/NRRD or Slicer .seg.nrrd)"
    )
    parser.add_argument("--images", required=True, nargs="+", help="unlabeled scans: files, folders or globs")
    parser.add_argument("--out", required=True, help="the model file to write (also the checkpoint --resume continues)")
    parser.add_argument(
        "--iterations",
        type=int,
        help="iterations of the registration stage (default 1500; 2000 with --init); with --resume it may grow while "
        "that stage runs",
    )
    parser.add_argument(
        "--teach-stage",
        type=int,
        metavar="N",
        help="a new run from scratch ends with a teaching stage of N iterations: G_F learns from its own refined "
        "fields where the atlas labels go (as --teach 10 at --lr 1e-4 would; default 600; 0 with --init, --voxelmorph "
        "or --paper; 0 turns it off). The progress counts both stages as one run",
    )
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        metavar="N",
        help="also keep the model at every N-th iteration as OUT_itN.pt beside --out, to score accuracy against "
        "iterations (default 0: none)",
    )
    parser.add_argument(
        "--grid",
        type=int,
        nargs=3,
        metavar=("X", "Y", "Z"),
        help="network grid size in voxels (default: the atlas at up to 128 voxels per axis); padded to a multiple of "
        "8 (16 with --unet-levels 4)",
    )
    add_run_arguments(
        parser,
        "training",
        "with the recipe it holds (schedule, learning rate, seed, loss weights, cycle options, network); a flag that "
        "contradicts it is refused. --iterations may grow",
        seed_none_if_absent=True,  # a --seed given with --resume is checked against the stored one
    )
    parser.add_argument("--init", help="fine-tune: start from the weights of this model")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 3e-4; 1e-4 with --init)")
    parser.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="constant, or cosine: decay the learning rate to 0 at the last iteration along half a cosine "
        "(default constant)",
    )
    parser.add_argument("--lambda1", type=float, help="weight of the image cycle loss (default 10)")
    parser.add_argument(
        "--lambda2",
        type=float,
        help="weight of smoothness, transformation, anatomy and difference cycle losses (default 3; with --voxelmorph "
        "the smoothness weight, default 1). Whole brains on a coarse grid may do better with less: docs/BENCHMARKS.md, "
        "'Accuracy, one-shot, IBSR18'",
    )
    parser.add_argument(
        "--adversarial",
        action="store_true",
        help="add the adversarial term (the paper's; off by default, as it made rougher, less accurate maps: "
        "docs/BENCHMARKS.md, 'Ablation')",
    )
    parser.add_argument("--no-adversarial", action="store_true", help="leave the adversarial term out (the default)")
    parser.add_argument(
        "--gan-weight",
        type=float,
        metavar="W",
        help="weight of the adversarial term (default 1 where it is on); W > 0 switches it on, 0 off",
    )
    parser.add_argument(
        "--reconstruction",
        choices=OPTION_CHOICES["reconstruction"],
        help="how the cycle rebuilds the atlas: one_step resamples it once along the composed round trip (default), "
        "two_step as the paper writes it, the warped atlas resampled along the backward map",
    )
    parser.add_argument(
        "--trans-order",
        choices=OPTION_CHOICES["trans_order"],
        help="the composite the transformation cycle loss penalises: round_trip, backward then forward (the order "
        "under which the atlas comes back exactly; default), or paper, forward then backward",
    )
    parser.add_argument(
        "--trans-units",
        choices=OPTION_CHOICES["trans_units"],
        help="units of the transformation cycle loss: normalised (-1 to 1 across each grid axis; default) or mm "
        "(the same on every axis and grid size)",
    )
    parser.add_argument(
        "--anatomy-cyc",
        choices=OPTION_CHOICES["anatomy"],
        help="the label cycle Dice: foreground, the mean of each label's soft Dice (default), or all_channels, one "
        "soft Dice with the background included (models written before this option)",
    )
    parser.add_argument(
        "--diff-cyc",
        choices=OPTION_CHOICES["diff_cyc"],
        help="the label difference cycle loss: balanced, half its weight on voxels where a label lies (default), or "
        "uniform over voxels (models written before this option)",
    )
    parser.add_argument(
        "--unet-levels",
        type=int,
        choices=(3, 4),
        help="down-samplings of the registration U-Nets: 3 (default) or 4, VoxelMorph's network as the paper uses it "
        "(encoder 16-32-32-32, decoder 32-32-32-32-32-16-16; grid sizes a multiple of 16)",
    )
    parser.add_argument(
        "--paper",
        action="store_true",
        help="the paper's configuration: all seven terms coupled from the first iteration (--warmup 0 --coupling 1 "
        "--adversarial; with --no-adversarial, six), --reconstruction two_step --trans-order paper --trans-units mm "
        "--unet-levels 4; flags given beside it win",
    )
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        choices=[t for t in TERMS if t != "sim"],
        metavar="TERM",
        help="switch off these loss terms (ablation): smooth, gan, cyc, trans, anatomy_cyc, diff_cyc",
    )
    parser.add_argument(
        "--voxelmorph", action="store_true", help="the VoxelMorph baseline: similarity and smoothness only"
    )
    parser.add_argument(
        "--diffeomorphic", action="store_true", help="integrate a velocity field (scaling and squaring)"
    )
    parser.add_argument(
        "--field-downsize",
        type=int,
        default=1,
        metavar="K",
        help="average the predicted field over K³ voxel blocks and upsample it: a smoother map (default 1: off; "
        "measured in docs/BENCHMARKS.md)",
    )
    parser.add_argument(
        "--no-prealign", action="store_true", help="skip the affine pre-alignment of each scan to the atlas"
    )
    parser.add_argument(
        "--prealign-fixed",
        choices=FIXED_IMAGES,
        help="the image the affine pre-alignment holds fixed while the other moves (default atlas; with --init, that "
        "model's). The model keeps it, and transfer aligns scans the same way. Which suits which data is measured in "
        "docs/BENCHMARKS.md, 'Accuracy'",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="pairs per iteration on each process (default 1); under torchrun the global batch is this times the "
        "number of processes",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        metavar="F",
        help="for this share of the iterations the adversarial term is off and the cycle terms train G_B only; "
        "both then ramp up linearly to --coupling (default 0.5)",
    )
    parser.add_argument(
        "--coupling",
        type=float,
        metavar="C",
        help="share of the cycle terms' gradient that reaches G_F once ramped in (default 0.1; 1 is the paper's joint "
        "training, 0 lets the cycle terms train G_B only)",
    )
    parser.add_argument(
        "--augment",
        action="store_true",
        default=None,
        help="move each drawn scan by a small random affine map and change its contrast by a random gamma (off by "
        "default: where the targets are the cohort's own scans it lowered the Dice; docs/BENCHMARKS.md)",
    )
    parser.add_argument(
        "--teach",
        type=float,
        default=0.0,
        metavar="W",
        help="fine-tuning (with --init): also pull G_F's field toward its own refined field for each cohort scan "
        "(computed once per scan) where the atlas labels go, with weight W (default 0: off). The settings measured "
        "and their gain: docs/BENCHMARKS.md, 'Teaching'",
    )
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="accept an --atlas-image or --images that look like label maps (integer images with few values, or "
        "segmentations), which are refused by default",
    )
    parser.add_argument(
        "--checkpointing",
        action="store_true",
        help="gradient checkpointing: recompute U-Net activations in the backward pass (less GPU memory, slower; "
        "docs/BENCHMARKS.md, 'Speed on a GPU')",
    )


def run(args) -> int:
    """Train on this process; under ``torchrun`` one of several DDP processes (see docs/SCALE.md)."""
    out = Path(args.out)
    if args.batch_size is not None and args.batch_size < 1:
        raise LTNetError(f"--batch-size {args.batch_size}: give at least 1.")
    check_run(out, args.iterations or 0, args.resume)
    if args.snapshot_every < 0:
        raise LTNetError(f"--snapshot-every {args.snapshot_every}: give 0 (none) or more iterations.")
    if args.teach_stage is not None and args.teach_stage < 0:
        raise LTNetError(f"--teach-stage {args.teach_stage}: give 0 (none) or more iterations.")
    ranks = distributed.from_environment()
    if args.adversarial and args.no_adversarial:
        raise LTNetError("--adversarial and --no-adversarial: give one of them.")
    if args.no_adversarial and (args.gan_weight or 0.0) > 0:
        raise LTNetError(f"--no-adversarial and --gan-weight {args.gan_weight}: give one of them.")
    if args.gan_weight is not None and args.gan_weight < 0:
        raise LTNetError(f"--gan-weight {args.gan_weight}: give a weight of 0 (off) or more.")
    train_recipe.apply_paper(args)
    if not args.resume:
        train_recipe.fill_new_run(args)
    if args.warmup is not None and not 0.0 <= args.warmup < 1.0:
        raise LTNetError(f"--warmup {args.warmup}: give a share from 0 up to (not including) 1.")
    if args.field_downsize < 1:
        raise LTNetError(f"--field-downsize {args.field_downsize}: give 1 (off) or more voxels.")
    if args.coupling is not None and not 0.0 <= args.coupling <= 1.0:
        raise LTNetError(f"--coupling {args.coupling}: give a share from 0 to 1.")
    if args.teach < 0:
        raise LTNetError(f"--teach {args.teach}: give a weight of 0 (off) or more.")
    if args.teach > 0 and not (args.init or args.resume):
        raise LTNetError(
            "--teach: give the trained model to fine-tune with --init (a network learns from its own refined fields "
            "only once it registers)."
        )
    if args.teach > 0 and args.augment:
        raise LTNetError(
            "--teach with --augment: a scan's refined field is kept from its first draw and would not fit its "
            "augmented copies; leave one out."
        )
    image_paths = expand_images(args.images)
    refuse_labels = None if args.allow_label_like_images else ALLOW_FLAG
    if refuse_labels and not args.resume:
        read_image(args.atlas_image, refuse_labels)
    device = pick_device(args.device, local_rank=ranks.local_rank)
    if args.resume:
        model = load_model(out)
        train_recipe.keep_stored(args, model, out)
    torch.manual_seed(args.seed)
    if not args.resume:
        model = _new_model(args)
    if args.resume and args.prealign_fixed not in (None, model.atlas.prealign_fixed):
        raise LTNetError(
            f"{out}: was trained with the {model.atlas.prealign_fixed} fixed in the pre-alignment; resume it without "
            f"--prealign-fixed {args.prealign_fixed} (a network keeps the alignment it learned from)."
        )
    if args.resume and _lacks_full_resolution_atlas(model.atlas):
        model.atlas = _with_full_resolution_atlas(model.atlas, args.atlas_labels, args.atlas_image)
    if args.resume and args.iterations + args.teach_stage <= model.iteration and ranks.is_main:
        note_nothing_to_do(out, model.iteration, args.iterations)
    settings = TrainSettings(
        args.iterations,
        args.lr,
        args.seed,
        max(1, args.checkpoint_every),
        args.batch_size,
        args.checkpointing,
        args.warmup,
        args.lr_schedule,
        args.augment,
        args.teach_stage,
        args.teaching,
        args.snapshot_every,
    )
    refuse_existing_snapshots(out, model.iteration, settings)
    needed = sampling.needed_scans(len(image_paths), args.batch_size, ranks.rank, ranks.world_size)
    scans = [
        prepare_scan(read_image(path, refuse_labels), model.atlas, not args.no_prealign, args.seed).image
        if i in needed
        else None
        for i, path in enumerate(image_paths)
    ]
    progress = start_progress(args.progress, "training", device) if ranks.is_main else None

    def work() -> int:
        with distributed.session(ranks, device):
            try:
                train(model, scans, out, settings, device, progress, ranks)
                if settings.teach_stage > 0 and not settings.teaching:
                    train(model, scans, out, teaching_stage(model, settings), device, progress, ranks)
            except torch.cuda.OutOfMemoryError as error:
                raise LTNetError(
                    f"{out}: the GPU ran out of memory at grid {model.grid.size} with --batch-size {args.batch_size}; "
                    "use --checkpointing, a smaller --grid or --batch-size, or --device cpu."
                ) from error
        return model.iteration

    return run_to_end(work, out, progress)


def refuse_existing_snapshots(out: Path, start: int, settings: TrainSettings) -> None:
    """Refuse, before any work, a run that would write a snapshot (``--snapshot-every``) over an existing file."""
    if not settings.snapshot_every:
        return
    first = (start // settings.snapshot_every + 1) * settings.snapshot_every
    for iteration in range(first, settings.run_end + 1, settings.snapshot_every):
        if snapshot_path(out, iteration).exists():
            raise LTNetError(
                f"{snapshot_path(out, iteration)}: exists already, and this run would write its snapshot of iteration "
                f"{iteration} there; move it away or choose another --out (nothing was overwritten)."
            )


def _lacks_full_resolution_atlas(atlas: Atlas) -> bool:
    """Whether a model written by an older LTNet lacks the atlas labels, or the image that refinement on a finer
    grid needs, at their own resolution (a model LTNet writes now keeps both where they serve)."""
    if atlas.channels is None:
        return True
    return (
        atlas.source_image is None
        and finest_refinement_grid(atlas.grid, min(atlas.channels.GetSpacing())) != atlas.grid
    )


def _with_full_resolution_atlas(atlas: Atlas, labels_path, image_path) -> Atlas:
    """A model written before LTNet kept the atlas at its own resolution takes it from ``image_path`` and
    ``labels_path``.

    They must be the atlas it was trained with: resampled onto its grid, they give its stored image and labels.
    """
    image = read_image(image_path)
    label_map = read_label_map(labels_path, image, image_path)
    on_grid = resample_labels(label_map.image, atlas.values, atlas.grid.reference())
    if on_grid.shape != atlas.one_hot.shape or np.abs(on_grid - atlas.one_hot).max() > 0.01:
        raise LTNetError(
            f"{labels_path}: are not the atlas labels this model was trained with; give the same --atlas-labels to "
            "resume it."
        )
    normalised = normalise(image)
    if np.abs(sitk.GetArrayFromImage(resample(normalised, atlas.grid.reference())) - atlas.image).max() > 0.01:
        raise LTNetError(
            f"{image_path}: is not the atlas image this model was trained with; give the same --atlas-image to "
            "resume it."
        )
    return replace(
        atlas,
        channels=channel_indices(label_map.image, atlas.values),
        source_image=refinement_source(normalised, atlas.grid),
    )


def _new_model(args) -> LTNetModel:
    init = load_model(args.init) if args.init else None
    config = (
        init.networks.config
        if init
        else NetworkConfig(
            unet_channels=unet_channels(args.unet_levels),
            diffeomorphic=args.diffeomorphic,
            field_downsize=args.field_downsize,
        )
    )
    atlas = Atlas.from_files(args.atlas_image, args.atlas_labels, args.grid, config.grid_multiple)
    atlas.prealign_fixed = args.prealign_fixed or (init.atlas.prealign_fixed if init else atlas.prealign_fixed)
    networks = LTNetNetworks(config)
    if init:
        networks.load_state_dict(init.networks.state_dict())
    if args.voxelmorph:
        weights = LossWeights.voxelmorph(*([args.lambda2] if args.lambda2 is not None else []))
    else:
        weights = LossWeights.paper(args.lambda1, 3.0 if args.lambda2 is None else args.lambda2, args.adversarial)
        if args.gan_weight is not None:
            weights = replace(weights, gan=args.gan_weight)
    return LTNetModel(
        networks,
        atlas,
        replace(weights, coupling=args.coupling, teach=args.teach, **{term: 0.0 for term in args.without}),
        cycle_options=init.cycle_options if init else train_recipe.cycle_options(args),
    )
