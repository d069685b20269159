"""``ltnet transfer`` on a cohort: one output per target, nothing overwritten silently, restartable, progress."""

import json
import shutil

import pytest
import SimpleITK as sitk
import torch
from dicom_helpers import write_dicom_series

from ltnet import sample
from ltnet.cli import main
from ltnet.errors import LTNetError
from ltnet.outputs import plan_jobs

DEMO_MODEL = sample.demo_model_path()
needs_demo_model = pytest.mark.skipif(not DEMO_MODEL.exists(), reason="needs the bundled demo model")
SCANS = sample.held_out_scan_paths()


def transfer(capsys, *argv):
    code = main(["transfer", "--model", str(DEMO_MODEL), "--device", "cpu", "--workers", "0", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, *words):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ltnet: error: "), err
    assert all(str(word) in lines[0] for word in words), (words, lines[0])


def copies(tmp_path, names):
    """The held-out scans copied to ``tmp_path/<name>`` (name may hold folders), in order."""
    paths = []
    for scan, name in zip(SCANS, names):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(scan, path)
        paths.append(path)
    return paths


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_clashing_names_get_their_shortest_distinguishing_parents_for_every_output(tmp_path):
    targets = [tmp_path / "pat1" / "T1", tmp_path / "pat2" / "T1", tmp_path / "a" / "x" / "s.nii.gz"]
    targets += [tmp_path / "b" / "x" / "s.nii.gz", tmp_path / "c" / "other.nrrd"]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.mkdir() if not target.suffix else target.write_bytes(b"")
    jobs = plan_jobs(targets, tmp_path / "out", None, tmp_path / "qc", tmp_path / "extras")
    assert [job.output.name for job in jobs] == [
        "pat1_T1.nii.gz",
        "pat2_T1.nii.gz",
        "a_x_s.nii.gz",
        "b_x_s.nii.gz",
        "other.nrrd",  # no clash: unchanged
    ]
    assert [job.qc_output.name for job in jobs] == [
        "pat1_T1.json",
        "pat2_T1.json",
        "a_x_s.json",
        "b_x_s.json",
        "other.json",
    ]
    assert jobs[0].extras_files()["jacobian"] == tmp_path / "extras" / "pat1_T1_jacobian.nrrd"
    assert jobs[1].extras_files()["field"] == tmp_path / "extras" / "pat2_T1_field.h5"
    assert len({path for job in jobs for path in job.files()}) == 5 * (2 + 8)
    assert not (tmp_path / "out").exists()  # planning writes nothing
    same_folder = [tmp_path / "c" / "other.nii.gz", tmp_path / "c" / "other.nrrd"]
    same_folder[0].write_bytes(b"")
    assert [job.output.name for job in plan_jobs(same_folder, tmp_path / "o", ".nii.gz")] == [
        "other_nii_gz.nii.gz",
        "other_nrrd.nii.gz",
    ]
    with pytest.raises(LTNetError, match="is a file; --out needs a folder"):
        plan_jobs(same_folder, same_folder[0], None)
    with pytest.raises(LTNetError, match="given twice"):
        plan_jobs([targets[2], tmp_path / "a" / "x" / ".." / "x" / "s.nii.gz"], tmp_path / "o", None)


@needs_demo_model
def test_same_named_dicom_folders_each_get_their_own_labels(tmp_path, capsys):
    folders = []
    for patient, scan in zip(("pat1", "pat2"), SCANS):
        image = sitk.RescaleIntensity(sitk.ReadImage(str(scan), sitk.sitkFloat32), 0, 1000)
        folders.append(
            write_dicom_series(image, tmp_path / patient / "T1", f"1.2.826.0.1.3680043.2.1125.1.{patient[-1]}")
        )
    code, _, err = transfer(capsys, "--target", *folders, "--out", tmp_path / "labels", "--no-qc")
    assert code == 0, err
    written = sorted((tmp_path / "labels").iterdir())
    assert [p.name for p in written] == ["pat1_T1.nii.gz", "pat2_T1.nii.gz"]
    first, second = (sitk.ReadImage(str(p)) for p in written)
    assert first.GetSize() == sitk.ReadImage(str(SCANS[0])).GetSize()  # each on its own scan's grid
    assert second.GetSize() == sitk.ReadImage(str(SCANS[1])).GetSize()
    assert "2 scan(s)" in err


@needs_demo_model
def test_same_named_files_in_two_folders_and_the_same_file_twice(tmp_path, capsys):
    targets = copies(tmp_path, ["site_a/scan.nii.gz", "site_b/scan.nii.gz"])
    code, _, err = transfer(capsys, "--target", *targets, "--out", tmp_path / "labels", "--no-qc")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["site_a_scan.nii.gz", "site_b_scan.nii.gz"]
    twice = tmp_path / "site_b" / ".." / "site_a" / "scan.nii.gz"
    code, _, err = transfer(capsys, "--target", targets[0], twice, "--out", tmp_path / "again", "--no-qc")
    one_line_error(code, err, twice, "given twice", targets[0])
    assert not (tmp_path / "again").exists()


@needs_demo_model
def test_an_existing_output_is_refused_before_anything_is_written_and_overwrite_replaces_it(tmp_path, capsys):
    targets = copies(tmp_path / "in", ["a.nii.gz", "b.nii.gz", "c.nii.gz"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.nii.gz").write_bytes(b"precious")
    code, _, err = transfer(capsys, "--target", *targets, "--out", out, "--qc", tmp_path / "qc")
    one_line_error(code, err, out / "b.nii.gz", "--overwrite", "--skip-existing")
    assert snapshot(out) == {out.relative_to(out) / "b.nii.gz": b"precious"} and not (tmp_path / "qc").exists()
    # an existing QC file or extras file is refused the same way
    (tmp_path / "extras").mkdir()
    (tmp_path / "extras" / "a_field.h5").write_bytes(b"old")
    code, _, err = transfer(
        capsys, "--target", targets[0], "--out", tmp_path / "o.nii.gz", "--extras", tmp_path / "extras"
    )
    one_line_error(code, err, tmp_path / "extras" / "a_field.h5", "--overwrite")
    code, _, err = transfer(capsys, "--target", targets[1], "--out", out / "b.nii.gz", "--no-qc", "--overwrite")
    assert code == 0, err
    assert sitk.ReadImage(str(out / "b.nii.gz")).GetSize() == sitk.ReadImage(str(targets[1])).GetSize()
    with pytest.raises(SystemExit):  # argparse: not allowed with each other
        main(["transfer", "--model", "m", "--target", "t", "--out", "o", "--overwrite", "--skip-existing"])
    assert "not allowed with" in capsys.readouterr().err


@needs_demo_model
def test_a_stopped_cohort_run_restarts_with_skip_existing_and_trusts_no_leftover(tmp_path, capsys):
    targets = copies(tmp_path / "in", ["a.nii.gz", "b.nii.gz", "c.nii.gz"])
    out, qc = tmp_path / "out", tmp_path / "qc"
    out.mkdir()
    qc.mkdir()
    # as a run killed while writing b leaves it: a finished (unchanged) a, b's temporary file, nothing of c
    (out / "a.nii.gz").write_bytes(b"finished before")
    (qc / "a.json").write_text("{}")
    (out / ".b.tmp-99999.nii.gz").write_bytes(b"half an image")
    # and c's label map without its QC file: not finished when --qc is asked
    (out / "c.nii.gz").write_bytes(b"no qc yet")
    code, stdout, err = transfer(
        capsys, "--target", *targets, "--out", out, "--qc", qc, "--skip-existing", "--progress", "jsonl"
    )
    assert code == 0, err
    events = [json.loads(line) for line in stdout.splitlines()]
    done = [e["target"] for e in events if e["event"] == "progress"]
    assert done == [str(targets[1]), str(targets[2])] and all(e["total"] == 2 for e in events if "total" in e)
    assert (out / "a.nii.gz").read_bytes() == b"finished before" and (qc / "a.json").read_text() == "{}"
    for name in ("b", "c"):
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{name}.nii.gz")))
        assert (labels > 0).sum() > 100 and json.loads((qc / f"{name}.json").read_text())["verdict"]
    assert "1 target(s) done already" in err
    code, stdout, _ = transfer(capsys, "--target", *targets, "--out", out, "--qc", qc, "--skip-existing")
    assert code == 0  # all done: nothing computed
    assert not [p for p in out.iterdir() if ".tmp-" in p.name and p.name != ".b.tmp-99999.nii.gz"]


@needs_demo_model
def test_one_target_shows_its_stages_and_its_verdict_and_jsonl_says_what_computes(tmp_path, capsys):
    code, _, err = transfer(capsys, "--target", SCANS[0], "--out", tmp_path / "l.nii.gz", "--refine", "2")
    assert code == 0
    screen = err.replace("\r", "\n")
    assert "network" in screen and "refine 1/2" in screen and "refine 2/2" in screen
    assert "QC: " in err and str(SCANS[0]) in err.splitlines()[-2]
    code, stdout, _ = transfer(capsys, "--target", SCANS[0], "--out", tmp_path / "j.nii.gz", "--progress", "jsonl")
    events = [json.loads(line) for line in stdout.splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["device"] == "cpu" and start["precision"] in ("float32", "bfloat16")
    assert set(start) == {"event", "torch", "cuda", "device", "device_name", "precision", "gpu_visible_but_unused"}
    stages = [e["stage"] for e in events if e["event"] == "stage"]
    assert stages == ["prealign", "network", "labels", "qc"]
    first = next(e for e in events if e["event"] == "stage")
    assert first == {
        "event": "stage",
        "target": str(SCANS[0]),
        "index": 1,
        "total": 1,
        "stage": "prealign",
        "step": 1,
        "steps": 1,
    }
    assert [e["event"] for e in events[-2:]] == ["progress", "done"]
    assert start["gpu_visible_but_unused"] == torch.cuda.is_available()  # --device cpu


@needs_demo_model
def test_a_target_stopped_while_its_extras_are_written_is_not_taken_as_done(tmp_path, capsys, monkeypatch):
    """The label map is written last, so --skip-existing never trusts a target whose QC or extras are missing."""
    from ltnet.commands import transfer as transfer_command

    def stopped(*arguments):
        raise KeyboardInterrupt  # as if the run were killed while writing the extras

    monkeypatch.setattr(transfer_command, "write_extras", stopped)
    out, qc, extras = tmp_path / "labels", tmp_path / "qc", tmp_path / "extras"
    code, _, _ = transfer(capsys, "--target", SCANS[0], "--out", out, "--qc", qc, "--extras", extras)
    assert code == 130  # stopped
    assert not (out / SCANS[0].name).exists() and not (qc / f"{sample_name(SCANS[0])}.json").exists()
    monkeypatch.undo()
    code, _, _ = transfer(capsys, "--target", SCANS[0], "--out", out, "--qc", qc, "--extras", extras, "--skip-existing")
    assert code == 0 and (out / SCANS[0].name).exists() and any(extras.glob("*_field.h5"))


def sample_name(path):
    return path.name.removesuffix(".nii.gz")
