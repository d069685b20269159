"""The `ltnet transfer` command line and the names of the files it writes: the one place that knows them.

See docs/CORE_CONTRACT.md. Per target with file stem S, the work folder holds:
inputs/S.nrrd (the target, written here), out/S.seg.nrrd (labels), qc/S.json, extras/S_* (overlays, field).
"""

import re
from dataclasses import dataclass
from pathlib import Path

#: Device choices of `ltnet transfer --device`.
DEVICES = ("auto", "cpu", "cuda")


def fileStem(index: int, nodeName: str) -> str:
    """A file-system-safe, unique stem for the index-th target."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeName).strip("._") or "target"
    return f"{index + 1:02d}_{safe[:40]}"


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


def transferArguments(modelPath, target: TargetFiles, device: str = "auto", prealign: bool = True) -> list[str]:
    """The arguments after `python -m ltnet` for one target.

    One child per target: `--out` named `.seg.nrrd` keeps the atlas's segment names and colors,
    which `ltnet transfer` writes only for a single target.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    arguments = ["transfer", "--model", str(modelPath), "--target", str(target.target),
                 "--out", str(target.labels), "--qc", str(target.qc), "--extras", str(target.folder / "extras"),
                 "--device", device, "--progress", "jsonl"]
    if not prealign:
        arguments.append("--no-prealign")
    return arguments
