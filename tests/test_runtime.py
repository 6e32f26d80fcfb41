"""ONNX Runtime sessions (vaegen.runtime): provider choice and its checks,
the provider report, and the Model's batched encode and decode. Uses the
tiny_bundle fixture (made with torch) read through ONNX Runtime only."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.support import no_gpu
from vaegen import runtime
from vaegen.api import Model
from vaegen.bundle.read import load_bundle
from vaegen.errors import BundleError, ProviderError
from vaegen.latent.sampling import sample_prior
from vaegen.runtime import CPU, CUDA, make_session, provider_report, session_options


@pytest.fixture
def model(tiny_bundle) -> Model:
    return Model(load_bundle(tiny_bundle), provider="cpu")


def test_cpu_session_runs_on_the_cpu(tiny_bundle):
    session = make_session(tiny_bundle / "decoder.onnx", "cpu")
    assert session.get_providers()[0] == CPU
    assert CUDA not in session.get_providers()


def test_auto_without_a_gpu_falls_back_to_the_cpu(tiny_bundle):
    session = make_session(tiny_bundle / "decoder.onnx", "auto")
    if not runtime.cuda_driver_present():
        assert session.get_providers() == [CPU]
    else:
        assert session.get_providers()[0] in (CUDA, CPU)


@no_gpu
def test_cuda_without_a_gpu_is_a_provider_error_in_python_terms(tiny_bundle):
    with pytest.raises(ProviderError, match='provider="cuda": CUDA cannot run here: .*use provider="cpu"') as caught:
        make_session(tiny_bundle / "decoder.onnx", "cuda")
    assert runtime.cuda_problem() in str(caught.value)  # and why
    assert "--" not in str(caught.value)  # a CLI flag means nothing to a Python caller
    assert caught.value.argument == "provider"


class FakeDriver:
    """libcuda as ctypes sees it: cuInit's status, and the GPUs it counts."""

    def __init__(self, status: int, gpus: int = 1):
        self.status, self.gpus = status, gpus

    def cuInit(self, flags):  # noqa: N802 (the driver's name)
        return self.status

    def cuDeviceGetCount(self, count):  # noqa: N802
        count._obj.value = self.gpus
        return 0


@pytest.mark.parametrize(("driver", "why"), [
    (None, "no NVIDIA driver (libcuda.so.1 cannot be loaded)"),
    (FakeDriver(100), "the NVIDIA driver finds no GPU"),
    (FakeDriver(0, gpus=0), "the NVIDIA driver finds no GPU"),
    (FakeDriver(999), "the NVIDIA driver does not start (cuInit error 999)"),
])
def test_cuda_problem_says_what_the_driver_says(monkeypatch, driver, why):
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(runtime, "_load_driver", lambda: driver)
    monkeypatch.setattr(runtime, "_provider_library_problem", lambda: None)
    assert runtime.cuda_problem() == why
    assert provider_report()["usable"] == [CPU]


def test_cuda_problem_names_the_library_that_fails_to_load(monkeypatch):
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(runtime, "_driver_problem", lambda: None)
    tried = []

    def loader(name, *args, **kwargs):
        tried.append(name)
        raise OSError("libcublasLt.so.13: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(runtime.ctypes, "CDLL", loader)
    why = runtime.cuda_problem()
    assert why.startswith("ONNX Runtime cannot load its CUDA provider: libcublasLt.so.13: cannot open shared object")
    assert "onnxruntime_providers_cuda" in tried[0]


def test_cuda_problem_without_a_cuda_provider(monkeypatch):
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [CPU])
    assert runtime.cuda_problem() == "this ONNX Runtime has no CUDA provider (install onnxruntime-gpu)"
    assert provider_report()["usable"] == [CPU]


@no_gpu
def test_model_with_cuda_fails_on_first_use_without_a_gpu(tiny_bundle):
    model = Model(load_bundle(tiny_bundle), provider="cuda")
    with pytest.raises(ProviderError, match="cuda"):
        model.decode(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("name", ["bogus", "CUDA", "", "CPUExecutionProvider"])
def test_unknown_provider_is_a_provider_error(tiny_bundle, name):
    with pytest.raises(ProviderError, match="Unknown provider .*choose one of auto, cuda, cpu"):
        make_session(tiny_bundle / "decoder.onnx", name)
    with pytest.raises(ProviderError, match="Unknown provider"):
        Model(load_bundle(tiny_bundle), provider=name)


def test_unloadable_graph_is_a_bundle_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not an onnx graph at all")
    with pytest.raises(BundleError, match="ONNX Runtime cannot load .*broken.onnx"):
        make_session(path, "cpu")


def test_provider_report_lists_the_cpu_as_usable():
    report = provider_report()
    assert CPU in report["usable"]
    assert report["usable"][-1] == CPU
    assert CPU in report["installed"]
    assert report["onnxruntime"] == ort.__version__
    if not runtime.cuda_driver_present():
        assert report["usable"] == [CPU]


def test_session_options_threads():
    assert session_options(3).intra_op_num_threads == 3
    assert session_options(None).intra_op_num_threads >= 1
    assert session_options(3).inter_op_num_threads == 1


def test_active_provider_is_read_back_from_the_session(model):
    assert model.active_provider == CPU


def test_decode_batches_are_bounded(tiny_bundle):
    model = Model(load_bundle(tiny_bundle), provider="cpu", batch_size=10)
    z = sample_prior(25, 4, seed=1)
    batches = list(model.decode_batches(z))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert all(b.shape[1:] == (1, 28, 28) and b.dtype == np.float32 for b in batches)
    one_shot = Model(load_bundle(tiny_bundle), provider="cpu", batch_size=1024).decode(z)
    assert one_shot.shape == (25, 1, 28, 28)
    np.testing.assert_allclose(np.concatenate(batches), one_shot, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model.decode(z), one_shot, atol=1e-6, rtol=0)


def test_decode_probs_are_the_sigmoid_of_logits(model):
    z = sample_prior(6, 4, seed=2)
    probs = model.decode(z)
    logits = model.decode(z, output="logits")
    assert probs.min() >= 0 and probs.max() <= 1
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), atol=1e-5)


def test_decode_accepts_float64_and_non_contiguous_latents(model):
    z = sample_prior(8, 4, seed=3)
    wide = np.zeros((8, 8), np.float64)
    wide[:, ::2] = z
    np.testing.assert_allclose(model.decode(wide[:, ::2]), model.decode(z), atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 5), (3,), (2, 2, 4), (4, 3)])
def test_wrong_latent_shape_is_a_bundle_error(model, shape):
    with pytest.raises(BundleError, match=r"this model takes \[N, 4\]"):
        model.decode(np.zeros(shape, np.float32))


def test_decode_of_no_latents_is_empty(model):
    out = model.decode(np.zeros((0, 4), np.float32))
    assert out.shape == (0, 1, 28, 28)
    assert out.dtype == np.float32


def test_encode_of_no_images_is_empty(model):
    mu, logvar = model.encode(np.zeros((0, 1, 28, 28), np.float32))
    assert mu.shape == (0, 4) and logvar.shape == (0, 4)
    assert mu.dtype == np.float32 and logvar.dtype == np.float32


def test_encode_in_batches_matches_one_shot(tiny_bundle):
    rng = np.random.default_rng(0)
    x = rng.random((13, 1, 28, 28), dtype=np.float32)
    small = Model(load_bundle(tiny_bundle), provider="cpu", batch_size=4)
    big = Model(load_bundle(tiny_bundle), provider="cpu")
    mu_small, logvar_small = small.encode(x)
    mu_big, logvar_big = big.encode(x)
    assert mu_small.shape == (13, 4)
    np.testing.assert_allclose(mu_small, mu_big, atol=1e-5)
    np.testing.assert_allclose(logvar_small, logvar_big, atol=1e-5)


def test_sessions_are_made_once_and_lazily(model):
    assert model._encoder is None and model._decoder is None
    first = model.decoder
    assert model.decoder is first
    assert model._encoder is None


def test_graph_with_the_wrong_latent_dim_is_refused(tiny_bundle, tmp_path):
    import json
    import shutil

    copy = shutil.copytree(tiny_bundle, tmp_path / "model")
    meta = json.loads((copy / "vaegen.json").read_text())
    meta["latent_dim"] = 5  # vaegen.json is not checksummed; the graphs must still agree
    (copy / "vaegen.json").write_text(json.dumps(meta))
    model = Model(load_bundle(copy), provider="cpu")
    with pytest.raises(BundleError, match=r"input 'z' has shape .*the bundle says \[None, 5\]"):
        _ = model.decoder


def test_io_binding_path_matches_plain_run(tiny_bundle):
    """The CUDA provider's IO-binding path, exercised here on the CPU provider."""
    from vaegen.api import Model
    from vaegen.bundle.read import load_bundle

    rng = np.random.default_rng(1)
    z = rng.standard_normal((37, 4), dtype=np.float32)
    x = rng.random((9, 1, 28, 28), dtype=np.float32)
    plain = Model(load_bundle(tiny_bundle), provider="cpu", io_binding=False, batch_size=16)
    bound = Model(load_bundle(tiny_bundle), provider="cpu", io_binding=True, batch_size=16)
    np.testing.assert_array_equal(plain.decode(z), bound.decode(z))
    np.testing.assert_array_equal(plain.decode(z, output="logits"), bound.decode(z, output="logits"))
    for a, b in zip(plain.encode(x), bound.encode(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fp16_export_is_checked_at_its_stated_tolerance(tmp_path):
    torch = pytest.importorskip("torch")
    import json

    from vaegen.api import Model
    from vaegen.bundle.read import load_bundle
    from vaegen.likelihoods.bernoulli import Bernoulli
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    torch.manual_seed(0)
    model = VAE(ModelConfig(arch="mlp", latent_dim=4, hidden=32)).eval()
    path = export_bundle(model, tmp_path / "half", fp16=True)
    meta = json.loads((path / "vaegen.json").read_text())
    assert meta["decoder_precision"] == "fp16"
    assert meta["parity_atol"]["logits"] == Bernoulli.fp16_atol["logits"]
    assert 0 < meta["parity_max_abs_diff"]["logits"] <= Bernoulli.fp16_atol["logits"]
    runtime = Model(load_bundle(path), provider="cpu")
    z = np.random.default_rng(0).standard_normal((5, 4), dtype=np.float32)
    probs = runtime.decode(z)
    assert probs.dtype == np.float32
    with torch.inference_mode():
        expected = torch.sigmoid(model.decode(torch.from_numpy(z))).numpy()
    assert np.abs(probs - expected).max() <= Bernoulli.fp16_atol["probs"]
