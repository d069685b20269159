"""The `ltnet` command: its contract, and one clear line for each bad input with nothing written."""

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from sample_training import train_argv

from ltnet import sample
from ltnet.cli import build_parser, main
from ltnet.data.intensity import normalise
from ltnet.data.io import read_image, read_label_map
from ltnet.data.prealign import affine_prealign
from ltnet.data.prepare import channel_indices, prepare_scan
from ltnet.errors import LTNetError
from ltnet.metrics import dice_per_label
from ltnet.model_file import load_model, save_model
from ltnet.transfer import transfer

DEMO_MODEL = sample.demo_model_path()
needs_demo_model = pytest.mark.skipif(
    not DEMO_MODEL.exists(), reason="the bundled demo model is built by benchmarks/build_demo_model.py"
)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train_args(out, atlas_image=None, atlas_labels=None, images=None):
    return train_argv(
        out, iterations=1, grid=(32, 32, 32), images=images, atlas_image=atlas_image, atlas_labels=atlas_labels
    )


def write_image(array, path, like=None):
    image = sitk.GetImageFromArray(array)
    if like is not None:
        image.CopyInformation(like)
    sitk.WriteImage(image, str(path))
    return path


def assert_one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ltnet: error: "), err
    for word in words:
        assert str(word) in lines[0], (word, lines[0])


@pytest.mark.parametrize("problem", ["2-D image", "4-D image", "labels on another grid", "empty labels", "NaN scan"])
def test_train_rejects_bad_input_with_one_line_and_writes_nothing(tmp_path, capsys, problem):
    atlas = sitk.ReadImage(str(sample.atlas_image_path()))
    labels = read_label_map(sample.atlas_labels_path()).image
    out = tmp_path / "out" / "model.pt"
    out.parent.mkdir()
    args = {"atlas_image": None, "atlas_labels": None, "images": None}
    if problem == "2-D image":
        bad = args["atlas_image"] = write_image(np.random.rand(30, 30).astype(np.float32), tmp_path / "flat.nii.gz")
    elif problem == "4-D image":
        volume = sitk.GetImageFromArray(np.random.rand(8, 8, 8).astype(np.float32))
        bad = args["atlas_image"] = tmp_path / "series.nii.gz"
        sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(bad))
    elif problem == "labels on another grid":
        shifted = sitk.Image(labels)
        shifted.SetOrigin([o + 3.0 for o in labels.GetOrigin()])
        bad = args["atlas_labels"] = tmp_path / "shifted.nii.gz"
        sitk.WriteImage(shifted, str(bad))
    elif problem == "empty labels":
        bad = args["atlas_labels"] = write_image(
            np.zeros(sitk.GetArrayViewFromImage(labels).shape, np.uint8), tmp_path / "empty.nii.gz", labels
        )
    else:
        array = sitk.GetArrayFromImage(atlas).astype(np.float32)
        array[5, 5, 5] = np.nan
        bad = args["images"] = [write_image(array, tmp_path / "nan.nrrd", atlas)]
        bad = bad[0]
    code, _, err = run(capsys, *train_args(out, **args))
    assert_one_line_error(code, err, bad)
    assert list(out.parent.iterdir()) == []


def test_train_never_overwrites_a_model_and_resume_needs_one(tmp_path, capsys):
    out = tmp_path / "model.pt"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, *train_args(out))
    assert_one_line_error(code, err, out, "--resume")
    assert out.read_bytes() == b"precious"
    code, _, err = run(capsys, *train_args(tmp_path / "none.pt"), "--resume")
    assert_one_line_error(code, err, "none.pt", "no model to resume")


def test_without_switches_terms_off_and_coupling_must_be_a_share(tmp_path, capsys):
    from ltnet.model_file import load_model

    code, _, _ = run(capsys, *train_args(tmp_path / "ablation.pt"), "--without", "trans", "gan", "--coupling", "0.2")
    assert code == 0
    weights = load_model(tmp_path / "ablation.pt").weights
    assert weights.trans == 0.0 and weights.gan == 0.0 and weights.cyc == 10.0 and weights.anatomy_cyc == 3.0
    assert weights.coupling == 0.2  # kept in the model: a resumed run and test-time refinement use it
    code, _, err = run(capsys, *train_args(tmp_path / "c.pt"), "--coupling", "1.5")
    assert_one_line_error(code, err, "--coupling")
    assert not (tmp_path / "c.pt").exists()


def test_field_downsize_is_kept_in_the_model_and_must_be_at_least_one(tmp_path, capsys):
    assert run(capsys, *train_args(tmp_path / "smooth.pt"), "--field-downsize", "2")[0] == 0
    model = load_model(tmp_path / "smooth.pt")
    assert model.networks.config.field_downsize == 2 and model.networks.g_forward.field_downsize == 2
    code, _, err = run(capsys, *train_args(tmp_path / "d.pt"), "--field-downsize", "0")
    assert_one_line_error(code, err, "--field-downsize")
    assert not (tmp_path / "d.pt").exists()


def test_resume_gives_an_older_model_its_atlas_at_full_resolution_only_from_the_same_files(tmp_path, capsys):
    out = tmp_path / "old.pt"
    assert (
        run(capsys, *train_args(out), "--grid", 18, 24, 18)[0] == 0
    )  # a 2 mm grid: refinement can go finer, so the image is kept
    model = load_model(out)
    model.atlas = replace(model.atlas, channels=None, source_image=None)  # as LTNet wrote models before it kept them
    save_model(model, out)
    labels = read_label_map(sample.atlas_labels_path()).image
    shifted = sitk.GetArrayFromImage(labels)
    other = write_image(np.roll(shifted, 4, axis=1), tmp_path / "other_labels.nii.gz", labels)
    image = read_image(sample.atlas_image_path())
    other_image = write_image(np.roll(sitk.GetArrayFromImage(image), 4, axis=1), tmp_path / "other_image.nii.gz", image)
    before = out.read_bytes()
    code, _, err = run(capsys, *train_args(out, atlas_labels=other), "--resume")
    assert_one_line_error(code, err, other, "--atlas-labels")
    code, _, err = run(capsys, *train_args(out, atlas_image=other_image), "--resume")
    assert_one_line_error(code, err, other_image, "--atlas-image")
    assert out.read_bytes() == before

    assert run(capsys, *train_args(out), "--resume")[0] == 0  # 1 iteration, already done: only the upgrade is written
    upgraded_image = load_model(out).atlas.source_image
    assert upgraded_image.GetSize() == image.GetSize() and upgraded_image.GetDirection() == image.GetDirection()
    assert (
        np.abs(sitk.GetArrayViewFromImage(upgraded_image) - sitk.GetArrayViewFromImage(normalise(image))).max() < 1e-3
    )  # float16
    upgraded = load_model(out).atlas.channels
    expected = channel_indices(labels, model.atlas.values)
    assert (sitk.GetArrayViewFromImage(upgraded) == sitk.GetArrayViewFromImage(expected)).all()
    assert (
        upgraded.GetOrigin() == labels.GetOrigin()
        and upgraded.GetSpacing() == labels.GetSpacing()
        and upgraded.GetDirection() == labels.GetDirection()
    )
    # the older model transfers its grid labels along the same field: close to the full-resolution result, not equal
    scan = read_image(sample.held_out_scan_paths()[0])
    from_grid, full = (transfer(m, scan, qc=False, extras=False).labels for m in (model, load_model(out)))
    assert 0.8 < min(dice_per_label(from_grid, full, [1, 2]).values()) < 1.0


def test_resume_of_a_model_that_keeps_no_atlas_image_reads_no_atlas_files(tmp_path, capsys):
    out = tmp_path / "fine.pt"
    assert (
        run(capsys, *train_args(out))[0] == 0
    )  # a 1.47 mm grid on a 1 mm atlas: refinement cannot go finer (x1.5 is 0.98 mm)
    assert load_model(out).atlas.source_image is None
    missing = tmp_path / "moved_atlas.nii.gz"  # the model holds its atlas: a resume does not need the files again
    assert (
        run(capsys, *train_args(out, atlas_image=missing, atlas_labels=missing), "--iterations", 2, "--resume")[0] == 0
    )
    assert load_model(out).iteration == 2


def test_a_model_keeps_the_pre_alignment_its_network_learned(tmp_path, capsys):
    default, scan_fixed, older_file = tmp_path / "default.pt", tmp_path / "scan.pt", tmp_path / "older.pt"
    assert run(capsys, *train_args(default))[0] == 0
    assert run(capsys, *train_args(scan_fixed), "--prealign-fixed", "scan")[0] == 0
    state = torch.load(scan_fixed, weights_only=True)
    del state["atlas"]["prealign_fixed"]  # as LTNet wrote models before it kept the choice
    torch.save(state, older_file)
    models = {path.stem: load_model(path) for path in (default, scan_fixed, older_file)}
    assert {name: m.atlas.prealign_fixed for name, m in models.items()} == {
        "default": "atlas",
        "scan": "scan",
        "older": "atlas",
    }
    scan = read_image(sample.held_out_scan_paths()[0])
    found = {}
    for name, model in models.items():
        found[name] = prepare_scan(scan, model.atlas).to_scan.GetParameters()
        expected = affine_prealign(model.atlas.image_sitk(), normalise(scan), fixed=model.atlas.prealign_fixed)
        assert found[name] == expected.GetParameters()  # one registration thread: bitwise the same
    assert not np.allclose(found["scan"], found["older"], atol=1e-3)  # the two directions do differ on real scans

    before = scan_fixed.read_bytes()
    code, _, err = run(capsys, *train_args(scan_fixed), "--iterations", 2, "--resume", "--prealign-fixed", "atlas")
    assert_one_line_error(code, err, scan_fixed, "scan fixed", "--prealign-fixed")
    assert scan_fixed.read_bytes() == before
    assert (
        run(capsys, *train_args(tmp_path / "tuned.pt"), "--init", scan_fixed)[0] == 0
    )  # fine-tuning keeps the init's alignment
    assert load_model(tmp_path / "tuned.pt").atlas.prealign_fixed == "scan"

    state["atlas"]["prealign_fixed"] = "both"
    torch.save(state, older_file)
    with pytest.raises(LTNetError, match=f"{older_file}.*'both'"):
        load_model(older_file)


@pytest.mark.parametrize("content", [b"not a model at all", "foreign torch file", "truncated"])
def test_transfer_rejects_a_file_that_is_not_a_model(tmp_path, capsys, content):
    model = tmp_path / "model.pt"
    if content == "foreign torch file":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, model)
    elif content == "truncated":
        if not DEMO_MODEL.exists():
            pytest.skip("needs the demo model")
        model.write_bytes(DEMO_MODEL.read_bytes()[:5000])
    else:
        model.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(
        capsys,
        "transfer",
        "--model",
        model,
        "--target",
        sample.held_out_scan_paths()[0],
        "--out",
        out / "labels.nii.gz",
    )
    assert_one_line_error(code, err, model, "not an LTNet model")
    assert list(out.iterdir()) == []


def test_verbose_shows_the_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltnet",
            "transfer",
            "--model",
            tmp_path / "missing.pt",
            "--target",
            sample.held_out_scan_paths()[0],
            "--out",
            tmp_path / "x.nii.gz",
            "--verbose",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr and "missing.pt" in result.stderr


@needs_demo_model
def test_transfer_to_seg_nrrd_keeps_names_and_geometry_and_writes_qc(tmp_path, capsys):
    target = sample.held_out_scan_paths()[0]
    code, _, _ = run(
        capsys,
        "transfer",
        "--model",
        DEMO_MODEL,
        "--target",
        target,
        "--out",
        tmp_path / "labels.seg.nrrd",
        "--qc",
        tmp_path / "qc.json",
        "--extras",
        tmp_path / "extras",
        "--device",
        "cpu",
    )
    assert code == 0
    labels = read_label_map(tmp_path / "labels.seg.nrrd")
    scan = sitk.ReadImage(str(target))
    assert labels.image.GetSize() == scan.GetSize()
    assert np.allclose(labels.image.GetOrigin(), scan.GetOrigin()) and np.allclose(
        labels.image.GetDirection(), scan.GetDirection()
    )
    assert [label.name for label in labels.labels] == ["Anterior hippocampus", "Posterior hippocampus"]
    qc = json.loads((tmp_path / "qc.json").read_text())
    assert set(qc) >= {
        "label_cycle_dice",
        "label_cycle_dice_mean",
        "image_cycle_error",
        "inverse_consistency_mm",
        "folded_fraction",
        "lncc",
        "score",
        "verdict",
    }
    assert 0 <= qc["folded_fraction"] < 0.05 and qc["verdict"] in ("OK", "check", "likely failed")
    assert (
        len(list((tmp_path / "extras").glob("*.nrrd"))) == 7
        and (tmp_path / "extras" / f"{target.name[:-7]}_field.h5").exists()
    )


@needs_demo_model
def test_transfer_of_several_targets_writes_a_folder_with_the_same_names(tmp_path, capsys):
    targets = sample.held_out_scan_paths()
    code, _, err = run(
        capsys,
        "transfer",
        "--model",
        DEMO_MODEL,
        "--target",
        *targets,
        "--out",
        tmp_path / "labels",
        "--qc",
        tmp_path / "qc",
        "--device",
        "cpu",
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == sorted(t.name for t in targets)
    assert len(list((tmp_path / "qc").glob("*.json"))) == len(targets)
    assert "worst first" in err


@needs_demo_model
def test_no_qc_gives_the_same_labels_and_no_checks(tmp_path, capsys):
    target = sample.held_out_scan_paths()[1]
    assert (
        run(
            capsys,
            "transfer",
            "--model",
            DEMO_MODEL,
            "--target",
            target,
            "--out",
            tmp_path / "full.nii.gz",
            "--device",
            "cpu",
        )[0]
        == 0
    )
    assert (
        run(
            capsys,
            "transfer",
            "--model",
            DEMO_MODEL,
            "--target",
            target,
            "--out",
            tmp_path / "fast.nii.gz",
            "--no-qc",
            "--device",
            "cpu",
        )[0]
        == 0
    )
    full, fast = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"{n}.nii.gz"))) for n in ("full", "fast"))
    assert np.array_equal(full, fast) and (fast > 0).sum() > 100
    code, _, err = run(
        capsys,
        "transfer",
        "--model",
        DEMO_MODEL,
        "--target",
        target,
        "--out",
        tmp_path / "x.nii.gz",
        "--no-qc",
        "--qc",
        tmp_path / "qc.json",
    )
    assert_one_line_error(code, err, "--no-qc")
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "qc.json").exists()


@needs_demo_model
def test_demo_model_beats_no_registration_on_held_out_scans(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--out", tmp_path, "--device", "cpu")
    assert code == 0
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    from ltnet.metrics import dice_per_label, labels_without_registration

    atlas_labels = read_label_map(sample.atlas_labels_path()).image
    gains = []
    for scan in sample.held_out_scan_paths():
        reference = sitk.ReadImage(str(sample.label_path(scan)))
        result = sitk.ReadImage(str(tmp_path / "labels" / scan.name))
        ltnet_dice = np.mean(list(dice_per_label(result, reference, [1, 2]).values()))
        none_dice = np.mean(
            list(dice_per_label(labels_without_registration(atlas_labels, reference), reference, [1, 2]).values())
        )
        gains.append(ltnet_dice - none_dice)
        assert json.loads((tmp_path / "qc" / f"{scan.name[:-7]}.json").read_text())["verdict"]
    assert np.mean(gains) > 0.05 and min(gains) > 0, gains


@pytest.mark.parametrize(
    "argv, named",
    [
        (
            ["transfer", "--refin", "3", "--model", "m", "--target", "t", "--out", "o"],
            "--refin (did you mean --refine?)",
        ),
        (["transfer", "--targt", "t", "--model", "m", "--out", "o"], "--targt (did you mean --target?)"),
        (["train", "--atlas-im", "a", "--atlas-labels", "l", "--images", "i", "--out", "o"], "--atlas-im"),
    ],
)
def test_abbreviated_or_misspelt_options_are_named_with_the_commands_usage(capsys, argv, named):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith(f"usage: ltnet {argv[0]} ") and f"ltnet {argv[0]}: error: unknown option {named}" in err
    assert "required" not in err


@pytest.mark.parametrize("where", ["train --atlas-image", "train --images", "transfer --target"])
def test_a_label_map_given_as_an_image_is_refused_unless_allowed(tmp_path, capsys, where):
    labels = tmp_path / "atlas_labels.nii.gz"
    sitk.WriteImage(sitk.Cast(read_label_map(sample.atlas_labels_path()).image, sitk.sitkUInt8), str(labels))
    out = tmp_path / "out"
    out.mkdir()
    if where == "transfer --target":
        if not DEMO_MODEL.exists():
            pytest.skip("needs the demo model")
        argv = ["transfer", "--model", DEMO_MODEL, "--target", labels, "--out", out / "l.nii.gz", "--workers", 0]
        argv += ["--device", "cpu", "--no-qc", "--progress", "jsonl"]  # found while reading it, after the bar began
    elif where == "train --atlas-image":
        argv = train_args(out / "m.pt", atlas_image=labels)
    else:
        argv = train_args(out / "m.pt", images=[sample.training_scan_paths()[0], sample.atlas_labels_path()])
    code, _, err = run(capsys, *argv)
    bad = sample.atlas_labels_path() if where == "train --images" else labels
    assert_one_line_error(code, err, bad, "looks like a label map", "--allow-label-like-images")
    assert list(out.iterdir()) == []
    if where == "train --atlas-image":  # the rare genuine case
        code, _, err = run(capsys, *argv, "--iterations", 0, "--allow-label-like-images")
        assert code == 0, err


def test_train_ends_with_one_final_line_and_jsonl_says_what_computes(tmp_path, capsys):
    code, _, err = run(capsys, *train_args(tmp_path / "m.pt"), "--iterations", 2)
    assert code == 0
    drawn = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert sum("100%" in line for line in drawn) == 1 and "100%" in drawn[-1] and "2/2" in drawn[-1], drawn
    code, out, _ = run(capsys, *train_args(tmp_path / "j.pt"), "--progress", "jsonl")
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "start" and events[0]["precision"] == "float32" and events[0]["device"] == "cpu"
    assert [e["event"] for e in events[1:]] == ["progress", "done"]


@pytest.mark.parametrize("command", ["train", "transfer", "distill", "demo"])
def test_the_synopsis_in_cli_md_names_every_option_of_each_command(capsys, command):
    synopsis = (Path(__file__).parents[1] / "docs" / "CLI.md").read_text().split("```")[1]
    documented = re.search(rf"^ltnet {command} (.*?)(?=^ltnet |\Z)", synopsis, re.S | re.M).group(1)
    with pytest.raises(SystemExit):
        main([command, "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    options = set(re.findall(r"--[a-z][a-z0-9-]*", usage)) - {"--help"}
    assert len(options) > 1 and options == set(re.findall(r"--[a-z][a-z0-9-]*", documented)), command


def test_train_and_distill_share_the_run_options_but_not_the_seed_default():
    train = build_parser().parse_args(
        ["train", "--atlas-image", "A", "--atlas-labels", "L", "--images", "I", "--out", "m"]
    )
    distill = build_parser().parse_args(["distill", "--model", "M", "--images", "I", "--out", "d"])
    shared = ("device", "progress", "resume", "checkpoint_every")
    assert (
        [getattr(train, name) for name in shared]
        == [getattr(distill, name) for name in shared]
        == [
            "auto",
            "bar",
            False,
            100,
        ]
    )
    assert train.seed is None and distill.seed == 0  # train tells a given --seed from none when it resumes


@pytest.mark.parametrize("command", ["train", "distill"])
def test_a_negative_iteration_count_is_one_clear_error(tmp_path, capsys, command):
    out = tmp_path / "m.pt"
    if command == "train":
        argv = train_argv(out, iterations=-3)
    else:
        argv = ["distill", "--model", DEMO_MODEL, "--images", sample.training_scan_paths()[0], "--out", out]
        argv += ["--iterations", -3]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, "--iterations -3", "give 0 or more")
    assert not out.exists()
