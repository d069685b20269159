"""Expanding input paths and naming outputs."""

import glob
from pathlib import Path

from ltnet.data.io import SEG_NRRD, output_suffix
from ltnet.errors import LTNetError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def expand_images(patterns, what: str = "--images") -> list[Path]:
    """Files, folders (their image files, or the folder itself if it is a DICOM series) and globs, sorted, unique."""
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
    unique = list(dict.fromkeys(found))
    if not unique:
        raise LTNetError(f"{what}: no images given.")
    return unique


def is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.endswith(SEG_NRRD) and path.name.lower().endswith(IMAGE_SUFFIXES)


def stem(path: Path) -> str:
    """File name without its image suffix (``a.nii.gz`` -> ``a``)."""
    suffix = output_suffix(path)
    return path.name[: -len(suffix)] if suffix and path.is_file() else path.name


def output_paths(targets: list[Path], out, suffix: str, keep_names: bool = False) -> list[Path]:
    """One output per target: ``out`` itself for a single target named like a file, else a file in folder ``out``.

    In the folder, each output is named ``<target stem><suffix>``, or the target's own
    file name with ``keep_names`` (a DICOM folder target always gets ``suffix``).
    """
    out = Path(out)
    if len(targets) == 1 and not out.is_dir() and output_suffix(out) in IMAGE_SUFFIXES + (SEG_NRRD, ".json"):
        outputs = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        outputs = [out / (t.name if keep_names and t.is_file() else stem(t) + suffix) for t in targets]
    resolved_inputs = {t.resolve() for t in targets}
    for output in outputs:
        if output.resolve() in resolved_inputs:
            raise LTNetError(f"{output}: would overwrite an input scan; choose another output folder.")
    return outputs
