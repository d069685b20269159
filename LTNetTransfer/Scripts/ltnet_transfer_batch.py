"""Batch label transfer with Slicer: one `.seg.nrrd` per target and a QC CSV.

    Slicer --no-main-window --python-script ltnet_transfer_batch.py \\
        --targets scan1.nii.gz scan2.nrrd --out results/ [--model model.pt] [--device cpu] [--no-prealign] [--refine N]

Without --model the bundled demo model is used. Exit status 0 on success; 2 with one
line "ltnet_transfer_batch: error: ..." on bad input or a failed transfer.
Also runs with plain Python where the `slicer` package (slicer-core) is installed.
"""

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent):  # installed beside LTNetTransferLib, or in LTNetTransfer/Scripts
    if (folder / "LTNetTransferLib").is_dir() and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import slicer  # noqa: E402
from LTNetTransferLib import TransferError, TransferLogic  # noqa: E402
from LTNetTransferLib.qcTable import TARGET_COLUMNS  # noqa: E402

PROGRAM = "ltnet_transfer_batch"


def parseArguments(argv):
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Segment scans with an LTNet model (label transfer).")
    parser.add_argument("--model", help="LTNet model file (default: the bundled demo model)")
    parser.add_argument("--targets", nargs="+", required=True, help="scans to segment (NIfTI, NRRD, MHA ...)")
    parser.add_argument("--out", required=True, help="output folder: <target>.seg.nrrd per target and qc.csv")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-prealign", action="store_true", help="skip the affine pre-alignment")
    parser.add_argument(
        "--refine", type=int, default=0, metavar="N", help="test-time refinement steps per target (default 0: off)"
    )
    return parser.parse_args(argv)


def fileStem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".seg.nrrd", ".nrrd", ".nii", ".mha", ".mhd", ".nhdr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def loadTarget(scene, path: Path):
    """A scalar volume node read by Slicer's own volume reader."""
    if not path.is_file():
        raise TransferError(f"{path}: no such file; give the scans to segment with --targets.")
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", fileStem(path))
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        raise TransferError(f"{path}: cannot be read as a volume; give a NIfTI, NRRD or MHA file.")
    return node


def writeSegmentation(segmentationNode, path: Path) -> None:
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(segmentationNode):
        raise TransferError(f"{path}: could not be written; check that the folder is writable.")


def writeQcCsv(results, targets, path: Path) -> None:
    labelNames = [entry["name"] for entry in results[0].qc.get("label_cycle_dice", [])] if results else []
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["target", *[key for key, _ in TARGET_COLUMNS], *[f"cycle_dice {name}" for name in labelNames]])
        for result, target in zip(results, targets):
            dice = {entry["name"]: entry["dice"] for entry in result.qc.get("label_cycle_dice", [])}
            writer.writerow(
                [
                    str(target),
                    *[result.qc.get(key, "") for key, _ in TARGET_COLUMNS],
                    *[dice.get(name, "") for name in labelNames],
                ]
            )


def run(argv) -> int:
    args = parseArguments(argv)
    scene = slicer.mrmlScene if getattr(slicer, "mrmlScene", None) is not None else slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    if args.model:
        modelPath = Path(args.model)
    else:
        import ltnet.sample

        modelPath = ltnet.sample.demo_model_path()
    targets = [Path(target) for target in args.targets]
    out = Path(args.out)
    try:
        stems = [fileStem(target) for target in targets]
        if len(set(stems)) != len(stems):
            raise TransferError("two targets have the same file name; their outputs would overwrite each other.")
        nodes = [loadTarget(scene, target) for target in targets]
        out.mkdir(parents=True, exist_ok=True)
        logic = TransferLogic(logCallback=lambda message: print(message, file=sys.stderr, flush=True))
        results = logic.transferMany(
            modelPath, nodes, device=args.device, prealign=not args.no_prealign, refineSteps=args.refine
        )
        for result, stem in zip(results, stems):
            writeSegmentation(result.segmentationNode, out / f"{stem}.seg.nrrd")
        writeQcCsv(results, targets, out / "qc.csv")
    except TransferError as error:
        if error.details:
            print(error.details, file=sys.stderr)
        print(f"{PROGRAM}: error: {error}", file=sys.stderr, flush=True)
        return 2
    for result, target in zip(results, targets):
        print(f"{result.verdict or '?':<14} {result.qc.get('score', float('nan')):.3f}  {target}", flush=True)
    print(f"Wrote {len(results)} segmentation(s) and qc.csv to {out}", flush=True)
    return 0


def main():
    status = run(sys.argv[1:])
    app = getattr(slicer, "app", None)
    if app is not None and hasattr(slicer.util, "exit"):
        slicer.util.exit(status)  # inside Slicer: leave the application with this status
    else:
        sys.exit(status)


if __name__ == "__main__":
    main()
