"""Checks of the user's inputs, done before anything is added to the scene."""

from pathlib import Path

from .errors import TransferError

#: Fewer voxels along an axis is a 2-D image or a slab (as `ltnet.data.io.MIN_SIZE`).
MIN_SIZE = 4


def checkTargetVolume(volumeNode, role: str = "Target volume") -> None:
    """Raise `TransferError` unless `volumeNode` is a 3-D scalar volume node with voxels.
    role: how the messages name the volume ("Target volume", "Atlas volume")."""
    if volumeNode is None:
        raise TransferError("No target volume: select the scan(s) to segment.")
    if not volumeNode.IsA("vtkMRMLScalarVolumeNode") or volumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
        raise TransferError(
            f"'{volumeNode.GetName()}' is a {volumeNode.GetClassName()}, not a scalar volume: "
            f"select a grayscale scan as {role.split()[0].lower()}."
        )
    imageData = volumeNode.GetImageData()
    if imageData is None or imageData.GetNumberOfPoints() == 0:
        raise TransferError(f"{role} '{volumeNode.GetName()}' has no voxels: load the scan again.")
    if imageData.GetNumberOfScalarComponents() != 1:
        raise TransferError(
            f"{role} '{volumeNode.GetName()}' has {imageData.GetNumberOfScalarComponents()} "
            "components per voxel: select a single-channel (grayscale) scan."
        )
    dimensions = imageData.GetDimensions()
    if min(dimensions) < MIN_SIZE:
        raise TransferError(
            f"{role} '{volumeNode.GetName()}' is {dimensions[0]}x{dimensions[1]}x{dimensions[2]} "
            "voxels, not a 3-D scan: LTNet needs a 3-D volume."
        )
    transformNode = volumeNode.GetParentTransformNode()
    if transformNode is not None and not transformNode.IsTransformToWorldLinear():
        raise TransferError(
            f"{role} '{volumeNode.GetName()}' is under the non-linear transform "
            f"'{transformNode.GetName()}': harden or remove it first."
        )


def checkTargetVolumes(volumeNodes) -> list:
    """The target nodes as a list, each checked; at least one and no duplicates."""
    volumeNodes = list(volumeNodes or [])
    if not volumeNodes:
        raise TransferError("No target volume: select the scan(s) to segment.")
    for volumeNode in volumeNodes:
        checkTargetVolume(volumeNode)
    if len({volumeNode.GetID() for volumeNode in volumeNodes}) != len(volumeNodes):
        raise TransferError("The same target volume is selected twice: select each scan once.")
    return volumeNodes


def checkModelPath(modelPath) -> Path:
    """The model file as a Path; raise `TransferError` if it is not an existing file."""
    if modelPath is None or str(modelPath).strip() == "":
        raise TransferError("No model: choose the bundled demo model or an LTNet model file.")
    path = Path(modelPath)
    if not path.is_file():
        raise TransferError(
            f"Model file '{path}' does not exist: choose an LTNet model file "
            "(written by LTNetTraining or `ltnet train`)."
        )
    return path


def checkAtlasOverride(atlasVolumeNode, atlasSegmentationNode) -> None:
    """The atlas override needs both the image and its segmentation, or neither."""
    if (atlasVolumeNode is None) != (atlasSegmentationNode is None):
        raise TransferError(
            "Atlas override needs both an atlas volume and an atlas segmentation "
            "(or neither, to use the model's own atlas)."
        )
    if atlasVolumeNode is not None:
        checkTargetVolume(atlasVolumeNode, "Atlas volume")
        if atlasSegmentationNode.GetSegmentation().GetNumberOfSegments() == 0:
            raise TransferError(f"Atlas segmentation '{atlasSegmentationNode.GetName()}' has no segments.")


def checkOutputSegmentation(segmentationNode, targetVolumeNodes) -> None:
    """An existing output segmentation takes the result of one target only."""
    if segmentationNode is None:
        return
    if not segmentationNode.IsA("vtkMRMLSegmentationNode"):
        raise TransferError(f"Output '{segmentationNode.GetName()}' is not a segmentation: choose one or Create new.")
    if len(targetVolumeNodes) > 1:
        raise TransferError(
            f"Output segmentation '{segmentationNode.GetName()}' can take one target's result, not "
            f"{len(targetVolumeNodes)}: choose Create new to segment several targets."
        )
