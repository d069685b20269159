"""Finding the cohort's image files in a folder, and telling readable from unreadable ones."""

import os
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
LABEL_SUFFIXES = (".seg.nrrd",)


@dataclass
class CohortFolderScan:
    """What a folder holds: `readable` image paths and `unreadable` (path, reason) pairs."""

    folder: str
    readable: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)

    def summary(self):
        """One line for the panel, e.g. '12 images, 1 unreadable: a.nii.gz (reason)'."""
        text = f"{len(self.readable)} image{'s' if len(self.readable) != 1 else ''}"
        if self.unreadable:
            names = ", ".join(f"{Path(path).name} ({reason})" for path, reason in self.unreadable)
            text += f", {len(self.unreadable)} unreadable: {names}"
        return text


def isImageFileName(name):
    lower = name.lower()
    return lower.endswith(IMAGE_SUFFIXES) and not lower.endswith(LABEL_SUFFIXES)


def readImageHeader(path):
    """(an ImageFileReader with the file's header read, None), or (None, why it cannot be read, in words)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return None, lines[-1] if lines else "cannot be read"
    return reader, None


def imageReadProblem(path):
    """None when SimpleITK can read the file's header as a 3D image, else the reason in words."""
    reader, problem = readImageHeader(path)
    if problem is None and reader.GetDimension() != 3:
        problem = f"{reader.GetDimension()}D image, a 3D image is needed"
    return problem


def scanCohortFolder(folder):
    """List the image files (not recursive, sorted) of `folder`, each checked for readability."""
    scan = CohortFolderScan(str(folder))
    if not folder or not os.path.isdir(folder):
        return scan
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path) or not isImageFileName(name):
            continue
        problem = imageReadProblem(path)
        if problem is None:
            scan.readable.append(path)
        else:
            scan.unreadable.append((path, problem))
    return scan
