"""Qt-free logic of the LTNetTraining module: train LT-Net networks from one labeled atlas and a cohort.

from LTNetTrainingLib import TrainingLogic
job = TrainingLogic().start(atlasVolumeNode, atlasSegmentationNode, cohort, outputModelPath,
                            iterations=300, device="cpu")
job = TrainingLogic().startDistillation(sourceModelPath, cohort, distilledModelPath, iterations=2000)
"""

from .cohortFiles import CohortFolderScan, scanCohortFolder
from .distillSettings import SOURCE_TRAINED, SOURCES, DistillSettings
from .trainingErrors import TrainingInputError
from .trainingJob import CANCELLED, COMPLETED, FAILED, RUNNING, TrainingJob
from .trainingLogic import TrainingLogic, bundledModelPath
from .trainingProcess import SubprocessLauncher
from .trainingSettings import DEVICES, START_BUNDLED, START_MODEL, START_SCRATCH, STARTS, TOOLTIPS, TrainingSettings

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "DEVICES",
    "FAILED",
    "RUNNING",
    "SOURCE_TRAINED",
    "SOURCES",
    "START_BUNDLED",
    "START_MODEL",
    "START_SCRATCH",
    "STARTS",
    "TOOLTIPS",
    "CohortFolderScan",
    "DistillSettings",
    "SubprocessLauncher",
    "TrainingInputError",
    "TrainingJob",
    "TrainingLogic",
    "TrainingSettings",
    "bundledModelPath",
    "scanCohortFolder",
]
