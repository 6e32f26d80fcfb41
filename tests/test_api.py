"""The Python API (vaegen.api and the lazy names of `import vaegen`): shapes,
dtypes and ranges of what a Model returns, the identities between its
methods (reconstruct is decode of encode's mu; an interpolation starts and
ends at the two images' codes), traverse's most-active-first order, reading
user images (every bad file named at once, or skipped), save_grid in the
format its extension names, and the ArgumentError every bad argument raises;
no library message names a CLI flag.

Uses the tiny_bundle fixture (latent_dim 4, images 1x28x28, made with torch)
run on ONNX Runtime's CPU provider.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import vaegen
from tests.support import grid_size, pixel_change_along, png_size
from vaegen.api import Model, load_model, save_grid
from vaegen.errors import ArgumentError, ImageError


@pytest.fixture(scope="module")
def model(tiny_bundle) -> Model:
    return load_model(tiny_bundle, provider="cpu", threads=1)


@pytest.fixture
def images(model, digits) -> np.ndarray:
    """The four digit PNGs as the model sees them: float32 [4, 1, 28, 28]."""
    return model.read_images(digits)


def test_load_model_opens_the_bundle(model, tiny_bundle):
    assert isinstance(model, Model)
    assert model.bundle.path == tiny_bundle
    assert model.latent_dim == 4
    assert model.image_shape == (1, 28, 28)
    assert str(tiny_bundle) in repr(model)


# ---------------------------------------------------------------- sampling


def test_sample_is_n_images_of_pixel_means(model):
    x = model.sample(6, seed=0)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert not np.array_equal(x[0], x[1])


def test_sample_same_seed_same_images_other_seed_other_images(model):
    np.testing.assert_array_equal(model.sample(5, seed=3), model.sample(5, seed=3))
    assert not np.array_equal(model.sample(5, seed=3), model.sample(5, seed=4))


# ---------------------------------------------------------------- encoding and decoding


def test_encode_gives_a_mean_and_a_log_variance_per_image(model, images):
    mu, logvar = model.encode(images)
    assert mu.shape == logvar.shape == (4, 4)
    assert mu.dtype == logvar.dtype == np.float32
    assert np.isfinite(mu).all() and np.isfinite(logvar).all()


def test_decode_gives_an_image_per_latent(model):
    z = np.array([[0, 0, 0, 0], [1, -1, 0.5, 2], [0, 0, 0, 0]], np.float32)
    y = model.decode(z)
    assert y.shape == (3, 1, 28, 28) and y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    np.testing.assert_array_equal(y[0], y[2])
    assert not np.array_equal(y[0], y[1])


def test_reconstruct_is_decode_of_the_posterior_mean(model, images):
    mu, _ = model.encode(images)
    np.testing.assert_array_equal(model.reconstruct(images), model.decode(mu))


# ---------------------------------------------------------------- latent walks


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolate_runs_from_the_first_code_to_the_second(model, images, method):
    frames = model.interpolate(images[0], images[1], steps=6, method=method)
    assert frames.shape == (6, 1, 28, 28) and frames.dtype == np.float32
    mu, _ = model.encode(images[:2])
    ends = model.decode(mu)
    np.testing.assert_allclose(frames[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(frames[-1], ends[1], atol=1e-5)


def test_lerp_is_a_straight_line_and_slerp_is_not(model, images):
    mu, _ = model.encode(images[:2])
    lerp = model.interpolate_latents(mu[0], mu[1], steps=3, method="lerp")
    slerp = model.interpolate_latents(mu[0], mu[1], steps=3, method="slerp")
    assert lerp.shape == slerp.shape == (3, 4)
    np.testing.assert_allclose(lerp[1], (mu[0] + mu[1]) / 2, atol=1e-6)
    for walk in (lerp, slerp):  # both walks start and end at the two codes
        np.testing.assert_allclose(walk[[0, -1]], mu, atol=1e-5)
    assert not np.allclose(slerp[1], lerp[1], atol=1e-4)  # the arc leaves the chord in between
    # slerp follows the arc: its midpoint is longer than the chord's
    assert np.linalg.norm(slerp[1]) > np.linalg.norm(lerp[1])


def test_traverse_is_a_row_per_dimension_most_active_first(model):
    grid, dims = model.traverse(steps=5)
    assert grid.shape == (4 * 5, 1, 28, 28) and grid.dtype == np.float32
    assert sorted(dims) == [0, 1, 2, 3]
    assert dims == model.active_dims()
    change = pixel_change_along(model, dims)
    assert np.all(np.diff(change) <= 1e-5 * change[0]), change
    assert change[0] > change[-1]  # the tiny model's dimensions are not all alike


def test_traverse_chosen_dims_from_a_base_code(model):
    base = np.array([0.0, -0.5, 0.0, 1.0], np.float32)
    grid, dims = model.traverse(base, dims=[2, 0], steps=3, span=1.5)
    assert dims == [2, 0]
    assert grid.shape == (2 * 3, 1, 28, 28)
    want = np.repeat(base[None], 6, axis=0)  # each row sets its dimension to -span, 0, span; the rest is the base
    want[0:3, 2] = want[3:6, 0] = [-1.5, 0.0, 1.5]
    np.testing.assert_allclose(grid, model.decode(want), atol=1e-6)


# ---------------------------------------------------------------- files


def test_read_images_prepares_files_as_the_model_sees_them(model, digits):
    x = model.read_images(digits)
    assert x.shape == (4, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    for image, path in zip(x, digits, strict=True):  # 'resize' preprocessing: the 28x28 PNGs as they are
        np.testing.assert_allclose(image[0], np.asarray(Image.open(path)) / 255, atol=1 / 255 + 1e-6)


def test_load_images_names_every_unusable_file_at_once(model, digits, tmp_path):
    missing, text = tmp_path / "missing.png", tmp_path / "notes.png"
    text.write_text("not an image\n")
    with pytest.raises(ImageError) as caught:
        model.load_images([digits[0], missing, digits[1], text])
    message = str(caught.value)
    assert message.startswith("2 of 4 images cannot be used: ")
    assert f"Image {missing} does not exist" in message and f"{text} is not an image Pillow can read" in message
    assert [path for path, _ in caught.value.refused] == [missing, text]
    with pytest.raises(ImageError, match="2 of 4 images"):
        model.read_images([digits[0], missing, digits[1], text])


def test_load_images_skip_bad_keeps_the_rest(model, digits, tmp_path):
    missing = tmp_path / "missing.png"
    batch = model.load_images([missing, digits[2], digits[0]], skip_bad=True)
    np.testing.assert_array_equal(batch.images, model.read_images([digits[2], digits[0]]))
    assert batch.paths == [digits[2], digits[0]]
    assert batch.skipped == [(missing, f"Image {missing} does not exist.")]
    with pytest.raises(ImageError, match="None of the 2 images can be used: "):
        model.load_images([missing, tmp_path / "other.png"], skip_bad=True)


def test_a_missing_model_is_an_error_that_names_no_cli_flag(tmp_path):
    with pytest.raises(vaegen.VaegenError) as caught:
        vaegen.load_model(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(caught.value)
    assert "--" not in str(caught.value)  # there is no --model in Python


@pytest.mark.parametrize(("name", "fmt"), [("g.jpg", "JPEG"), ("g.jpeg", "JPEG"), ("g.webp", "WEBP"), ("g.gif", "GIF")])
def test_save_grid_format_follows_the_extension(model, tmp_path, name, fmt):
    save_grid(model.sample(4), tmp_path / name)
    with Image.open(tmp_path / name) as img:
        assert img.format == fmt and img.size == grid_size(2, 2)


@pytest.mark.parametrize(("n", "nrow", "scale", "cols", "rows"), [(6, 3, 2, 3, 2), (5, None, 1, 3, 2), (1, None, 3, 1, 1)])
def test_save_grid_writes_a_png_of_the_grids_size(model, tmp_path, n, nrow, scale, cols, rows):
    out = tmp_path / "grid.png"
    save_grid(model.sample(n), out, nrow=nrow, scale=scale)
    assert png_size(out) == grid_size(cols, rows, scale)
    assert cols == (nrow or math.ceil(math.sqrt(n)))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # written atomically: no temporary file left


# ---------------------------------------------------------------- bad arguments


BAD_CALLS = {
    "sample n=0": lambda m: m.sample(0),
    "sample n=-1": lambda m: m.sample(-1),
    "sample n=2.5": lambda m: m.sample(2.5),
    "sample a negative temperature": lambda m: m.sample(2, temperature=-1.0),
    "reconstruct the wrong image shape": lambda m: m.reconstruct(np.zeros((2, 3, 28, 28), np.float32)),
    "reconstruct one image without N": lambda m: m.reconstruct(np.zeros((1, 28, 28), np.float32)),
    "interpolate the wrong image shape": lambda m: m.interpolate(np.zeros((1, 14, 14)), np.zeros((1, 14, 14))),
    "a latent of the wrong shape": lambda m: m.interpolate_latents(np.zeros(3), np.zeros(4)),
    "a NaN latent": lambda m: m.interpolate_latents(np.array([np.nan, 0, 0, 0]), np.zeros(4)),
    "an unknown interpolation": lambda m: m.interpolate_latents(np.zeros(4), np.ones(4), method="cubic"),
    "interpolate steps=1": lambda m: m.interpolate(np.zeros((1, 28, 28)), np.ones((1, 28, 28)), steps=1),
    "traverse a base of the wrong shape": lambda m: m.traverse(np.zeros(5)),
    "traverse a dimension out of range": lambda m: m.traverse(dims=[0, 4]),
    "traverse steps=1": lambda m: m.traverse(steps=1),
    "read no images": lambda m: m.read_images([]),
    "save an empty grid": lambda m: save_grid(np.zeros((0, 1, 28, 28)), "never.png"),
    "save a grid as .bmp": lambda m: save_grid(np.zeros((1, 1, 28, 28)), "never.bmp"),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_arguments_raise_argument_error(model, tmp_path, monkeypatch, call):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError):
        call(model)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- import vaegen


def test_import_vaegen_is_lazy(tmp_path):
    code = (
        "import sys, vaegen\n"
        "loaded = [m for m in ('vaegen.api', 'onnxruntime', 'numpy') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "load_model = vaegen.load_model\n"
        "assert load_model.__module__ == 'vaegen.api' and 'vaegen.api' in sys.modules\n"
        "assert vaegen.save_grid.__module__ == 'vaegen.api'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VAEGEN_DEBUG", "VAEGEN_MODEL")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, done.stderr


def test_the_package_lists_and_resolves_its_public_names():
    names = dir(vaegen)
    for name in ("load_model", "save_grid", "Model", "ArgumentError", "VaegenError", "__version__"):
        assert name in names and name in vaegen.__all__
    assert vaegen.load_model is load_model and vaegen.ArgumentError is ArgumentError
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        vaegen.nonsense  # noqa: B018
