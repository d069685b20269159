"""The training recipe from ``ltnet train``'s flags: defaults and ``--paper`` for a new run, the stored recipe for
``--resume``.

Flags whose default is None were not given; that tells "left out" from "given as the default". A resumed run keeps
what its model file holds (schedule, learning rate, seed, batch, augmentation, loss weights, cycle options and
network), and a flag given with another value is refused with a line naming it. ``--iterations`` may grow (that is how
a run is extended); ``--checkpoint-every``, ``--checkpointing`` and ``--device`` only change how it runs.
"""

from ltnet.errors import LTNetError
from ltnet.model_file import LTNetModel
from ltnet.nn.cycle import CycleOptions
from ltnet.nn.networks import DEFAULT_LEVELS, PAPER_LEVELS
from ltnet.training import TrainSettings

#: The teaching stage a new run from scratch ends with (``ltnet train --teach-stage``).
TEACH_STAGE_ITERATIONS = 600

# attribute of the parsed flags -> (flag, CycleOptions field)
CYCLE_FLAGS = {
    "reconstruction": ("--reconstruction", "reconstruction"),
    "trans_order": ("--trans-order", "trans_order"),
    "trans_units": ("--trans-units", "trans_units"),
    "anatomy_cyc": ("--anatomy-cyc", "anatomy"),
    "diff_cyc": ("--diff-cyc", "diff_cyc"),
}
# attribute -> (flag, TrainSettings field, a new run's default)
SETTING_FLAGS = {
    "lr": ("--lr", "learning_rate", 3e-4),
    "lr_schedule": ("--lr-schedule", "lr_schedule", "constant"),
    "warmup": ("--warmup", "warmup", 0.5),
    "seed": ("--seed", "seed", 0),
    "batch_size": ("--batch-size", "batch_size", 1),
    "augment": ("--augment", "augment", False),
    "teach_stage": ("--teach-stage", "teach_stage", TEACH_STAGE_ITERATIONS),
}
NEW_RUN_DEFAULTS = {
    "iterations": 1500,
    **{attr: default for attr, (_, _, default) in SETTING_FLAGS.items()},
    "coupling": 0.1,
    "lambda1": 10.0,
    "unet_levels": DEFAULT_LEVELS,
    **{attr: getattr(CycleOptions(), field) for attr, (_, field) in CYCLE_FLAGS.items()},
}
PAPER = {  # what --paper sets, where the flag itself is not given
    "warmup": 0.0,
    "coupling": 1.0,
    "unet_levels": PAPER_LEVELS,
    **{attr: getattr(CycleOptions.paper(), field) for attr, (_, field) in CYCLE_FLAGS.items()},
}


def apply_paper(args) -> None:
    """With ``--paper``, every flag of the recipe left out takes the paper's value (the adversarial term too, unless
    ``--no-adversarial``); flags given explicitly win."""
    args.set_by_paper = set()
    if not args.paper:
        return
    for attr, value in PAPER.items():
        if getattr(args, attr) is None:
            setattr(args, attr, value)
            args.set_by_paper.add(attr)
    if not args.no_adversarial and args.gan_weight is None and not args.adversarial:
        args.adversarial = True
        args.set_by_paper.add("adversarial")


#: A new run with --init (fine-tuning) keeps these defaults, and has no teaching stage unless asked.
FINE_TUNE_DEFAULTS = {"iterations": 2000, "lr": 1e-4}


def fill_new_run(args) -> None:
    """A new run: every recipe flag left out takes its default. A run from scratch ends with a teaching stage
    (``ltnet.training.teaching_stage``) unless it reproduces another method (``--voxelmorph``, ``--paper``); a
    fine-tuning (``--init``) has none unless asked, and its own defaults."""
    if args.teach_stage is None and (args.init or args.voxelmorph or args.paper):
        args.teach_stage = 0
    for attr, value in (NEW_RUN_DEFAULTS | (FINE_TUNE_DEFAULTS if args.init else {})).items():
        if getattr(args, attr) is None:
            setattr(args, attr, value)
    args.teaching = False


def cycle_options(args) -> CycleOptions:
    """The cycle options of a new run from its (filled) flags."""
    return CycleOptions(**{field: getattr(args, attr) for attr, (_, field) in CYCLE_FLAGS.items()})


def keep_stored(args, model: LTNetModel, out) -> None:
    """Resume: refuse a flag that contradicts ``model``'s recipe; set the training settings of ``args`` to the stored
    ones."""
    stored = model.training.get("settings") or {}
    weights, config = model.weights, model.networks.config
    held = [(attr, flag, getattr(args, attr), stored.get(field)) for attr, (flag, field, _) in SETTING_FLAGS.items()]
    held += [
        (attr, flag, getattr(args, attr), getattr(model.cycle_options, field))
        for attr, (flag, field) in CYCLE_FLAGS.items()
    ]
    held += [
        ("coupling", "--coupling", args.coupling, weights.coupling),
        ("lambda1", "--lambda1", args.lambda1, weights.cyc),
        ("lambda2", "--lambda2", args.lambda2, weights.smooth if weights.smooth > 0 else None),
        ("gan_weight", "--gan-weight", args.gan_weight, weights.gan),
        ("teach", "--teach", args.teach or None, weights.teach),
        ("unet_levels", "--unet-levels", args.unet_levels, config.levels),
        (
            "field_downsize",
            "--field-downsize",
            None if args.field_downsize == 1 else args.field_downsize,
            config.field_downsize,
        ),
        ("diffeomorphic", "--diffeomorphic", args.diffeomorphic or None, config.diffeomorphic),
        ("adversarial", "--adversarial", args.adversarial or None, weights.gan > 0),
        ("no_adversarial", "--no-adversarial", args.no_adversarial or None, weights.gan == 0),
        ("voxelmorph", "--voxelmorph", args.voxelmorph or None, not weights.needs_backward),
        *[("without", f"--without {term}", True, getattr(weights, term) == 0) for term in args.without],
    ]
    for attr, flag, given, kept in held:
        if given is None or kept is None or given == kept:
            continue
        if isinstance(given, bool):
            recipe, shown = f"was not trained with {flag}", flag
        else:
            recipe, shown = f"was trained with {flag} {_show(kept)}", f"{flag} {_show(given)}"
        if attr in getattr(args, "set_by_paper", ()):
            shown = f"--paper (which sets {shown})"
        raise LTNetError(
            f"{out}: {recipe}; resume it without {shown} (a resumed run keeps its recipe; start a new --out to "
            "change it)."
        )
    defaults = TrainSettings()  # what a checkpoint written before a setting existed ran with
    for attr, (_, field, _) in SETTING_FLAGS.items():
        setattr(args, attr, stored.get(field, getattr(defaults, field)))
    args.teaching = stored.get("teaching", False)
    if args.iterations is None:
        args.iterations = stored.get("iterations", defaults.iterations)
    elif args.teaching and args.iterations != stored["iterations"]:
        raise LTNetError(
            f"{out}: is in its teaching stage, after {stored['iterations']} iterations of registration; resume it "
            f"without --iterations {args.iterations} (a finished stage cannot grow; start a new --out to change it)."
        )


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
