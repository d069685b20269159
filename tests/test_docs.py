"""The README's and BENCHMARKS.md's results tables are what benchmarks/summary.py computes from the benchmark CSVs."""

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_summary():
    spec = importlib.util.spec_from_file_location("summary", ROOT / "benchmarks" / "summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_and_benchmarks_tables_match_the_csvs():
    summary = load_summary()
    readme, benchmarks = (
        (ROOT / "README.md").read_text(encoding="utf-8"),
        (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8"),
    )
    assert summary.readme_text(readme) == readme, "README results table is stale: run python benchmarks/summary.py"
    assert summary.benchmarks_text(benchmarks) == benchmarks, (
        "BENCHMARKS.md summary is stale: run benchmarks/summary.py"
    )
    assert "| **LTNet** | 0." in readme


def test_table_follows_the_csvs(tmp_path):
    summary = load_summary()
    csv_dir = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "docs" / "benchmarks", csv_dir)
    before = summary.results_table(csv_dir)
    path = csv_dir / "classical_hippocampus.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    column = header.index("mean_dice")
    edited = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        if cells[header.index("method")] == "elastix affine + B-spline":
            cells[column] = "0.5"
        edited.append(",".join(cells))
    path.write_text("\n".join(edited) + "\n", encoding="utf-8")
    after = summary.results_table(csv_dir)
    assert "| elastix affine + B-spline | 0.500 |" in after and after != before
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert summary.readme_text(readme, csv_dir) != readme


def test_the_distilled_row_appears_with_every_data_sets_distillation_and_times_as_a_ratio(tmp_path):
    summary = load_summary()
    csv_dir = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "docs" / "benchmarks", csv_dir)
    (csv_dir / "distill_ibsr18.csv").unlink(missing_ok=True)
    assert "LTNet distilled" not in summary.results_table(csv_dir)  # the IBSR distillation not measured
    with open(csv_dir / "distill.csv", newline="", encoding="utf-8") as handle:
        hippocampus = list(csv.DictReader(handle))

    def as_ibsr(seeds: set[str]) -> str:
        """The hippocampus rows of ``seeds`` as IBSR's, the distilled model twice as slow as its source."""
        ibsr = [
            {**row, "mean_dice": "0.5", "seconds_cpu": "2.0" if row["method"] == "source model" else "4.0"}
            for row in hippocampus
            if row["method"] in ("source model", summary.DISTILLED[1]) and row["seed"] in seeds
        ]
        with open(csv_dir / "distill_ibsr18.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(ibsr[0]))
            writer.writeheader()
            writer.writerows(ibsr)
        return summary.results_table(csv_dir)

    table = as_ibsr({"0"})
    distilled = next(line for line in table.splitlines() if line.startswith("| **LTNet distilled** |"))
    assert distilled.endswith("| 0.500 | 2.00x LTNet |"), distilled
    assert "training seeds: 2 (MSD hippocampus), 1 (IBSR brains)" in table
    assert "training seeds: 2 on each data set" in as_ibsr({"0", "1"})


def test_missing_method_is_one_clear_error(tmp_path):
    summary = load_summary()
    csv_dir = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "docs" / "benchmarks", csv_dir)
    path = csv_dir / "accuracy_ibsr18.csv"
    path.write_text(
        "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if "(3 steps)" not in line) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(SystemExit, match="no rows for 'LT-Net \\(--lambda2 1\\) \\+ refinement \\(3 steps\\)'"):
        summary.results_table(csv_dir)


def test_speed_sentence_follows_the_cpu_speed_results(tmp_path):
    summary = load_summary()
    csv_dir = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "docs" / "benchmarks", csv_dir)
    path = csv_dir / "cpu_speed.json"
    speed = json.loads(path.read_text(encoding="utf-8"))
    speed["elastix_seconds"] = 10.0
    speed["seconds"]["labels"] = {"torch": 12.0, "openvino": 8.0}
    speed["seconds"]["qc"] = {"torch": 30.0, "openvino": 20.0}
    path.write_text(json.dumps(speed), encoding="utf-8")
    sentence = summary.cpu_speed_sentence(csv_dir)
    assert "0.80 times as long as elastix's B-spline registration of the same pair with the `fast` extra" in sentence
    assert "and 1.20 times as long in torch alone (8.0 s and 12.0 s; elastix 10.0 s)" in sentence
    assert "the full QC 2.00 times elastix's" in sentence  # the first runtime's, OpenVINO's
    del speed["seconds"]["labels"]["openvino"]  # measured without the extra
    path.write_text(json.dumps(speed), encoding="utf-8")
    assert "takes 1.20 times as long as elastix's B-spline registration of the same pair in torch alone (12.0 s;" in (
        summary.cpu_speed_sentence(csv_dir)
    )
    speed["elastix_seconds"] = None
    path.write_text(json.dumps(speed), encoding="utf-8")
    with pytest.raises(SystemExit, match="has no elastix time"):
        summary.cpu_speed_sentence(csv_dir)
