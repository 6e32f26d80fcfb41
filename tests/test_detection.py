"""OOD detection figures (vaegen.evaluation.detection): AUROC, AUPRC and the
FPR at 95% TPR against cases worked by hand, ties included, and against
scikit-learn's where it is installed; the sets made from held-out images;
and `vaegen evaluate --ood` on the tiny bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support import assert_one_line_error, draw_digits
from vaegen.evaluation import detection


def test_a_small_case_with_a_tie_worked_by_hand():
    score_in, score_out = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])
    # Pairs (out, in) with out above: (2,1), (4,1), (4,2), (4,3), and (2,2) tied counts half: 4.5 of 6.
    assert detection.auroc(score_in, score_out) == pytest.approx(0.75)
    # Thresholds 4, 3, 2, 1: recall 1/2 at precision 1, then the tie at 2 adds recall 1/2 at precision 2/4.
    assert detection.auprc(score_in, score_out) == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    # Both OOD images are flagged only at threshold 2, which flags the in-distribution 2 and 3 too.
    assert detection.fpr_at_tpr(score_in, score_out) == pytest.approx(2 / 3)


@pytest.mark.parametrize(("score_in", "score_out", "expected"), [
    ([0, 1], [2, 3], (1.0, 1.0, 0.0)),  # perfect
    ([2, 3], [0, 1], (0.0, 0.5 * (1 / 3) + 0.5 * 0.5, 1.0)),  # perfectly wrong
    ([1, 1], [1, 1], (0.5, 0.5, 1.0)),  # all tied: one threshold, no information
])
def test_the_extremes(score_in, score_out, expected):
    got = detection.detection(np.array(score_in, float), np.array(score_out, float))
    assert (got["auroc"], got["auprc"], got["fpr_at_95_tpr"]) == pytest.approx(expected)


def test_the_fpr_is_read_where_95_percent_of_the_ood_images_are_flagged():
    score_out = np.arange(100, dtype=float)  # the threshold 5 flags 95 of them
    score_in = np.array([4.5, 5.0, 5.5, 200.0])  # 5 and above: three of four
    assert detection.fpr_at_tpr(score_in, score_out) == 0.75


def test_the_figures_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    score_in, score_out = rng.integers(0, 20, 300).astype(float), rng.integers(5, 25, 200).astype(float)  # many ties
    truth, pooled = np.r_[np.zeros(300), np.ones(200)], np.r_[score_in, score_out]
    assert detection.auroc(score_in, score_out) == pytest.approx(metrics.roc_auc_score(truth, pooled))
    assert detection.auprc(score_in, score_out) == pytest.approx(metrics.average_precision_score(truth, pooled))
    fpr, tpr, _ = metrics.roc_curve(truth, pooled)
    assert detection.fpr_at_tpr(score_in, score_out) == pytest.approx(fpr[np.argmax(tpr >= 0.95)])


def test_the_made_sets():
    held_out = draw_digits(4)[0][:, None]
    flipped = detection.made_set("upside-down", held_out)
    np.testing.assert_array_equal(flipped[:, :, ::-1], held_out)
    noise = detection.made_set("noise", held_out, seed=3)
    assert noise.shape == held_out.shape and noise.dtype == np.uint8 and noise.std() > 50
    np.testing.assert_array_equal(noise, detection.made_set("noise", held_out, seed=3))


def test_evaluate_ood_reports_every_score_against_each_set(vaegen, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for i, image in enumerate(draw_digits(6, seed=11)[0]):
        Image.fromarray(255 - image).save(other / f"{i}.png")  # dark on light: unlike the training digits
    result = vaegen("evaluate", "--ood", other, "--ood", "upside-down", "--ood", "noise", "--k", 4, "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["k"] == 4 and report["in"]["images"] == 20 and report["split"] == "test"
    assert list(report["sets"]) == [str(other), "upside-down", "noise"]
    assert report["sets"][str(other)]["images"] == 6 and report["sets"]["noise"]["images"] == 20
    for row in report["sets"].values():
        # The tiny bundle has no prior and no calibration: the scores that need neither.
        assert set(row["scores"]) == {"bits", "input-complexity"}
        assert all(0 <= f[key] <= 1 for f in row["scores"].values() for key in ("auroc", "auprc", "fpr_at_95_tpr"))
    assert report["sets"]["noise"]["scores"]["bits"]["auroc"] == 1.0  # noise is far less likely than digits
    table = vaegen("evaluate", "--ood", "noise", "--k", 2, "-q")
    assert table.exit_code == 0 and "AUROC" in table.stdout and "fit-prior" in table.stdout


def test_evaluate_ood_goes_with_the_likelihood_report_alone(vaegen):
    assert_one_line_error(vaegen("evaluate", "--ood", "noise", "--samples", 10), 2, "--ood and --samples")
