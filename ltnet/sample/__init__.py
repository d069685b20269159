"""The bundled sample: an atlas and ten scans from the Medical Segmentation Decathlon hippocampus task.

CC-BY-SA 4.0 (see README.md and LICENSE-CC-BY-SA-4.0.txt beside this file).
The demo model was trained on the first seven scans (and other scans of the
same data set); the last three, ``HELD_OUT``, were never seen in training.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
HELD_OUT = ("hippocampus_058", "hippocampus_067", "hippocampus_083")


def atlas_image_path() -> Path:
    return HERE / "atlas_image.nii.gz"


def atlas_labels_path() -> Path:
    """The atlas labels as a Slicer ``.seg.nrrd`` (1 anterior, 2 posterior hippocampus, with names and colors)."""
    return HERE / "atlas_labels.seg.nrrd"


def scan_paths() -> list[Path]:
    return sorted((HERE / "images").glob("*.nii.gz"))


def label_path(scan: Path) -> Path:
    """The reference label map of a sample scan (for scoring only)."""
    return HERE / "labels" / Path(scan).name


def held_out_scan_paths() -> list[Path]:
    return [p for p in scan_paths() if p.name.split(".")[0] in HELD_OUT]


def training_scan_paths() -> list[Path]:
    return [p for p in scan_paths() if p.name.split(".")[0] not in HELD_OUT]


def demo_model_path() -> Path:
    return HERE / "demo_model.pt"
