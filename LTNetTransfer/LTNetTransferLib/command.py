"""The `ltnet transfer` command line and the names of the files it writes: the one place that knows them.

See docs/CORE_CONTRACT.md. One child process transfers onto every target. Per target with file
stem S, the work folder holds: inputs/S.nrrd (the target, written here), out/S.seg.nrrd (labels,
`--format seg.nrrd` keeps the atlas's segment names and colors), qc/S.json, extras/S_* (overlays,
field). An atlas override is written to atlas/atlas.nrrd and atlas/atlas_labels.seg.nrrd.
"""

from dataclasses import dataclass
from pathlib import Path

from LTNetCommonLib.nodeFiles import safeFileStem

#: Device choices of `ltnet transfer --device`.
DEVICES = ("auto", "cpu", "cuda")


def fileStem(index: int, nodeName: str) -> str:
    """A file-system-safe, unique stem for the index-th target."""
    return f"{index + 1:02d}_{safeFileStem(nodeName, 'target')}"


@dataclass(frozen=True)
class TargetFiles:
    """Where the inputs and outputs of one target are in the work folder."""

    folder: Path
    stem: str

    @property
    def target(self) -> Path:
        return self.folder / "inputs" / f"{self.stem}.nrrd"

    @property
    def labels(self) -> Path:
        return self.folder / "out" / f"{self.stem}.seg.nrrd"

    @property
    def qc(self) -> Path:
        return self.folder / "qc" / f"{self.stem}.json"

    def extra(self, kind: str) -> Path:
        """kind: warped_atlas, reconstructed_atlas, reconstructed_labels, atlas, atlas_labels, jacobian,
        inverse_consistency (.nrrd) or field (.h5)."""
        suffix = ".h5" if kind == "field" else ".nrrd"
        return self.folder / "extras" / f"{self.stem}_{kind}{suffix}"


@dataclass(frozen=True)
class AtlasFiles:
    """Where an atlas override (the user's atlas volume and segmentation) is written in the work folder."""

    folder: Path

    @property
    def image(self) -> Path:
        return self.folder / "atlas" / "atlas.nrrd"

    @property
    def labels(self) -> Path:
        return self.folder / "atlas" / "atlas_labels.seg.nrrd"


#: Sub-folders of the work folder.
SUB_FOLDERS = ("inputs", "out", "qc", "extras", "atlas", "logs")


def transferArguments(
    modelPath,
    folder: Path,
    targets: list,
    device: str = "auto",
    prealign: bool = True,
    atlas: AtlasFiles | None = None,
    refineSteps: int = 0,
) -> list[str]:
    """The arguments after `python -m ltnet` for all `targets` (TargetFiles) in one process.

    atlas: replaces the model's atlas (`--atlas-image`, `--atlas-labels`) when given.
    refineSteps: test-time refinement steps per target (`--refine`), 0 for none.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if int(refineSteps) != refineSteps or refineSteps < 0:
        raise ValueError(f"refinement steps must be a whole number >= 0, got {refineSteps!r}")
    folder = Path(folder)
    arguments = [
        "transfer",
        "--model",
        str(modelPath),
        "--target",
        *[str(files.target) for files in targets],
        "--out",
        str(folder / "out"),
        "--format",
        "seg.nrrd",
        "--qc",
        str(folder / "qc"),
        "--extras",
        str(folder / "extras"),
        "--device",
        device,
        "--progress",
        "jsonl",
    ]
    if atlas is not None:
        arguments += ["--atlas-image", str(atlas.image), "--atlas-labels", str(atlas.labels)]
    if not prealign:
        arguments.append("--no-prealign")
    if refineSteps:
        arguments += ["--refine", str(int(refineSteps))]
    return arguments


#: Refinement steps the panel starts with, per device the run will use (docs/SLICER.md): 3 steps gave most of the
#: gain on the benchmarks at under a second per hippocampus target on a CPU; 20 steps (the larger gain) took 2.0 s
#: at a 160x192x224 grid on an H100 against 168 s on a CPU (docs/BENCHMARKS.md).
RECOMMENDED_REFINE_STEPS = {"cpu": 3, "cuda": 20}


def recommendedRefineSteps(device: str, gpuFound: bool) -> int:
    """The refinement steps to offer for a device choice ("auto", "cpu", "cuda"); "auto" uses the GPU if found."""
    runsOn = "cuda" if device == "cuda" or (device == "auto" and gpuFound) else "cpu"
    return RECOMMENDED_REFINE_STEPS[runsOn]
