"""The distillation step's settings, defaults and tooltips, and the `ltnet distill` options they make.

`ltnet distill` trains a segmentation network on a model's transfers to the unlabeled cohort and writes a new
model file: the source model's registration networks and atlas plus that network. `ltnet transfer` (and LTNet
Transfer) then label targets with the network, while the QC still comes from the registration.
"""

from dataclasses import dataclass

from .runSettings import RunSettings

# Which model is distilled: the training's output model, the bundled model, or another model file.
SOURCE_TRAINED = "trained"
SOURCE_BUNDLED = "bundled"
SOURCE_MODEL = "model"
SOURCES = (SOURCE_TRAINED, SOURCE_BUNDLED, SOURCE_MODEL)  # order of the panel's source combo box items

# The panel's one-line explanation of the step (docs/BENCHMARKS.md, "Distillation": 2000 iterations took 11 min
# wall on one CPU core at the hippocampus grid).
EXPLANATION = (
    "Distillation trains a segmentation network on the chosen model's transfers to the cohort and writes a new "
    "model that labels targets with that network (no refinement needed at transfer time) while keeping the "
    "registration's QC. It runs after a training, on the same cohort: 2000 iterations by default (11 min on one "
    "CPU core for the 59-scan hippocampus cohort), more than the fine-tuning recipe's 600."
)

TOOLTIPS = {
    "source": "The model whose transfers teach the segmentation network: the output model of the training above, "
    "the model bundled with LTNet, or another LTNet model file (.pt).",
    "iterations": "Distillation iterations (one example each). 2000 on the hippocampus benchmark took 11 min on one "
    'CPU core; what the distilled model scored against its source is in docs/BENCHMARKS.md, "Distillation".',
    "refine": "Refinement steps for each cohort scan's transfer before it teaches the network (computed once at the "
    "start). 3 is what the benchmark measured; 0 uses the registration network's own fields (faster start).",
    "learningRate": "Adam learning rate of the segmentation network (1e-3 measured).",
    "augment": "Move each example by a small random rotation, scaling and shift and change its contrast (the labels "
    "move with the image). On by default, as measured.",
    "device": "auto: the GPU when one is usable, else the CPU. cpu: always the CPU (0.47 s per iteration at the "
    "hippocampus grid on one core). cuda: an NVIDIA GPU only (the distillation does not start if torch sees none).",
    "seed": "Random seed: the same seed and inputs give the same network on a CPU.",
    "checkpointEvery": "Save the model every this many iterations, so Cancel or a crash keeps recent work.",
    "output": "Where the distilled model (.pt) is written: the source model's networks and atlas plus the "
    "segmentation network. Saved every checkpoint interval and at the end; Resume continues from it.",
}


@dataclass
class DistillSettings(RunSettings):
    """Settings of one distillation; names follow the `ltnet distill` options, defaults are ltnet's."""

    kind = "distillation"

    iterations: int = 2000
    refine: int = 3
    learningRate: float = 1e-3
    augment: bool = True
    device: str = "auto"
    seed: int = 0
    checkpointEvery: int = 100

    def commandArguments(self):
        """The `ltnet distill` options for these settings (on --resume ltnet keeps the run's own, except the
        iterations: the new total)."""
        arguments = [
            "--iterations",
            str(int(self.iterations)),
            "--refine",
            str(int(self.refine)),
            "--lr",
            repr(float(self.learningRate)),
            *self.runOptions(),
        ]
        if not self.augment:
            arguments.append("--no-augment")
        return arguments
