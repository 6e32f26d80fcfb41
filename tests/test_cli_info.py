"""`vaegen info` (vaegen/cli/info.py): the bundle, the providers and why CUDA
cannot run, and where datasets are looked for, as text and --json. Runs the tiny_bundle fixture (made with torch) on ONNX Runtime.
"""

from __future__ import annotations

import json

from tests.support import no_gpu
from vaegen import runtime
from vaegen.runtime import CPU, cuda_driver_present


def test_info_describes_the_bundle(vaegen, tiny_bundle):
    result = vaegen("info")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"model        {tiny_bundle}" in out
    assert "latent_dim 4, image 1x28x28" in out
    assert "preprocessing resize" in out
    assert f"active       {CPU}" in out
    assert "metric       test_neg_elbo = " in out
    assert "calibration  none: `vaegen score` gives no percentiles (see `vaegen fit-prior`)" in out


def test_info_names_a_calibration(vaegen, prior_bundle):
    out = vaegen("info", "--model", prior_bundle).stdout
    assert "calibration  20 held-out images, k=10, for `vaegen score`'s percentiles and flags" in out


def test_info_json(vaegen, tiny_bundle):
    result = vaegen("info", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"model", "bundle", "providers"} <= set(data)
    assert data["model"] == str(tiny_bundle)
    assert data["bundle"]["latent_dim"] == 4
    assert data["bundle"]["image_shape"] == [1, 28, 28]
    assert CPU in data["providers"]["usable"]
    assert CPU in data["providers"]["installed"]
    if not cuda_driver_present():
        assert data["providers"]["active"] == CPU


def test_info_with_provider_cpu(vaegen):
    result = vaegen("info", "--json", "--provider", "cpu")
    assert json.loads(result.stdout)["providers"]["active"] == CPU


def test_info_says_where_datasets_are_looked_for(vaegen, tmp_path, monkeypatch):
    from vaegen.data.named import data_dirs

    monkeypatch.setenv("VAEGEN_DATA_DIR", str(tmp_path / "datasets"))
    text = vaegen("info")
    assert text.exit_code == 0, text.output
    for name in ("mnist", "fashion-mnist"):
        folders = [str(folder) for folder in data_dirs(name)]
        assert folders[:2] == [str(tmp_path / "datasets"), str(tmp_path / "datasets" / name)]
        assert f"data         {name}: {', '.join(folders)}" in text.stdout
    data = json.loads(vaegen("info", "--json").stdout)
    assert data["data_dirs"]["fashion-mnist"] == [str(folder) for folder in data_dirs("fashion-mnist")]


@no_gpu
def test_info_says_why_cuda_cannot_run(vaegen):
    text = vaegen("info")
    assert text.exit_code == 0, text.output
    assert "cuda         cannot run: " in text.stdout
    report = json.loads(vaegen("info", "--json").stdout)["providers"]
    assert report["cuda_problem"] == runtime.cuda_problem()
    assert "no NVIDIA driver" in report["cuda_problem"] or "no CUDA provider" in report["cuda_problem"]
    assert report["usable"] == [CPU]


def test_info_names_the_missing_cuda_library(vaegen, monkeypatch):
    """A driver and a GPU, but a CUDA library missing: the loader's words, as ONNX Runtime reports them."""
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [runtime.CUDA, CPU])
    monkeypatch.setattr(runtime, "_driver_problem", lambda: None)

    def no_cudnn(name, *args, **kwargs):
        raise OSError("libcudnn.so.9: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(runtime.ctypes, "CDLL", no_cudnn)
    result = vaegen("info", "--provider", "cpu")
    assert result.exit_code == 0, result.output
    assert ("cuda         cannot run: ONNX Runtime cannot load its CUDA provider: libcudnn.so.9: cannot open shared "
            "object file") in result.stdout
    assert f"usable       {CPU}\n" in result.stdout
