"""`vaegen info` (vaegen/cli/info.py): the bundle and the providers, as text
and --json. Runs the tiny_bundle fixture (made with torch) on ONNX Runtime.
"""

from __future__ import annotations

import json

import pytest

from vaegen.runtime import CPU, cuda_driver_present

pytestmark = pytest.mark.usefixtures("clean_env")  # every test runs in its own tmp_path, no VAEGEN_* from the shell


def test_info_describes_the_bundle(vaegen, tiny_bundle):
    result = vaegen("info")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"model        {tiny_bundle}" in out
    assert "latent_dim 4, image 1x28x28" in out
    assert "preprocessing resize" in out
    assert f"active       {CPU}" in out
    assert "metric       test_neg_elbo = " in out


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
