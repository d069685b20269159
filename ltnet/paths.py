"""Expanding input paths (files, folders, globs) into the list of scans."""

import glob
from pathlib import Path

from ltnet.data.io import SEG_NRRD, output_suffix
from ltnet.errors import LTNetError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def expand_images(patterns, what: str = "--images") -> list[Path]:
    """Files, folders (their image files, or the folder itself if it is a DICOM series) and globs, sorted.

    A scan reached twice (given twice, or by a file and a glob) is refused: ``refuse_duplicates``.
    """
    found = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if is_image_file(p))
            found.extend(files or [path])  # a folder without image files is taken as a DICOM series
        elif path.exists():
            found.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(pattern)))
            if not matches:
                raise LTNetError(f"{pattern}: no such file, folder or matching files ({what}); check the path.")
            found.extend(matches)
    if not found:
        raise LTNetError(f"{what}: no images given.")
    refuse_duplicates(found, what)
    return found


def refuse_duplicates(paths: list[Path], what: str) -> None:
    """An ``LTNetError`` for the first file that ``paths`` holds twice (symbolic links and ``..`` resolved)."""
    first = {}
    for path in paths:
        key = Path(path).resolve()
        if key in first:
            raise LTNetError(
                f"{path}: is given twice ({what}; also as {first[key]}); give each scan once (nothing was written)."
            )
        first[key] = path


def is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.endswith(SEG_NRRD) and path.name.lower().endswith(IMAGE_SUFFIXES)


def stem(path: Path) -> str:
    """File name without its image suffix (``a.nii.gz`` -> ``a``)."""
    suffix = output_suffix(path)
    return path.name[: -len(suffix)] if suffix and path.is_file() else path.name
