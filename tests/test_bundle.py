"""Model bundles (vaegen.bundle): finding a bundle, and refusing one that is
missing a file, truncated, tampered with, malformed, too new, or stitched
together from two exports. The tiny_bundle fixture needs torch; each test
works on its own copy in tmp_path and never changes the fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import draw_digits
from vaegen.api import Model
from vaegen.bundle.read import (
    BUNDLE_FORMAT,
    DECODER_FILE,
    ENCODER_FILE,
    META_FILE,
    Bundle,
    load_bundle,
    resolve_model_dir,
    sha256_file,
    shipped_model_dir,
)
from vaegen.cli import cli
from vaegen.errors import BundleError


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A private copy of the tiny bundle that a test may damage."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "model"))


def edit_meta(folder: Path, change) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    change(meta)
    (folder / META_FILE).write_text(json.dumps(meta))


def test_good_bundle_loads(bundle_copy):
    bundle = load_bundle(bundle_copy)
    assert isinstance(bundle, Bundle)
    assert bundle.path == bundle_copy
    assert bundle.latent_dim == 4
    assert bundle.image_shape == (1, 28, 28)
    assert bundle.encoder_path == bundle_copy / ENCODER_FILE
    assert bundle.decoder_path == bundle_copy / DECODER_FILE
    assert bundle.meta["format"] == BUNDLE_FORMAT
    assert len(bundle.model_id) == 16


def test_good_bundle_loads_from_a_string_path(bundle_copy):
    assert load_bundle(str(bundle_copy)).path == bundle_copy


def test_run_folder_resolves_to_its_model_subfolder(tiny_bundle, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(tiny_bundle, run / "model")
    assert resolve_model_dir(run) == run / "model"
    assert load_bundle(run).path == run / "model"


def test_bundle_folder_itself_is_not_redirected(bundle_copy):
    # A bundle that happens to hold a model/ subfolder is still itself.
    shutil.copytree(bundle_copy, bundle_copy / "model")
    assert resolve_model_dir(bundle_copy) == bundle_copy


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BundleError, match="does not exist: give a folder from `vaegen train`, or a shipped model"):
        resolve_model_dir(tmp_path / "nowhere")


def test_file_instead_of_folder_is_refused(tmp_path):
    file = tmp_path / "encoder.onnx"
    file.write_bytes(b"x")
    with pytest.raises(BundleError, match="is not a folder"):
        load_bundle(file)


def test_folder_without_meta_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match=f"is not a model bundle: {META_FILE} is missing"):
        load_bundle(tmp_path)


def test_missing_encoder_is_refused(bundle_copy):
    (bundle_copy / ENCODER_FILE).unlink()
    with pytest.raises(BundleError, match=f"incomplete: {ENCODER_FILE} is missing"):
        load_bundle(bundle_copy)


def test_missing_decoder_is_refused(bundle_copy):
    (bundle_copy / DECODER_FILE).unlink()
    with pytest.raises(BundleError, match=f"incomplete: {DECODER_FILE} is missing"):
        load_bundle(bundle_copy)


def test_truncated_decoder_is_refused(bundle_copy):
    path = bundle_copy / DECODER_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=rf"{len(data) // 2} bytes, not the {len(data)} recorded.*truncated"):
        load_bundle(bundle_copy)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [ENCODER_FILE, DECODER_FILE])
def test_tampered_byte_of_the_same_size_is_refused_before_the_graph_runs(bundle_copy, name):
    flip_a_byte(bundle_copy / name)
    bundle = load_bundle(bundle_copy)  # sizes match: the sha256 is checked when the graph is read
    with pytest.raises(BundleError, match=f"{name} does not match its sha256.*tampered or corrupt"):
        bundle.read_graph(name)
    model = Model(bundle, provider="cpu")
    with pytest.raises(BundleError, match="does not match its sha256"):
        model.encoder if name == ENCODER_FILE else model.decoder  # noqa: B018
    with pytest.raises(BundleError, match=f"{name} does not match its sha256"):
        load_bundle(bundle_copy, checksums=True)


def test_a_command_never_hashes_a_graph_it_does_not_run(bundle_copy):
    flip_a_byte(bundle_copy / ENCODER_FILE)
    model = Model(load_bundle(bundle_copy), provider="cpu")
    assert model.decode(np.zeros((2, 4), np.float32)).shape == (2, 1, 28, 28)  # sampling needs the decoder alone


def test_the_checked_bytes_are_the_bytes_that_run(bundle_copy, monkeypatch):
    """ONNX Runtime gets the bytes whose sha256 was checked, not the path to
    read again, so a file swapped between the check and the load cannot run."""
    import onnxruntime as ort

    import vaegen.runtime

    given = []
    real = ort.InferenceSession

    def spy(model, *args, **kwargs):
        given.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(vaegen.runtime.ort, "InferenceSession", spy)
    Model(load_bundle(bundle_copy), provider="cpu").decoder  # noqa: B018
    assert given == [(bundle_copy / DECODER_FILE).read_bytes()]


def test_tampered_file_loads_when_verification_is_off(bundle_copy):
    flip_a_byte(bundle_copy / ENCODER_FILE)
    assert load_bundle(bundle_copy, verify=False).path == bundle_copy
    assert len(load_bundle(bundle_copy, verify=False).read_graph(ENCODER_FILE)) > 0


def test_malformed_json_is_refused(bundle_copy):
    (bundle_copy / META_FILE).write_text('{"format": 1, "latent_dim": ')
    with pytest.raises(BundleError, match="is malformed JSON"):
        load_bundle(bundle_copy)


def test_non_utf8_meta_is_refused(bundle_copy):
    (bundle_copy / META_FILE).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BundleError, match="malformed"):
        load_bundle(bundle_copy)


def test_json_that_is_not_an_object_is_refused(bundle_copy):
    (bundle_copy / META_FILE).write_text("[1, 2, 3]")
    with pytest.raises(BundleError, match="expected a JSON object"):
        load_bundle(bundle_copy)


def test_newer_format_asks_for_an_upgrade(bundle_copy):
    edit_meta(bundle_copy, lambda m: m.update(format=99))
    with pytest.raises(BundleError, match=rf"format 99, newer than this vaegen reads \({BUNDLE_FORMAT}\); upgrade"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("value", [0, "1", True, None])
def test_bad_format_value_is_refused(bundle_copy, value):
    edit_meta(bundle_copy, lambda m: m.update(format=value))
    with pytest.raises(BundleError, match="malformed"):
        load_bundle(bundle_copy)


def test_missing_files_entry_is_refused(bundle_copy):
    edit_meta(bundle_copy, lambda m: m.pop("files"))
    with pytest.raises(BundleError, match="'files' is missing or not a dict"):
        load_bundle(bundle_copy)


def test_files_entry_without_a_checksum_is_refused(bundle_copy):
    edit_meta(bundle_copy, lambda m: m["files"].pop(DECODER_FILE))
    with pytest.raises(BundleError, match=f"no sha256 for {DECODER_FILE}"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("shape", [[1, 28], [1, 0, 28], [1, 28, "28"]])
def test_bad_image_shape_is_refused(bundle_copy, shape):
    edit_meta(bundle_copy, lambda m: m.update(image_shape=shape))
    with pytest.raises(BundleError, match="image_shape must be three positive integers"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_latent_dim_is_refused(bundle_copy, value):
    edit_meta(bundle_copy, lambda m: m.update(latent_dim=value))
    with pytest.raises(BundleError, match="latent_dim must be positive"):
        load_bundle(bundle_copy)


def test_vaegen_model_env_var_is_honoured(bundle_copy, monkeypatch):
    monkeypatch.setenv("VAEGEN_MODEL", str(bundle_copy))
    assert resolve_model_dir(None) == bundle_copy
    assert load_bundle().path == bundle_copy


def test_explicit_model_wins_over_env_var(bundle_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEGEN_MODEL", str(tmp_path / "elsewhere"))
    assert resolve_model_dir(bundle_copy) == bundle_copy


def test_env_var_pointing_nowhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEGEN_MODEL", str(tmp_path / "gone"))
    with pytest.raises(BundleError, match="gone does not exist"):
        load_bundle()


def test_shipped_model_dir_is_weights_mnist():
    path = shipped_model_dir()
    assert path.parts[-2:] == ("weights", "mnist")
    assert shipped_model_dir("other").parts[-2:] == ("weights", "other")


def test_without_model_or_env_var_the_shipped_model_is_used(bundle_copy, monkeypatch):
    from vaegen.bundle import read as bundle_module

    monkeypatch.delenv("VAEGEN_MODEL", raising=False)
    monkeypatch.setattr(bundle_module, "shipped_model_dir", lambda name="mnist": bundle_copy)
    assert resolve_model_dir(None) == bundle_copy


@pytest.fixture
def stitched_bundle(bundle_copy, tmp_path) -> Path:
    """bundle_copy with the encoder of another export (same shapes), checksums fixed up."""
    torch = pytest.importorskip("torch")
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    original = load_bundle(bundle_copy).meta
    torch.manual_seed(12345)
    other = VAE(ModelConfig.from_dict(original["architecture"]))
    other_dir = export_bundle(other, tmp_path / "other", dataset="digits", preprocessing=original["preprocessing"])
    assert load_bundle(other_dir).model_id != original["model_id"]
    shutil.copyfile(other_dir / ENCODER_FILE, bundle_copy / ENCODER_FILE)
    encoder = bundle_copy / ENCODER_FILE
    edit_meta(bundle_copy, lambda m: m["files"].update(
        {ENCODER_FILE: {"sha256": sha256_file(encoder), "bytes": encoder.stat().st_size}}))
    return bundle_copy


def test_encoder_from_another_export_is_refused_by_the_runtime(stitched_bundle):
    bundle = load_bundle(stitched_bundle)  # the checksums pass: only the graphs tell
    model = Model(bundle, provider="cpu")
    assert model.decoder is not None  # the decoder is this bundle's own
    with pytest.raises(BundleError, match="encoder and decoder come from different exports"):
        _ = model.encoder


def test_stitched_bundle_is_a_one_line_cli_error(stitched_bundle, tmp_path):
    digit = tmp_path / "digit.png"
    Image.fromarray(draw_digits(1, seed=5)[0][0]).save(digit)
    out = tmp_path / "r.png"
    result = CliRunner().invoke(cli, ["reconstruct", str(digit), "--model", str(stitched_bundle), "-o", str(out)])
    assert result.exit_code == 1
    assert "different exports" in result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output
    assert not out.exists()
