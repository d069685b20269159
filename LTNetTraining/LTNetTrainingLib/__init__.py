"""Qt-free logic of the LTNetTraining module: train LT-Net networks from one labeled atlas and a cohort.

from LTNetTrainingLib import TrainingLogic
job = TrainingLogic().start(atlasVolumeNode, atlasSegmentationNode, cohort, outputModelPath,
                            iterations=300, device="cpu")
"""

from .cohortFiles import CohortFolderScan, scanCohortFolder
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
    "START_BUNDLED",
    "START_MODEL",
    "START_SCRATCH",
    "STARTS",
    "TOOLTIPS",
    "CohortFolderScan",
    "SubprocessLauncher",
    "TrainingInputError",
    "TrainingJob",
    "TrainingLogic",
    "TrainingSettings",
    "bundledModelPath",
    "scanCohortFolder",
]
