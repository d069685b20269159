"""`TransferLogic`: MRML nodes in, `ltnet transfer` in a child process, MRML nodes out. No Qt.

    from LTNetTransferLib import TransferLogic
    result = TransferLogic().transfer(modelPath, targetVolumeNode, device="cpu")  # blocking
    result.segmentationNode, result.transformNode, result.qc, result.qcTableNode ...

The widget uses `start()` -> `job.poll()` (from a qt.QTimer) -> `loadResults(job)` instead.
"""

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from LTNetCommonLib.geometry import addVolumeNodeFromImage, ijkToRasFromImage, ijkToRasFromNode, sameGrid
from LTNetCommonLib.nodeFiles import writeSegmentationNode, writeVolumeNode

from . import display
from .command import SUB_FOLDERS, AtlasFiles, TargetFiles, fileStem, transferArguments
from .errors import TransferError
from .field import addGridTransformNode, readDisplacementField
from .inputs import checkAtlasOverride, checkModelPath, checkTargetVolumes
from .job import TransferJob
from .process import SubprocessLauncher
from .qcTable import addQcTableNodes
from .segments import addColorTableNode, addSegmentationNode, readSegmentInfos, segmentInfosFromValues


@dataclass
class TargetResult:
    """The nodes made for one target. Target-grid nodes share the target's IJKToRAS exactly;
    atlas-grid nodes are on the model's network grid."""

    targetVolumeNode: object
    segmentationNode: object  # transferred labels, atlas names/colors/values
    transformNode: object  # vtkMRMLGridTransformNode, forward field (from parent = resampling)
    warpedAtlasNode: object  # ū on the target grid
    jacobianNode: object  # Jacobian determinant, target grid
    inverseConsistencyNode: object  # inverse-consistency error (mm), target grid
    reconstructedAtlasNode: object  # l̄ on the atlas grid
    reconstructedSegmentationNode: object  # l̄_s on the atlas grid
    atlasVolumeNode: object  # the atlas on its network grid (shared by the run's targets)
    atlasSegmentationNode: object
    qc: dict = field(default_factory=dict)  # same keys as `ltnet transfer --qc`
    qcTableNode: object = None  # one row per target of the run
    labelQcTableNode: object = None  # one row per target and label
    colorTableNode: object = None  # atlas label value -> name, color; export with it to keep values

    @property
    def verdict(self) -> str:
        return self.qc.get("verdict", "")


class TransferLogic:
    """Transfers the atlas labels of an LTNet model onto target volume nodes.

    launcher: starts the child process (`process.SubprocessLauncher` by default: PythonSlicer in Slicer).
    logCallback: receives log lines (the child's output, progress, full error traces).
    keepFiles: keep the work folder (for debugging); it is removed after loading otherwise.
    """

    def __init__(self, launcher=None, logCallback=None, keepFiles: bool = False):
        self.launcher = launcher or SubprocessLauncher()
        self.logCallback = logCallback or (lambda message: None)
        self.keepFiles = keepFiles

    # -- blocking -------------------------------------------------------------------------------
    def transfer(
        self,
        modelPath,
        targetVolumeNode,
        device: str = "auto",
        prealign: bool = True,
        atlasVolumeNode=None,
        atlasSegmentationNode=None,
        timeout: float | None = None,
        refineSteps: int = 0,
    ) -> TargetResult:
        """Transfer onto one target; blocks until done. Raises `TransferError` (scene unchanged) on failure."""
        if targetVolumeNode is None:
            checkTargetVolumes([])
        return self.transferMany(
            modelPath,
            [targetVolumeNode],
            device,
            prealign,
            atlasVolumeNode,
            atlasSegmentationNode,
            timeout,
            refineSteps,
        )[0]

    def transferMany(
        self,
        modelPath,
        targetVolumeNodes,
        device: str = "auto",
        prealign: bool = True,
        atlasVolumeNode=None,
        atlasSegmentationNode=None,
        timeout: float | None = None,
        refineSteps: int = 0,
    ):
        """Transfer onto several targets in one child process; returns a `TargetResult` per target (in order)."""
        job = self.start(
            modelPath, targetVolumeNodes, device, prealign, atlasVolumeNode, atlasSegmentationNode, refineSteps
        )
        try:
            job.wait(timeout=timeout)
        except TransferError:
            self.cleanUp(job)
            raise
        return self.loadResults(job)

    # -- non-blocking ---------------------------------------------------------------------------
    def start(
        self,
        modelPath,
        targetVolumeNodes,
        device: str = "auto",
        prealign: bool = True,
        atlasVolumeNode=None,
        atlasSegmentationNode=None,
        refineSteps: int = 0,
    ) -> TransferJob:
        """Check the inputs, write them to a work folder and start the child. Adds nothing to the scene.

        atlasVolumeNode, atlasSegmentationNode: replace the model's atlas (both or neither); the
        segmentation is written on the atlas volume's grid with its segment names, colors and values.
        refineSteps: test-time refinement steps per target (`ltnet transfer --refine`; 0: off).
        """
        targetVolumeNodes = checkTargetVolumes(targetVolumeNodes)
        modelPath = checkModelPath(modelPath)
        checkAtlasOverride(atlasVolumeNode, atlasSegmentationNode)
        folder = Path(tempfile.mkdtemp(prefix="LTNetTransfer-"))
        try:
            for sub in SUB_FOLDERS:
                (folder / sub).mkdir()
            files = [
                TargetFiles(folder, fileStem(index, node.GetName())) for index, node in enumerate(targetVolumeNodes)
            ]
            for node, targetFiles in zip(targetVolumeNodes, files):
                writeVolumeNode(node, targetFiles.target)
            atlas = None
            if atlasVolumeNode is not None:
                atlas = AtlasFiles(folder)
                writeVolumeNode(atlasVolumeNode, atlas.image)
                writeSegmentationNode(atlasSegmentationNode, atlasVolumeNode, atlas.labels)
            arguments = transferArguments(modelPath, folder, files, device, prealign, atlas, refineSteps)
            return TransferJob(self.launcher, arguments, folder, targetVolumeNodes, files, self.logCallback)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def loadResults(self, job: TransferJob) -> list[TargetResult]:
        """The finished job's outputs as nodes in the targets' scene (all or nothing), then the work folder
        is removed. Raises `TransferError` if the job failed or an output is missing or off-grid."""
        job.raiseIfFailed()
        scene = job.targetNodes[0].GetScene()
        before = {scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())}
        try:
            results = self._load(scene, job)
        except Exception as error:
            _removeNodesAddedSince(scene, before)
            if isinstance(error, TransferError):
                raise
            raise TransferError(f"Could not load the transfer results: {error}") from error
        finally:
            self.cleanUp(job)
        return results

    def cleanUp(self, job: TransferJob) -> None:
        if not self.keepFiles and job.files:
            shutil.rmtree(job.workFolder, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------------
    def _load(self, scene, job: TransferJob) -> list[TargetResult]:
        first = job.files[0]
        atlasLabelsImage = _read(first.extra("atlas_labels"))
        segmentInfos = readSegmentInfos(first.labels) if str(first.labels).endswith(".seg.nrrd") else []
        if not segmentInfos:
            segmentInfos = segmentInfosFromValues(np.unique(sitk.GetArrayViewFromImage(atlasLabelsImage)))
        colorNode = addColorTableNode(scene, segmentInfos, "LTNet atlas colors")
        atlasVolume = addVolumeNodeFromImage(scene, _read(first.extra("atlas")), "LTNet atlas")
        atlasSegmentation = addSegmentationNode(
            scene,
            sitk.GetArrayFromImage(atlasLabelsImage),
            ijkToRasFromImage(atlasLabelsImage),
            segmentInfos,
            "LTNet atlas labels",
            colorNode,
        )

        results = []
        for targetNode, files in zip(job.targetNodes, job.files):
            name = targetNode.GetName()
            ijkToRas = ijkToRasFromNode(targetNode)

            def onTargetGrid(path, what):
                image = _read(path)
                if not sameGrid(image, ijkToRas):
                    raise TransferError(
                        f"ltnet wrote the {what} of '{name}' on another grid than the target's: "
                        "this is a bug in ltnet, please report it."
                    )
                return image

            def targetVolume(kind, label):
                node = addVolumeNodeFromImage(
                    scene, onTargetGrid(files.extra(kind), label), f"{name} {label}", ijkToRas=ijkToRas
                )
                node.SetAndObserveTransformNodeID(targetNode.GetTransformNodeID())
                return node

            labels = onTargetGrid(files.labels, "labels")
            segmentation = addSegmentationNode(
                scene, sitk.GetArrayFromImage(labels), ijkToRas, segmentInfos, f"{name} LTNet segmentation", colorNode
            )
            segmentation.SetAndObserveTransformNodeID(targetNode.GetTransformNodeID())
            transform = addGridTransformNode(
                scene, readDisplacementField(files.extra("field")), f"{name} LTNet transform"
            )
            transform.SetAndObserveTransformNodeID(targetNode.GetTransformNodeID())
            warped = targetVolume("warped_atlas", "warped atlas")
            jacobian = targetVolume("jacobian", "Jacobian determinant")
            inverseConsistency = targetVolume("inverse_consistency", "inverse-consistency error")
            display.styleJacobian(jacobian)
            display.styleInverseConsistency(inverseConsistency)
            reconstructed = addVolumeNodeFromImage(
                scene, _read(files.extra("reconstructed_atlas")), f"{name} reconstructed atlas"
            )
            reconstructedLabels = _read(files.extra("reconstructed_labels"))
            reconstructedSegmentation = addSegmentationNode(
                scene,
                sitk.GetArrayFromImage(reconstructedLabels),
                ijkToRasFromImage(reconstructedLabels),
                segmentInfos,
                f"{name} reconstructed atlas labels",
                colorNode,
            )
            qc = json.loads(files.qc.read_text()) if files.qc.is_file() else {}
            results.append(
                TargetResult(
                    targetNode,
                    segmentation,
                    transform,
                    warped,
                    jacobian,
                    inverseConsistency,
                    reconstructed,
                    reconstructedSegmentation,
                    atlasVolume,
                    atlasSegmentation,
                    qc,
                    colorTableNode=colorNode,
                )
            )

        targetTable, labelTable = addQcTableNodes(
            scene, [r.targetVolumeNode.GetName() for r in results], [r.qc for r in results]
        )
        for result in results:
            result.qcTableNode, result.labelQcTableNode = targetTable, labelTable
        return results


def _read(path: Path) -> sitk.Image:
    if not path.is_file():
        raise TransferError(
            f"ltnet transfer did not write '{path.name}': update the ltnet package (it must support --extras and --qc)."
        )
    return sitk.ReadImage(str(path))


def _removeNodesAddedSince(scene, before: set) -> None:
    """Remove, newest first, every node whose ID is not in `before` (all or nothing on failure)."""
    added = [scene.GetNthNode(index) for index in range(scene.GetNumberOfNodes())]
    for node in reversed([node for node in added if node.GetID() not in before]):
        if node.GetScene() is not None:
            scene.RemoveNode(node)
