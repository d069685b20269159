"""A transfer the QC calls "likely failed" is tried again from other pre-alignments; the best by score is kept."""

from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

import ltnet.data.prepare as prepare
from ltnet import sample
from ltnet.data.io import read_image
from ltnet.metrics import dice_per_label
from ltnet.model_file import load_model
from ltnet.realign import keep_best_alignment
from ltnet.transfer import transfer


def result(score: float, verdict: str):
    return SimpleNamespace(qc={"score": score, "verdict": verdict})


def test_a_transfer_not_likely_failed_is_kept_untried():
    first = result(0.7, "check")
    assert keep_best_alignment(first, lambda seed: pytest.fail("tried again")) is first
    assert "prealign_tries" not in first.qc


def test_tries_stop_at_the_first_that_is_not_likely_failed_and_the_best_score_is_kept():
    tries = {1: result(0.3, "likely failed"), 2: result(0.9, "OK"), 3: result(1.2, "OK")}
    asked = []
    best = keep_best_alignment(result(0.2, "likely failed"), lambda seed: asked.append(seed) or tries[seed])
    assert asked == [1, 2] and best is tries[2]
    assert best.qc["prealign_tries"] == [
        {"seed": 0, "score": 0.2, "verdict": "likely failed"},
        {"seed": 1, "score": 0.3, "verdict": "likely failed"},
        {"seed": 2, "score": 0.9, "verdict": "OK"},
    ]


def test_when_every_try_fails_the_best_scoring_one_is_kept():
    scores = {1: 0.5, 2: 0.1, 3: 0.4}
    best = keep_best_alignment(result(0.2, "likely failed"), lambda seed: result(scores[seed], "likely failed"))
    assert best.qc["score"] == 0.5 and [t["seed"] for t in best.qc["prealign_tries"]] == [0, 1, 2, 3]


def test_a_failed_pre_alignment_is_found_again_from_another_seed(monkeypatch):
    """The first pre-alignment (seed 0) is made to miss by 12 mm: the QC says "likely failed", the next seed's
    alignment is kept, and its labels match the reference as a normal transfer's do."""
    model = load_model(sample.demo_model_path())
    path = sample.held_out_scan_paths()[0]
    scan = read_image(path)
    real = prepare.affine_prealign

    def missing_at_seed_0(atlas, image, seed=0, fixed="atlas"):
        found = real(atlas, image, seed, fixed)
        if seed == 0:
            found.SetTranslation(np.add(found.GetTranslation(), (12.0, -12.0, 6.0)).tolist())
        return found

    monkeypatch.setattr(prepare, "affine_prealign", missing_at_seed_0)
    kept = transfer(model, scan, extras=False)
    missed = transfer(model, scan, extras=False, retry_failed=False)
    tries = kept.qc["prealign_tries"]
    assert missed.qc["verdict"] == "likely failed" and tries[0] == {
        "seed": 0,
        "score": missed.qc["score"],
        "verdict": "likely failed",
    }
    assert kept.qc["verdict"] != "likely failed" and kept.qc["score"] == max(t["score"] for t in tries)
    reference = sitk.ReadImage(str(sample.label_path(path)))
    values = model.atlas.values[1:]
    dice = [np.mean(list(dice_per_label(r.labels, reference, values).values())) for r in (missed, kept)]
    assert dice[1] > 0.7 > dice[0], dice
