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
import vtk
from LTNetCommonLib.geometry import addVolumeNodeFromImage, ijkToRasFromImage, ijkToRasFromNode, sameGrid
from LTNetCommonLib.nodeFiles import writeSegmentationNode, writeVolumeNode

from . import display, outputs
from .command import SUB_FOLDERS, AtlasFiles, TargetFiles, fileStem, transferArguments
from .errors import TransferError
from .field import addGridTransformNode, readDisplacementField
from .inputs import checkAtlasOverride, checkModelPath, checkOutputSegmentation, checkTargetVolumes
from .job import TransferJob
from .process import SubprocessLauncher
from .provenance import makeProvenance, recordProvenance
from .qcTable import addQcTableNodes
from .segments import addColorTableNode, addSegmentationNode, readSegmentInfos, segmentInfosFromValues


@dataclass
class TargetResult:
    """The nodes made for one target. Target-grid nodes share the target's IJKToRAS exactly;
    atlas-grid nodes are on the model's network grid. Without QC volumes (`qcVolumes=False`) only the
    segmentation and the QC tables are made: the other node fields are None."""

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
    segmentInfos: list = field(default_factory=list)  # the atlas labels (segments.SegmentInfo)
    folderItem: int = 0  # the subject-hierarchy folder of this target's outputs
    provenance: dict = field(default_factory=dict)  # the LTNet.* attributes recorded on every output

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
        **outputOptions,
    ) -> TargetResult:
        """Transfer onto one target; blocks until done. Raises `TransferError` (scene unchanged) on failure.
        outputOptions: qcVolumes, outputSegmentationNode (see `start`)."""
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
            **outputOptions,
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
        **outputOptions,
    ):
        """Transfer onto several targets in one child process; returns a `TargetResult` per target (in order)."""
        job = self.start(
            modelPath,
            targetVolumeNodes,
            device,
            prealign,
            atlasVolumeNode,
            atlasSegmentationNode,
            refineSteps,
            **outputOptions,
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
        qcVolumes: bool = True,
        outputSegmentationNode=None,
    ) -> TransferJob:
        """Check the inputs, write them to a work folder and start the child. Adds nothing to the scene.

        atlasVolumeNode, atlasSegmentationNode: replace the model's atlas (both or neither); the
        segmentation is written on the atlas volume's grid with its segment names, colors and values.
        refineSteps: test-time refinement steps per target (`ltnet transfer --refine`; 0: off).
        qcVolumes: also add the transform, the warped and reconstructed atlas, the Jacobian and
        inverse-consistency maps and the atlas; if False only the segmentation and the QC tables are added.
        outputSegmentationNode: an existing segmentation to update (one target only): segments of the
        atlas's names are replaced, others kept; None makes a new segmentation.
        """
        targetVolumeNodes = checkTargetVolumes(targetVolumeNodes)
        modelPath = checkModelPath(modelPath)
        checkAtlasOverride(atlasVolumeNode, atlasSegmentationNode)
        checkOutputSegmentation(outputSegmentationNode, targetVolumeNodes)
        settings = {
            "device": device,
            "prealign": bool(prealign),
            "refineSteps": int(refineSteps),
            "atlasVolume": atlasVolumeNode.GetName() if atlasVolumeNode is not None else None,
            "atlasSegmentation": atlasSegmentationNode.GetName() if atlasSegmentationNode is not None else None,
        }
        options = {
            "qcVolumes": bool(qcVolumes),
            "outputSegmentationNode": outputSegmentationNode,
            "modelPath": str(modelPath),
            "provenance": makeProvenance(modelPath, settings),
        }
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
            return TransferJob(
                self.launcher, arguments, folder, targetVolumeNodes, files, self.logCallback, options=options
            )
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def loadResults(self, job: TransferJob) -> list[TargetResult]:
        """The finished job's outputs as nodes in the targets' scene (all or nothing), then the work folder
        is removed, whatever the outcome. Raises `TransferError` if the job failed or an output is missing or
        off-grid; the scene is then as before."""
        try:
            job.raiseIfFailed()
        except TransferError:
            self.cleanUp(job)
            raise
        scene = job.targetNodes[0].GetScene()
        before = {scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())}
        hierarchy = outputs.subjectHierarchy(scene)
        itemsBefore = _folderItems(hierarchy)
        try:
            results = self._load(scene, job)
        except Exception as error:
            _removeNodesAddedSince(scene, before)
            for item in _folderItems(hierarchy) - itemsBefore:
                hierarchy.RemoveItem(item, False, False)
            if isinstance(error, TransferError):
                raise
            raise TransferError(f"Could not load the transfer results: {error}") from error
        finally:
            self.cleanUp(job)
        return results

    def cleanUp(self, job: TransferJob) -> None:
        """Remove the job's work folder (it holds copies of the patient scans) unless `keepFiles`."""
        if not self.keepFiles and job.files:
            shutil.rmtree(job.workFolder, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------------
    def _load(self, scene, job: TransferJob) -> list[TargetResult]:
        options = job.options
        qcVolumes = options.get("qcVolumes", True)
        modelPath = options.get("modelPath", "model")
        provenance = dict(options.get("provenance", {}))
        if job.childReport and "LTNet.settings" in provenance:  # what the child actually ran on
            settings = json.loads(provenance["LTNet.settings"])
            settings["ran"] = {key: value for key, value in job.childReport.items() if key != "event"}
            provenance["LTNet.settings"] = json.dumps(settings, sort_keys=True)
        first = job.files[0]
        segmentInfos = readSegmentInfos(first.labels) if str(first.labels).endswith(".seg.nrrd") else []
        atlasLabelsImage = _read(first.extra("atlas_labels")) if qcVolumes or not segmentInfos else None
        if not segmentInfos:
            segmentInfos = segmentInfosFromValues(np.unique(sitk.GetArrayViewFromImage(atlasLabelsImage)))

        many = len(job.targetNodes) > 1
        runFolder = (
            outputs.addFolder(scene, f"LTNet {outputs.modelDisplayName(modelPath)} ({len(job.targetNodes)} targets)")
            if many
            else None
        )
        targetFolders = [
            outputs.addFolder(scene, outputs.folderName(node.GetName(), modelPath), runFolder)
            for node in job.targetNodes
        ]
        sharedFolder = runFolder if many else targetFolders[0]
        sharedNodes = []

        colorNode = atlasVolume = atlasSegmentation = None
        if qcVolumes:
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
            sharedNodes += [colorNode, atlasVolume, atlasSegmentation]

        results = []
        for targetNode, files, folderItem in zip(job.targetNodes, job.files, targetFolders):
            name = targetNode.GetName()
            ijkToRas = ijkToRasFromNode(targetNode)

            labels = _onTargetGrid(files.labels, targetNode, "labels")
            segmentation = addSegmentationNode(
                scene, sitk.GetArrayFromImage(labels), ijkToRas, segmentInfos, f"{name} LTNet segmentation", colorNode
            )
            segmentation.SetAndObserveTransformNodeID(targetNode.GetTransformNodeID())
            made = [segmentation]
            transform = warped = jacobian = inverseConsistency = reconstructed = reconstructedSegmentation = None
            if qcVolumes:
                transform = addGridTransformNode(
                    scene, readDisplacementField(files.extra("field")), f"{name} LTNet transform"
                )
                transform.SetAndObserveTransformNodeID(targetNode.GetTransformNodeID())
                warped = _addTargetVolume(scene, targetNode, files.extra("warped_atlas"), "warped atlas")
                jacobian = _addTargetVolume(scene, targetNode, files.extra("jacobian"), "Jacobian determinant")
                inverseConsistency = _addTargetVolume(
                    scene, targetNode, files.extra("inverse_consistency"), "inverse-consistency error"
                )
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
                made += [transform, warped, jacobian, inverseConsistency, reconstructed, reconstructedSegmentation]
            for node in made:
                recordProvenance(node, provenance, name)
            outputs.moveToFolder(scene, made, folderItem)
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
                    segmentInfos=list(segmentInfos),
                    folderItem=folderItem,
                    provenance=provenance,
                )
            )

        targetTable, labelTable = addQcTableNodes(
            scene, [r.targetVolumeNode.GetName() for r in results], [r.qc for r in results]
        )
        for result in results:
            result.qcTableNode, result.labelQcTableNode = targetTable, labelTable
        sharedNodes += [targetTable, labelTable]
        for node in sharedNodes:
            recordProvenance(node, provenance)
        outputs.moveToFolder(scene, sharedNodes, sharedFolder)
        existing = options.get("outputSegmentationNode")
        if existing is not None:  # last, so that a failed load leaves the user's segmentation untouched
            result = results[0]
            result.segmentationNode = _updateExisting(existing, result.segmentationNode, result.targetVolumeNode)
            recordProvenance(existing, provenance, result.targetVolumeNode.GetName())
        return results


def exportResultLabelMap(result: TargetResult):
    """A label map volume of `result`'s segmentation on its target's grid, voxels holding the atlas label
    values, with a color table of the atlas names and colors; both go to the result's folder and carry its
    provenance. Returns the label map node."""
    labelMap, colorNode = outputs.exportLabelMap(
        result.segmentationNode,
        result.targetVolumeNode,
        result.segmentInfos,
        f"{result.targetVolumeNode.GetName()} LTNet label map",
    )
    for node in (labelMap, colorNode):
        recordProvenance(node, result.provenance, result.targetVolumeNode.GetName())
    if result.folderItem:
        outputs.moveToFolder(labelMap.GetScene(), [labelMap, colorNode], result.folderItem)
    return labelMap


def _onTargetGrid(path: Path, targetNode, what: str) -> sitk.Image:
    """The image at `path`, checked to lie exactly on the target's grid."""
    image = _read(path)
    if not sameGrid(image, ijkToRasFromNode(targetNode)):
        raise TransferError(
            f"ltnet wrote the {what} of '{targetNode.GetName()}' on another grid than the target's: "
            "this is a bug in ltnet, please report it."
        )
    return image


def _addTargetVolume(scene, targetNode, path: Path, label: str):
    """A scalar volume node "<target> <label>" from `path`, on the target's grid and under its transform."""
    node = addVolumeNodeFromImage(
        scene,
        _onTargetGrid(path, targetNode, label),
        f"{targetNode.GetName()} {label}",
        ijkToRas=ijkToRasFromNode(targetNode),
    )
    node.SetAndObserveTransformNodeID(targetNode.GetTransformNodeID())
    return node


def _updateExisting(existing, segmentation, targetNode):
    """Move the new segments into the user's segmentation `existing` (same-named segments replaced) and
    remove the new node; returns `existing`."""
    if existing.GetSegmentation().GetNumberOfSegments() == 0:
        existing.SetReferenceImageGeometryParameterFromVolumeNode(targetNode)
    existing.CreateDefaultDisplayNodes()
    outputs.replaceSegments(existing, segmentation)
    outputs.removeNode(segmentation)
    return existing


def _folderItems(hierarchy) -> set:
    """The subject-hierarchy items of the scene (to remove the folders of a failed load)."""
    items = vtk.vtkIdList()
    hierarchy.GetItemChildren(hierarchy.GetSceneItemID(), items, True)
    return {items.GetId(index) for index in range(items.GetNumberOfIds())}


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
