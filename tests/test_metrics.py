"""Likelihood metrics (vaegen.evaluation.metrics): the stable Bernoulli log-likelihood, and
the importance-weighted NLL estimator checked against an exact answer.

The exact answer comes from a VAE small enough to integrate: 2x2 binary
images (16 of them in all) and a 1-D latent, where log p(x) and the ELBO are
integrals over z that quadrature computes to high accuracy in float64.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from vaegen.evaluation import metrics
from vaegen.likelihoods import LIKELIHOODS

BERNOULLI, LOGISTIC = LIKELIHOODS["bernoulli"], LIKELIHOODS["logistic"]

# ---------------------------------------------------------------- the likelihood


def direct_log_likelihood(logits: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x*log(sigmoid(l)) + (1-x)*log(1-sigmoid(l)), summed per row, in float64."""
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=1)


def softplus_log_likelihood(logits: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The same sum as x*(-softplus(-l)) + (1-x)*(-softplus(l)), exact for any l."""
    l64 = logits.astype(np.float64)
    return (x * -np.logaddexp(0.0, -l64) + (1 - x) * -np.logaddexp(0.0, l64)).sum(axis=1)


def test_bernoulli_log_likelihood_matches_the_direct_formula():
    rng = np.random.default_rng(0)
    logits = rng.uniform(-8, 8, (32, 50)).astype(np.float32)
    x = (rng.random(50) < 0.4).astype(np.float32)
    before = logits.copy()
    got = BERNOULLI.log_likelihood(logits, x)
    assert got.shape == (32,) and got.dtype == np.float64
    np.testing.assert_allclose(got, direct_log_likelihood(logits, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logits, before)  # the caller's logits are not overwritten


def test_bernoulli_log_likelihood_is_stable_for_huge_logits():
    # Columns: confident and right (~0 nats), confident and wrong (-100 nats).
    logits = np.array([[100.0, -100.0, 100.0, -100.0],
                       [-100.0, 100.0, 100.0, -100.0],
                       [100.0, 100.0, 100.0, 100.0]], np.float32)
    x = np.array([1, 0, 1, 0], np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no overflow, no log(0), no nan
        got = BERNOULLI.log_likelihood(logits, x)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, softplus_log_likelihood(logits, x), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(got, [0.0, -200.0, -200.0], atol=1e-4)
    # The naive formula breaks down here (sigmoid rounds to exactly 1), so the
    # stable one is what makes the numbers above possible.
    with np.errstate(divide="ignore", invalid="ignore"):
        assert not np.all(np.isfinite(direct_log_likelihood(logits, x)))


# ---------------------------------------------------- the estimator, exactly checked

# All 16 binary 2x2 images, float32 [16, 1, 2, 2]: image i has the bits of i.
ALL_IMAGES = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(np.float32).reshape(16, 1, 2, 2)
GRID = np.linspace(-10.0, 10.0, 20001)  # quadrature points for the 1-D latent
LOG_2PI = math.log(2 * math.pi)


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


@pytest.fixture(scope="module")
def tiny_exact(tmp_path_factory):
    """A 1-D-latent VAE on 2x2 images, its bundle on ONNX Runtime, and the exact
    per-image log p(x) and ELBO computed from the torch model by quadrature."""
    torch = pytest.importorskip("torch", reason="building the tiny model needs the train extra")
    from vaegen.api import Model
    from vaegen.bundle.read import load_bundle
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    torch.manual_seed(0)
    model = VAE(ModelConfig(arch="mlp", channels=1, height=2, width=2, latent_dim=1, hidden=8, decoder_layers=2)).eval()
    # At the default init the decoder hardly depends on z, so the posterior is
    # almost the prior and every bound coincides. Sharper decoder weights make
    # the posterior differ from q(z|x): the ELBO gap is then ~0.3 nats.
    with torch.no_grad():
        model.decoder.output.weight.mul_(4.0)
    path = export_bundle(model, tmp_path_factory.mktemp("exact") / "b", dataset="tiny")
    runtime = Model(load_bundle(path), provider="cpu", threads=1)

    double = copy.deepcopy(model).double()
    with torch.no_grad():
        logits = double.decode(torch.from_numpy(GRID[:, None])).reshape(len(GRID), 4).numpy()
        mu, logvar = (t.numpy()[:, 0] for t in double.encode(torch.from_numpy(ALL_IMAGES).double()))
    x = ALL_IMAGES.reshape(16, 4).astype(np.float64)
    log_px_z = x @ logits.T - np.logaddexp(0.0, logits).sum(axis=1)[None]  # [16, Z]
    log_pz = -0.5 * (GRID**2 + LOG_2PI)
    dz = GRID[1] - GRID[0]
    log_px = logsumexp(log_px_z + log_pz, axis=1) + math.log(dz)
    log_q = -0.5 * ((GRID[None] - mu[:, None]) ** 2 / np.exp(logvar[:, None]) + logvar[:, None] + LOG_2PI)
    elbo = (np.exp(log_q) * dz * (log_px_z + log_pz - log_q)).sum(axis=1)
    return runtime, log_px, elbo


@pytest.mark.torch
def test_quadrature_is_a_distribution(tiny_exact):
    _, log_px, elbo = tiny_exact
    assert abs(np.exp(log_px).sum() - 1.0) < 1e-4
    assert np.all(elbo <= log_px)  # the ELBO is a lower bound, image by image
    assert np.mean(log_px - elbo) > 0.15  # ...and a loose one: the test below can tell bounds apart


@pytest.mark.torch
def test_importance_weighted_nll_matches_the_exact_likelihood(tiny_exact):
    runtime, log_px, elbo = tiny_exact
    result = metrics.evaluate(runtime, ALL_IMAGES, k=5000, seed=0)
    exact_nll, exact_neg_elbo = -log_px.mean(), -elbo.mean()
    # Measured over seeds: within 0.004 nats of the exact value.
    assert abs(result["nll"] - exact_nll) < 0.02
    assert abs(result["neg_elbo"] - exact_neg_elbo) < 0.02
    assert abs(result["recon"] + result["kl"] - result["neg_elbo"]) < 1e-9
    assert result["neg_elbo"] >= result["nll"]


@pytest.mark.torch
def test_importance_weighted_bound_tightens_with_k(tiny_exact):
    runtime, log_px, elbo = tiny_exact
    # With k=1 the estimate is -log w of a single draw, whose mean is the
    # negative ELBO. One draw is noisy (std up to 1.4 nats here), so each image
    # is repeated 100 times: the mean then has a standard error of ~0.025.
    repeats = np.tile(ALL_IMAGES, (100, 1, 1, 1))
    k1 = metrics.evaluate(runtime, repeats, k=1, seed=0)["nll"]
    k5000 = metrics.evaluate(runtime, ALL_IMAGES, k=5000, seed=0)["nll"]
    gap = float(np.mean(log_px - elbo))  # the exact difference, ~0.29 nats
    assert abs(k1 - (-elbo.mean())) < 0.1
    assert k1 - k5000 > 0.5 * gap


# ------------------------------------------------------------- the other outputs


@pytest.mark.torch
def test_evaluate_reports_active_units_and_speed(tmp_path):
    torch = pytest.importorskip("torch")
    from vaegen.api import Model
    from vaegen.bundle.read import load_bundle
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    torch.manual_seed(1)
    model = VAE(ModelConfig(arch="mlp", channels=1, height=4, width=4, latent_dim=3, hidden=8)).eval()
    last = model.encoder[-1]  # rows 0..2 give mu, rows 3..5 logvar
    with torch.no_grad():
        last.weight[0].zero_()  # mu_0 is a constant: an inactive unit
        last.weight[1].mul_(20.0)  # mu_1 swings with the image: active
    runtime = Model(load_bundle(export_bundle(model, tmp_path / "b", dataset="tiny")), provider="cpu", threads=1)
    images = (np.random.default_rng(0).random((40, 1, 4, 4)) < 0.5).astype(np.float32)
    calls = []
    result = metrics.evaluate(runtime, images, k=8, seed=0, progress=calls.append)

    with torch.no_grad():
        mu = model.encode(torch.from_numpy(images))[0].double().numpy()
    variance = mu.var(axis=0)
    assert variance[0] < 1e-12 and variance[1] > 0.1
    assert result["active_units"] == int((variance > metrics.ACTIVE_THRESHOLD).sum())
    assert 1 <= result["active_units"] <= 2
    assert result["latent_dim"] == 3 and 0 <= result["active_units"] <= result["latent_dim"]
    assert result["images"] == 40 and result["k"] == 8 and sum(calls) == 40  # told of each image, a batch at a time
    assert result["seconds"] > 0 and result["images_per_s"] > 0
    assert all(np.isfinite(result[key]) for key in ("nll", "neg_elbo", "recon", "kl"))
    # The same seed gives the same estimate.
    assert metrics.evaluate(runtime, images, k=8, seed=0)["nll"] == result["nll"]


# ------------------------------------------------ the discretized logistic (8-bit values)

LEVELS = np.arange(256, dtype=np.float64) / 255.0  # every value an 8-bit image can hold


def level_log_probs(loc: float, log_scale: float) -> np.ndarray:
    """log P(k) for k = 0..255 under one value's discretized logistic: [256]."""
    loc_rows = np.full((256, 1), loc, np.float32)
    scale_rows = np.full((256, 1), log_scale, np.float32)
    return np.array([LOGISTIC.log_likelihood(loc_rows[k : k + 1], scale_rows[k : k + 1], LEVELS[k : k + 1])[0]
                     for k in range(256)])


@pytest.mark.parametrize("loc, log_scale", [(0.5, -3.0), (0.0, -7.0), (1.0, -7.0), (-0.4, 0.5), (1.7, -1.0),
                                            (0.3, 3.0), (0.51, -7.0), (0.25, -5.5)])
def test_the_256_levels_of_a_value_sum_to_one(loc, log_scale):
    log_p = level_log_probs(loc, log_scale)
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 1e-12)
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-9


def test_the_logistic_likelihood_matches_differences_of_its_cdf():
    """Away from the edges and at moderate scales, log(sigmoid(a) - sigmoid(b)) computed directly."""
    rng = np.random.default_rng(0)
    x = rng.integers(1, 255, 40) / 255.0
    loc = (x + rng.uniform(-0.1, 0.1, (5, 40))).astype(np.float32)  # near x: the direct form does not underflow
    log_scale = rng.uniform(-3, 0, (5, 40)).astype(np.float32)
    s = np.exp(log_scale.astype(np.float64))
    sig = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    direct = np.log(sig((x + 0.5 / 255 - loc) / s) - sig((x - 0.5 / 255 - loc) / s)).sum(axis=1)
    np.testing.assert_allclose(LOGISTIC.log_likelihood(loc, log_scale, x), direct, rtol=1e-9)


@pytest.mark.torch
def test_training_and_evaluation_compute_the_same_logistic_likelihood():
    torch = pytest.importorskip("torch")

    rng = np.random.default_rng(1)
    loc = rng.uniform(-0.3, 1.3, (6, 1, 4, 5)).astype(np.float32)
    log_scale = rng.uniform(-7, 1, (6, 1, 4, 5)).astype(np.float32)
    x = rng.integers(0, 256, (1, 1, 4, 5)) / 255.0
    x[0, 0, 0, :2] = (0.0, 1.0)  # both edges
    trained = -LOGISTIC.discretized_nll(torch.from_numpy(loc).double(), torch.from_numpy(log_scale).double(),
                                        torch.from_numpy(np.repeat(x, 6, axis=0)).double()).numpy()
    scored = LOGISTIC.log_likelihood(loc.reshape(6, -1), log_scale.reshape(6, -1), x.reshape(-1))
    np.testing.assert_allclose(trained, scored, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_logistic(tmp_path_factory):
    """A 1-D-latent logistic VAE of one 8-bit value, its bundle on ONNX
    Runtime, and the exact log p(k) of all 256 levels by quadrature over z."""
    torch = pytest.importorskip("torch", reason="building the tiny model needs the train extra")
    from vaegen.api import Model
    from vaegen.bundle.read import load_bundle
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    torch.manual_seed(2)
    model = VAE(ModelConfig(arch="mlp", channels=1, height=1, width=1, latent_dim=1, hidden=8, decoder_layers=2,
                            likelihood="logistic")).eval()
    with torch.no_grad():
        model.decoder.output.weight.mul_(3.0)  # a decoder that depends on z, so q(z|x) is not the prior
    path = export_bundle(model, tmp_path_factory.mktemp("exact8") / "b", dataset="tiny")
    runtime = Model(load_bundle(path), provider="cpu", threads=1)
    with torch.no_grad():
        loc, log_scale, _ = model.outputs(model.decode(torch.from_numpy(GRID[:, None]).float()))
    loc, log_scale = loc.reshape(-1, 1).numpy(), log_scale.reshape(-1, 1).numpy()
    log_pz = -0.5 * (GRID**2 + LOG_2PI)
    log_px_z = np.stack([LOGISTIC.log_likelihood(loc, log_scale, LEVELS[k : k + 1]) for k in range(256)])
    log_px = logsumexp(log_px_z + log_pz[None], axis=1) + math.log(GRID[1] - GRID[0])  # [256]
    return runtime, log_px


@pytest.mark.torch
def test_a_tiny_logistic_models_levels_form_a_distribution(tiny_logistic):
    _, log_px = tiny_logistic
    assert abs(np.exp(log_px).sum() - 1.0) < 1e-4


@pytest.mark.torch
def test_importance_weighted_nll_of_8_bit_values_matches_the_exact_likelihood(tiny_logistic):
    runtime, log_px = tiny_logistic
    levels = np.array([0, 3, 60, 128, 200, 254, 255])
    images = (levels / 255.0).astype(np.float32).reshape(-1, 1, 1, 1)
    result = metrics.evaluate(runtime, images, k=5000, seed=0)
    exact = -log_px[levels].mean()
    assert abs(result["nll"] - exact) < 0.02
    assert result["likelihood"] == "logistic"
    assert result["nll_bits_per_dim"] == pytest.approx(result["nll"] / math.log(2))


@pytest.mark.torch
def test_the_logistic_loss_stays_finite_at_any_decoder_output():
    """Early in training a decoder can output any location and log-scale; the
    scale is kept in [e^-7, e^3], where every level's log-probability and its
    gradient are finite (a scale far wider made a level's probability underflow
    to 0 in float32: a NaN loss)."""
    torch = pytest.importorskip("torch")
    from vaegen.training.model import VAE, ModelConfig

    vae = VAE(ModelConfig(channels=1, height=1, width=3, latent_dim=2, hidden=4, likelihood="logistic"))
    params = torch.tensor([[[[0.5, 300.0, -1e4]], [[500.0, -500.0, 80.0]]]], requires_grad=True)  # loc, log-scale
    loss = vae.likelihood.nll(params, torch.tensor([[[[0.3, 1.0, 0.0]]]]))
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(params.grad).all()
