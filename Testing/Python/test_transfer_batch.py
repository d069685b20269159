"""The batch script, run the way Slicer runs it but with plain Python and slicer-core."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("slicer")
ltnet_sample = pytest.importorskip("ltnet.sample")

SCRIPT = Path(__file__).resolve().parents[2] / "LTNetTransfer" / "Scripts" / "ltnet_transfer_batch.py"


def model_path() -> Path:
    path = Path(os.environ.get("LTNET_TEST_MODEL", ltnet_sample.demo_model_path()))
    if not path.is_file():
        pytest.skip(f"the bundled demo model {path} is not there")
    return path


def run_batch(*arguments):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True, timeout=600
    )


def test_batch_writes_a_segmentation_per_target_and_a_qc_csv(tmp_path):
    import slicerio

    targets = ltnet_sample.held_out_scan_paths()[:2]
    done = run_batch(
        "--model", model_path(), "--targets", *targets, "--out", tmp_path, "--device", "cpu", "--refine", "3"
    )
    assert done.returncode == 0, done.stderr
    for target in targets:
        stem = target.name.split(".")[0]
        segmentation = slicerio.read_segmentation(str(tmp_path / f"{stem}.seg.nrrd"))
        assert {s["name"] for s in segmentation["segments"]} == {"Anterior hippocampus", "Posterior hippocampus"}
        assert {s["labelValue"] for s in segmentation["segments"]} == {1, 2}
    rows = list(csv.DictReader(open(tmp_path / "qc.csv")))
    assert [row["target"] for row in rows] == [str(t) for t in targets]
    assert all(row["verdict"] in ("OK", "check", "likely failed") for row in rows)
    assert "cycle_dice Anterior hippocampus" in rows[0]


def test_batch_bad_input_exits_non_zero_with_a_clear_message(tmp_path):
    done = run_batch("--model", model_path(), "--targets", tmp_path / "missing.nii.gz", "--out", tmp_path / "o")
    assert done.returncode == 2
    assert "ltnet_transfer_batch: error:" in done.stderr and "missing.nii.gz" in done.stderr
    assert not (tmp_path / "o").exists()

    target = ltnet_sample.held_out_scan_paths()[0]
    done = run_batch("--model", tmp_path / "none.pt", "--targets", target, "--out", tmp_path / "o")
    assert done.returncode == 2 and "does not exist" in done.stderr
