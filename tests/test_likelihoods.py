"""The likelihood registry (vaegen.likelihoods): lookups, what each one
declares, its torch half against its numpy half, the data rules, and a
likelihood registered by a test alone that trains, exports and is scored."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.support import draw_digits, train_tiny
from vaegen.errors import ArgumentError
from vaegen.likelihoods import (
    LIKELIHOODS,
    PICTURE,
    Likelihood,
    get_likelihood,
    likelihood_for,
    model_input,
)

IMAGES = np.random.default_rng(0).integers(0, 256, (3, 2, 4, 5), dtype=np.uint8)


def test_a_likelihood_is_found_by_name_and_an_unknown_one_names_the_known():
    assert get_likelihood("logistic") is LIKELIHOODS["logistic"]
    assert list(LIKELIHOODS) == ["bernoulli", "logistic", "logistic-shared", "logistic-dual"]
    known = "bernoulli, logistic, logistic-shared, logistic-dual"
    with pytest.raises(ArgumentError, match=rf"^unknown likelihood 'gaussian'; choose one of {known}$"):
        get_likelihood("gaussian")


@pytest.mark.parametrize("name", list(LIKELIHOODS))
def test_each_likelihood_declares_its_outputs_and_their_tolerances(name):
    likelihood = LIKELIHOODS[name]
    assert likelihood.name == name
    assert likelihood.outputs == (*likelihood.parameters, PICTURE)
    assert likelihood.outputs_per_value >= len(likelihood.parameters) >= 1
    assert set(likelihood.fp16_atol) == set(likelihood.outputs)
    assert likelihood.description and likelihood.scored_as


@pytest.mark.parametrize("name", list(LIKELIHOODS))
def test_prepared_images_are_float32_in_the_unit_interval(name):
    x = model_input(IMAGES, name, seed=1)
    assert x.dtype == np.float32 and x.shape == IMAGES.shape and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(x, model_input(IMAGES, name, seed=1))
    if LIKELIHOODS[name].binarized:
        assert set(np.unique(x)) <= {0.0, 1.0}
    else:
        np.testing.assert_array_equal(x * 255, IMAGES)


def test_a_named_likelihood_must_model_the_data_it_is_given(monkeypatch):
    monkeypatch.setitem(LIKELIHOODS, "gaussian", Gaussian())
    assert likelihood_for("fashion-mnist", None, "gaussian") == "gaussian"
    assert likelihood_for("photos/", False, "gaussian") == "gaussian"
    with pytest.raises(ArgumentError, match="binarized data takes likelihood bernoulli, not gaussian"):
        likelihood_for("mnist", True, "gaussian")


@pytest.mark.torch
@pytest.mark.parametrize("name", list(LIKELIHOODS))
def test_the_torch_half_and_the_numpy_half_agree(name):
    """The training objective's -log p(x|z) (torch) and the evaluation's
    log p(x|z) on the decoder's outputs (numpy) are one quantity."""
    torch = pytest.importorskip("torch")
    likelihood, k, (c, h, w) = LIKELIHOODS[name], 6, IMAGES.shape[1:]
    params = torch.from_numpy(np.random.default_rng(2).normal(0, 3, (k, likelihood.outputs_per_value * c, h, w)))
    x = model_input(IMAGES[:1], name, seed=0)
    trained = -likelihood.nll(params, torch.from_numpy(x).double().expand(k, -1, -1, -1)).numpy()
    parameters = likelihood.split(params.float(), c)
    assert [tuple(p.shape) for p in parameters] == [(k, c, h, w)] * len(likelihood.parameters)
    scored = likelihood.log_likelihood(*[p.reshape(k, -1).numpy() for p in parameters], x.reshape(-1))
    assert scored.shape == (k,) and scored.dtype == np.float64
    np.testing.assert_allclose(trained, scored, rtol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("name", list(LIKELIHOODS))
def test_the_output_bias_start_shows_the_mean_image(name):
    torch = pytest.importorskip("torch")
    likelihood = LIKELIHOODS[name]
    mean = 0.05 + 0.9 * torch.rand(2, 4, 5)
    start = likelihood.output_bias(mean)
    assert start.shape == (likelihood.outputs_per_value * 2, 4, 5)
    picture = likelihood.picture(likelihood.split(start[None], 2))[0]
    torch.testing.assert_close(picture, mean, atol=1e-5, rtol=0)


@pytest.mark.torch
@pytest.mark.parametrize("name", list(LIKELIHOODS))
def test_a_training_batch_is_prepared_as_the_evaluation_prepares_images(name):
    torch = pytest.importorskip("torch")
    likelihood = LIKELIHOODS[name]
    batch = likelihood.prepare_batch(torch.from_numpy(IMAGES), torch.Generator().manual_seed(0)).numpy()
    assert batch.dtype == np.float32 and batch.shape == IMAGES.shape
    edges = np.array([0, 255], np.uint8)
    np.testing.assert_array_equal(likelihood.prepare_batch(torch.from_numpy(edges), torch.Generator()).numpy(),
                                  likelihood.prepare(edges, 0))
    if not likelihood.binarized:
        np.testing.assert_array_equal(batch, likelihood.prepare(IMAGES, 0))


class Gaussian(Likelihood):
    """A toy: a Gaussian of fixed scale 0.1 over each value in [0, 1] (a
    density, not a distribution over the 256 levels). Registered by the
    tests alone, to show that a likelihood needs no other file."""

    name = "gaussian"
    parameters = ("mean",)
    description = "a toy Gaussian decoder"
    scored_as = "grey levels, a toy Gaussian"
    fp16_atol = {"mean": 1e-2, "probs": 1e-2}
    SCALE = 0.1

    def prepare(self, images, seed=0):
        return images.astype(np.float32) / np.float32(255.0)

    def log_likelihood(self, mean, x):
        z = (x.astype(np.float64) - mean) / self.SCALE
        return -(0.5 * z**2 + math.log(self.SCALE * math.sqrt(2 * math.pi))).sum(axis=1)

    def prepare_batch(self, images, gen):
        return images.float().div_(255.0)

    def split(self, params, channels):
        return (params,)

    def picture(self, parameters):
        return parameters[0].clamp(0.0, 1.0)

    def nll(self, params, x):
        z = (x - params) / self.SCALE
        return (0.5 * z**2 + math.log(self.SCALE * math.sqrt(2 * math.pi))).flatten(1).sum(dim=1)

    def output_bias(self, mean_image):
        return mean_image.clone()


@pytest.mark.torch
def test_a_likelihood_registered_alone_trains_exports_and_is_scored(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from vaegen.api import load_model
    from vaegen.evaluation.metrics import evaluate
    from vaegen.training.model import ModelConfig

    monkeypatch.setitem(LIKELIHOODS, "gaussian", Gaussian())
    bundle = train_tiny(tmp_path, ModelConfig(latent_dim=2, hidden=8, decoder_layers=1, likelihood="gaussian"))
    model = load_model(bundle, provider="cpu", threads=1)
    assert model.bundle.likelihood == "gaussian" and model.bundle.meta["parity_atol"]["mean"] == 1e-4
    assert "a toy Gaussian decoder" in (bundle / "README.md").read_text()
    assert 0 <= model.decode(np.zeros((2, 2), np.float32)).min()
    result = evaluate(model, model_input(draw_digits(3)[0][:, None], "gaussian"), k=4)
    assert result["likelihood"] == "gaussian" and np.isfinite(result["nll"])


@pytest.mark.torch
def test_the_shared_logistic_gives_each_image_and_channel_one_scale_the_mean_of_its_map():
    torch = pytest.importorskip("torch")
    shared, per_value = LIKELIHOODS["logistic-shared"], LIKELIHOODS["logistic"]
    params = torch.randn(2, 6, 4, 5)
    loc, log_scale = shared.split(params, 3)
    torch.testing.assert_close(loc, per_value.split(params, 3)[0])
    torch.testing.assert_close(log_scale, params[:, 3:].mean(dim=(2, 3), keepdim=True).expand(2, 3, 4, 5))
    assert not torch.equal(log_scale, per_value.split(params, 3)[1])
    assert shared.binarized is False and likelihood_for("photos/", None, "logistic-shared") == "logistic-shared"


@pytest.mark.torch
def test_the_dual_logistic_trains_its_location_on_the_shared_scale_and_scores_with_the_per_value_one():
    """Its location's gradient is the shared logistic's; its per-value scale's is the logistic's at that
    location; the model it exports and scores is the logistic's (location, per-value scale)."""
    torch = pytest.importorskip("torch")
    dual, shared, per_value = (LIKELIHOODS[n] for n in ("logistic-dual", "logistic-shared", "logistic"))
    x = torch.from_numpy(model_input(IMAGES[:2], "logistic"))
    loc, log_scale, shared_map = torch.randn(3, 2, 2, 4, 5).unbind(0)
    params = torch.cat([loc, log_scale, shared_map], dim=1).requires_grad_()
    (grad,) = torch.autograd.grad(dual.training_nll(params, x).sum(), params)
    shared_params = torch.cat([loc, shared_map], dim=1).requires_grad_()
    (shared_grad,) = torch.autograd.grad(shared.nll(shared_params, x).sum(), shared_params)
    per_value_params = torch.cat([loc, log_scale], dim=1).requires_grad_()
    (per_value_grad,) = torch.autograd.grad(per_value.nll(per_value_params, x).sum(), per_value_params)
    torch.testing.assert_close(grad[:, :2], shared_grad[:, :2])
    torch.testing.assert_close(grad[:, 4:], shared_grad[:, 2:])
    torch.testing.assert_close(grad[:, 2:4], per_value_grad[:, 2:])
    torch.testing.assert_close(dual.nll(params, x), per_value.nll(per_value_params, x))
    torch.testing.assert_close(dual.training_nll(params, x), dual.nll(params, x))  # its value: the model's -log p
    assert [tuple(p.shape) for p in dual.split(params, 2)] == [(2, 2, 4, 5)] * 2
