"""Per-image scores (vaegen.evaluation.scores) and Model.score: percentiles
against stored quantiles, the flag's share on the calibration images, the
compressors, the registry, and the mean bits/dim equal to `vaegen evaluate`'s
at the same k and seed (an 8-bit model and a binarized one)."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import vaegen
from tests.support import draw_digits
from vaegen import choices
from vaegen.evaluation import scores
from vaegen.evaluation.metrics import evaluate
from vaegen.likelihoods import model_input

LEVELS = np.linspace(0, 100, 5)  # quantiles at 0, 25, 50, 75, 100 percent


def digits_levels(n: int, seed: int = 5) -> np.ndarray:
    return draw_digits(n, seed=seed)[0][:, None]  # uint8 [n, 1, 28, 28]


# ---------------------------------------------------------------- percentiles


def test_a_percentile_is_read_off_the_quantiles():
    q = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    got = scores.percentile_among(q, np.array([-1.0, 0.5, 1.0, 3.0, 8.0, 9.0, np.nan]))
    np.testing.assert_allclose(got, [0.0, 12.5, 25.0, 62.5, 100.0, 100.0, np.nan])


def test_a_run_of_equal_quantiles_gives_its_middle():
    q = np.array([0.0, 1.0, 1.0, 1.0, 2.0])  # half the held-out images share the score 1
    np.testing.assert_allclose(scores.percentile_among(q, np.array([1.0, 1.5])), [50.0, 87.5])
    np.testing.assert_allclose(scores.percentile_among(np.zeros(5), np.array([0.0, -1.0, 1.0])), [50.0, 0.0, 100.0])


@pytest.mark.parametrize("flag_above", [99.0, 95.0, 90.0])
def test_on_its_own_images_a_calibration_flags_the_share_it_promises(flag_above):
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, size=2000)
    calibration = scores.Calibration({"s": np.quantile(values, np.linspace(0, 1, scores.QUANTILES))}, {"k": 1})
    share = float(np.mean(calibration.percentile("s", values) > flag_above))
    assert abs(share - (100 - flag_above) / 100) <= 0.002
    assert calibration.threshold("s", flag_above) == pytest.approx(np.quantile(values, flag_above / 100))


def test_a_robust_z_score_is_read_off_the_quantiles():
    values = np.random.default_rng(3).normal(5.0, 2.0, 100_000)
    calibration = scores.Calibration({"s": np.quantile(values, np.linspace(0, 1, scores.QUANTILES))}, {"k": 1})
    np.testing.assert_allclose(calibration.z("s", np.array([5.0, 7.0, 1.0])), [0.0, 1.0, -2.0], atol=0.02)


def test_calibration_rows_spread_over_the_split():
    assert scores.calibration_rows(5, most=10).tolist() == [0, 1, 2, 3, 4]
    rows = scores.calibration_rows(10_000, most=1000)
    assert len(rows) == 1000 and rows[0] == 0 and rows[-1] == 9999 and np.all(np.diff(rows) > 0)


# ---------------------------------------------------------------- compressors


def test_each_compressor_finds_noise_longer_than_a_blank_image():
    rng = np.random.default_rng(1)
    bits = np.stack([np.zeros((1, 28, 28), np.uint8), (rng.random((1, 28, 28)) < 0.5).astype(np.uint8)])
    levels = np.stack([np.zeros((1, 28, 28), np.uint8), rng.integers(0, 256, (1, 28, 28), dtype=np.uint8)])
    for name, compress in scores.COMPRESSORS.items():
        # A file format's headers cost a 28x28 image most of a bit per value: the same for every image.
        if name != "context":
            blank, noise = compress(levels, False)
            assert blank < 1.0 < 7.0 < noise, name
        blank, noise = compress(bits, True)
        assert blank < 0.75 < 1.0 < noise, name


def test_the_context_coder_codes_bits_only():
    with pytest.raises(vaegen.ArgumentError, match="codes binarized images"):
        scores.context_bits(np.zeros((1, 1, 4, 4), np.uint8), False)
    # An all-zero image: each bit costs less as its context's count grows.
    cost = scores.context_bits(np.zeros((1, 1, 28, 28), np.uint8), True)[0] * 784
    assert cost == pytest.approx(sum(-np.log2((i + 0.5) / (i + 1)) for i in range(784)))


def test_colour_and_many_channel_images_are_compressed_whole():
    rng = np.random.default_rng(2)
    for channels in (2, 3):
        coded = rng.integers(0, 256, (2, channels, 8, 8), dtype=np.uint8)
        for name in ("png", "webp"):
            assert scores.COMPRESSORS[name](coded, False).shape == (2,)
        assert scores.context_bits((coded > 127).astype(np.uint8), True).shape == (2,)


# ---------------------------------------------------------------- the registry


def test_the_registry_offers_the_cli_its_names_and_defaults():
    assert tuple(scores.SCORES) == choices.SCORES
    assert scores.DEFAULT_SCORE in scores.SCORES
    assert all(part in scores.SCORES for s in scores.SCORES.values() for part in s.parts)
    default = inspect.signature(vaegen.Model.score).parameters["flag_above"].default
    assert default == scores.FLAG_ABOVE
    with pytest.raises(vaegen.ArgumentError, match="unknown score 'typicality'"):
        scores.get_score("typicality")


# ---------------------------------------------------------------- Model.score


@pytest.fixture(scope="module")
def eight_bit_bundle(tmp_path_factory) -> Path:
    """An untrained 28x28 MLP with the discretized logistic over 256 levels, exported (needs torch)."""
    torch = pytest.importorskip("torch")
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    torch.manual_seed(0)
    model = VAE(ModelConfig(arch="mlp", channels=1, height=28, width=28, latent_dim=3, hidden=16,
                            likelihood="logistic")).eval()
    return export_bundle(model, tmp_path_factory.mktemp("logistic") / "b", dataset="tiny")


def test_an_8_bit_models_mean_bits_per_dim_is_evaluates(eight_bit_bundle):
    model = vaegen.load_model(eight_bit_bundle, provider="cpu", threads=1)
    levels = digits_levels(30)
    records = model.score(levels / np.float32(255), k=16, seed=3)
    expected = evaluate(model, model_input(levels, "logistic"), k=16, seed=3)
    assert np.mean([r["bits_per_dim"] for r in records]) == pytest.approx(expected["nll_bits_per_dim"], rel=1e-12)
    assert all(np.isfinite(r["bits_per_dim"]) for r in model.score(levels / np.float32(255), k=2, using="input-complexity"))


def test_a_binarized_model_binarizes_with_the_evaluation_seed(tiny_bundle):
    """The tiny bundle is a Bernoulli model: its 8-bit inputs are binarized once with EVAL_SEED, as evaluate's are."""
    model = vaegen.load_model(tiny_bundle, provider="cpu", threads=1)
    assert model.bundle.likelihood == "bernoulli"
    levels = digits_levels(12)
    records = model.score(levels / np.float32(255), k=8, seed=1)
    expected = evaluate(model, model_input(levels, "bernoulli"), k=8, seed=1)
    assert np.mean([r["bits_per_dim"] for r in records]) == pytest.approx(expected["nll_bits_per_dim"], rel=1e-12)
    assert model.score(levels / np.float32(255), k=8, seed=1) == records  # reproducible


def test_score_records_without_a_calibration(tiny_bundle):
    model = vaegen.load_model(tiny_bundle, provider="cpu", threads=1)
    assert model.calibration is None
    records = model.score(digits_levels(3) / np.float32(255), k=4, paths=["a.png", "b.png", "c.png"])
    assert [r["path"] for r in records] == ["a.png", "b.png", "c.png"]
    for r in records:
        assert r["score"] == scores.DEFAULT_SCORE and np.isfinite(r["bits_per_dim"])
        assert r["percentile"] is None and r["flagged"] is None
    # A score that fuses others through their calibration has no value without one.
    assert model.score(digits_levels(1) / np.float32(255), k=4, using="complexity+latent")[0]["ood_score"] is None


def test_score_refuses_what_it_cannot_use(tiny_bundle):
    model = vaegen.load_model(tiny_bundle, provider="cpu", threads=1)
    x = digits_levels(2) / np.float32(255)
    with pytest.raises(vaegen.ArgumentError, match="k must be a positive integer"):
        model.score(x, k=0)
    with pytest.raises(vaegen.ArgumentError, match="flag_above must be a percentile"):
        model.score(x, k=2, flag_above=101)
    with pytest.raises(vaegen.ArgumentError, match="1 paths for 2 images"):
        model.score(x, k=2, paths=["a.png"])
    with pytest.raises(vaegen.ArgumentError, match="this model takes"):
        model.score(x[:, :, :10], k=2)


def test_a_calibrated_bundle_flags_its_held_out_share(prior_bundle):
    """fit-prior calibrates on the held-out tenth of the tiny folder (20 images):
    scored again as then (same order, k and seed), 2 of 20 lie above their
    90th percentile, and the greatest at the 100th."""
    model = vaegen.load_model(prior_bundle, provider="cpu", threads=1)
    facts = model.calibration.facts
    assert facts["images"] == 20 and facts["k"] == scores.DEFAULT_K and facts["split"] == "test"
    assert set(facts["scores"]) == set(scores.SCORES)
    meta = json.loads((prior_bundle / "vaegen.json").read_text())
    assert meta["files"]["calibration.npy"]["sha256"] and meta["calibration"]["file"] == "calibration.npy"
    assert "## Per-image scores" in (prior_bundle / "README.md").read_text()
    from vaegen.data.load import load_for_model

    held_out = load_for_model(meta["dataset"], "test", None, model.image_shape)
    records = model.score(held_out.images[:] / np.float32(255), using="complexity+latent", flag_above=90)
    assert sum(r["flagged"] for r in records) == 2
    assert max(r["percentile"] for r in records) == 100.0 and min(r["percentile"] for r in records) == 0.0


def test_a_tampered_calibration_is_refused(prior_bundle, tmp_path):
    copy = Path(shutil.copytree(prior_bundle, tmp_path / "m"))
    data = bytearray((copy / "calibration.npy").read_bytes())
    data[-1] ^= 1
    (copy / "calibration.npy").write_bytes(bytes(data))
    with pytest.raises(vaegen.BundleError, match="calibration.npy does not match its sha256"):
        vaegen.load_model(copy).score(digits_levels(1) / np.float32(255), k=2)
