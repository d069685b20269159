"""The training settings that matter, their defaults and tooltips, and the `ltnet train` options they make."""

from dataclasses import dataclass

from .runSettings import RunSettings

DEVICES = ("auto", "cpu", "cuda")

# Where the networks start: the bundled model, another model (fine-tuning) or random weights.
START_BUNDLED = "bundled"
START_MODEL = "model"
START_SCRATCH = "scratch"
STARTS = (START_BUNDLED, START_MODEL, START_SCRATCH)

# The recipe docs/BENCHMARKS.md measured best on the hippocampus: fine-tune a trained model (the bundled one or
# another) on the cohort, teaching it its own refined maps (`ltnet train --init MODEL --teach 10 --iterations 600
# --lr 1e-4`).
FINE_TUNE_RECIPE = {"iterations": 600, "learningRate": 1e-4, "teach": 10.0, "augment": False}

# Which image the affine pre-alignment holds fixed (`ltnet train --prealign-fixed`), with the panel's labels.
PREALIGN_FIXED = ("", "scan", "atlas")
PREALIGN_FIXED_LABELS = (
    "the starting model's (atlas for a new one)",
    "scan (small crops, e.g. hippocampus)",
    "atlas (whole brains)",
)

TOOLTIPS = {
    "recipe": "Fine-tune the model on my cohort: start from the bundled model (or the model chosen below) and "
    "teach it its own refined maps of your scans, 600 iterations at learning rate 1e-4 with teaching weight 10 "
    "(`ltnet train --init MODEL --teach 10 --iterations 600 --lr 1e-4`): on the hippocampus benchmark this raised "
    "the bundled model's mean Dice from 0.769 to 0.784 (docs/BENCHMARKS.md). Custom settings: what you set below.",
    "iterations": "Training iterations (one atlas-scan pair each). More iterations fit the cohort better and take "
    "longer.",
    "learningRate": "Adam learning rate of all networks. Lower it (e.g. 1e-5) when fine-tuning a model.",
    "grid": "Network grid (voxels per axis) the atlas and scans are resampled to; padded to a multiple of 8. "
    "Smaller is faster and coarser. auto (0): the atlas grid, at most 128 voxels per axis.",
    "lambda1": "λ1: weight of the image cycle-consistency term (the atlas warped to the scan and back must "
    "match the atlas). Paper default 10.",
    "lambda2": "λ2: weight of the anatomy-cycle, transformation-cycle, field-cycle and smoothness terms. "
    "Higher gives smoother maps that agree better forward and backward. Paper default 3; for whole "
    "brains on a coarse grid (about 4 mm) 1 was more accurate on the IBSR benchmark.",
    "adversarial": "Train the discriminator and use the adversarial (GAN) term that makes warped atlases look "
    "like real scans (the paper's). Off by default: on the hippocampus benchmark it made rougher, "
    "less accurate maps, and training is faster without it.",
    "warmup": "Share of the iterations in which the forward network learns to register alone while the backward "
    "network learns to invert it; the cycle terms then ramp in. 0: the paper's joint training from the start.",
    "coupling": "Share of the cycle terms' gradient that reaches the forward network once ramped in. 1 is the "
    "paper's joint training; lower keeps the cycle terms from pulling the maps toward no motion.",
    "diffeomorphic": "Integrate the velocity field (scaling and squaring) so that maps do not fold.",
    "fieldDownsize": "Average the predicted field over blocks of this many voxels per axis and upsample it: smoother "
    "maps. 1: off (the default); 2 is measured on the hippocampus in docs/BENCHMARKS.md.",
    "augment": "Move each scan drawn in training by a small random rotation, scaling and shift, and change its "
    "contrast at random, so the networks see more varied scans than the cohort holds. Off by default: on "
    "the hippocampus benchmark, where the targets are the cohort's own scans, it lowered the Dice by 0.011.",
    "teach": "Fine-tuning only (a bundled or given starting model): also pull the forward network toward its own "
    "refined map of each cohort scan (20 refinement steps, computed once per scan) where the atlas labels go, "
    "with this weight. 0: off. "
    "10 with 600 iterations at learning rate 1e-4 raised the mean Dice from 0.769 to 0.784 on the hippocampus "
    "benchmark (docs/BENCHMARKS.md). Not with augmentation.",
    "device": "auto: the GPU when one is usable, else the CPU. cpu: always the CPU (fine-tuning at 64x64x64 takes "
    "seconds per iteration there). cuda: an NVIDIA GPU only (the training does not start if torch sees none).",
    "prealign": "Align each scan affinely to the atlas before training, so the networks learn only the local "
    "differences. Switch off for scans that are already aligned.",
    "prealignFixed": "Which image the affine pre-alignment holds fixed while the other moves. scan: for small "
    "crops such as the hippocampus (0.770 against 0.763 mean Dice on that benchmark). atlas: for whole brains "
    "(scan lowered the IBSR brains' Dice by 0.014). The model keeps it and transfer aligns scans the same way. "
    "The starting model's: what the bundled, chosen or resumed model uses (atlas for a new model).",
    "seed": "Random seed: the same seed and inputs give the same training.",
    "checkpointEvery": "Save the model every this many iterations, so Cancel or a crash keeps recent work.",
}


@dataclass
class TrainingSettings(RunSettings):
    """Settings of one training; names follow the `ltnet train` options."""

    kind = "training"

    iterations: int = 1500
    learningRate: float = 3e-4
    grid: tuple = None  # None or (0, 0, 0): ltnet's default (the atlas grid, at most 128 per axis)
    lambda1: float = 10.0
    lambda2: float = 3.0
    adversarial: bool = False
    warmup: float = 0.5
    coupling: float = 0.1
    diffeomorphic: bool = False
    fieldDownsize: int = 1
    augment: bool = False
    teach: float = 0.0
    teachStage: int = 600  # a training from scratch: ltnet train --teach-stage (its default)
    prealign: bool = True
    prealignFixed: str = ""  # "atlas" or "scan"; "": ltnet's default (the resumed or initial model's own, else atlas)
    device: str = "auto"
    seed: int = 0
    checkpointEvery: int = 100

    def __post_init__(self):
        self.grid = tuple(int(size) for size in self.grid) if self.grid else None

    def commandArguments(self):
        """The `ltnet train` options for these settings."""
        arguments = [
            "--iterations",
            str(int(self.iterations)),
            "--lr",
            repr(float(self.learningRate)),
            "--lambda1",
            repr(float(self.lambda1)),
            "--lambda2",
            repr(float(self.lambda2)),
            "--warmup",
            repr(float(self.warmup)),
            "--coupling",
            repr(float(self.coupling)),
            *self.runOptions(),
        ]
        if self.grid and all(int(size) > 0 for size in self.grid):
            arguments += ["--grid", *(str(int(size)) for size in self.grid)]
        if not self.prealign:
            arguments.append("--no-prealign")
        if self.prealignFixed:
            arguments += ["--prealign-fixed", self.prealignFixed]
        if self.adversarial:
            arguments.append("--adversarial")
        if self.diffeomorphic:
            arguments.append("--diffeomorphic")
        if int(self.fieldDownsize) != 1:
            arguments += ["--field-downsize", str(int(self.fieldDownsize))]
        if self.augment:
            arguments.append("--augment")
        if float(self.teach) > 0:
            arguments += ["--teach", repr(float(self.teach))]
        return arguments
