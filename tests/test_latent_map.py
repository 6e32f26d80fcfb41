"""vaegen.latent.map: the projections' maths (PCA, LDA, a 2-D latent as
itself), the way back from the map to the latent space, the map a bundle
carries (map.npy), and `vaegen map`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import draw_digits
from vaegen.bundle.records import MAP_FILE, read_map
from vaegen.cli import cli
from vaegen.errors import ArgumentError, BundleError
from vaegen.latent.map import empty_map, encode_map, fit_projection, map_bounds


def elongated(n: int = 600, d: int = 6, seed: int = 0) -> np.ndarray:
    """Points whose spread is largest along axis 2, then axis 4, around a shifted mean."""
    rng = np.random.default_rng(seed)
    scales = np.array([0.1, 0.2, 5.0, 0.3, 2.0, 0.1])[:d]
    return rng.normal(size=(n, d)) * scales + np.arange(d)


def test_pca_finds_the_directions_of_most_variance():
    mu = elongated()
    p = fit_projection(mu, method="pca")
    assert p.method == "pca"
    assert np.allclose(np.abs(p.directions[0]), np.eye(6)[2], atol=0.05)
    assert np.allclose(np.abs(p.directions[1]), np.eye(6)[4], atol=0.05)
    assert np.allclose(p.directions @ p.directions.T, np.eye(2), atol=1e-9)  # orthonormal
    assert np.allclose(p.mean, mu.mean(axis=0))
    assert p.axes[0].startswith("PC 1 (")


def test_pca_signs_are_fixed_so_the_picture_never_flips():
    mu = elongated()
    a, b = fit_projection(mu, method="pca"), fit_projection(mu[::-1].copy(), method="pca")
    assert np.allclose(a.directions, b.directions)
    assert (a.directions[np.arange(2), np.abs(a.directions).argmax(axis=1)] > 0).all()


def test_unproject_of_project_lies_on_the_plane():
    mu = elongated()
    p = fit_projection(mu, method="pca")
    back = p.unproject(p.project(mu))
    assert np.allclose(p.project(back), p.project(mu), atol=1e-4)  # idempotent: back is on the plane
    on_plane = p.mean + np.array([[1.5, -2.0], [0.0, 3.0]]) @ p.directions
    assert np.allclose(p.unproject(p.project(on_plane)), on_plane, atol=1e-4)
    assert np.allclose(p.unproject(np.zeros((1, 2))), p.mean[None], atol=1e-6)  # the origin is the mean


def three_classes(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Three classes apart along axis 0 only, with most variance along axis 1 (which PCA would pick)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n)
    mu = rng.normal(size=(3 * n, 5)) * np.array([0.2, 6.0, 0.5, 0.5, 0.5])
    mu[:, 0] += labels * 2.0
    return mu, labels


def separation(xy: np.ndarray, labels: np.ndarray) -> float:
    """Between-class over within-class spread of a 2-D picture."""
    centres = np.stack([xy[labels == k].mean(axis=0) for k in range(3)])
    within = np.mean([xy[labels == k].var(axis=0).sum() for k in range(3)])
    return float(centres.var(axis=0).sum() / within)


def test_lda_keeps_the_classes_apart_where_pca_does_not():
    mu, labels = three_classes()
    lda, pca = fit_projection(mu, labels), fit_projection(mu, labels, method="pca")
    assert lda.method == "lda"  # auto, with labels
    assert separation(lda.project(mu), labels) > 10 * separation(pca.project(mu), labels)
    assert np.allclose(lda.project(lda.unproject(np.array([[1.0, -2.0], [3.0, 0.5]]))), [[1.0, -2.0], [3.0, 0.5]],
                       atol=1e-3)
    back = lda.unproject(lda.project(mu))
    assert np.allclose(lda.project(back), lda.project(mu), atol=1e-3)


def test_lda_unproject_is_the_typical_latent_at_a_point():
    # A class's centre on the map unprojects close to the class's mean latent.
    mu, labels = three_classes()
    p = fit_projection(mu, labels)
    for k in range(3):
        centre = p.project(mu[labels == k]).mean(axis=0, keepdims=True)
        assert abs(p.unproject(centre)[0, 0] - mu[labels == k, 0].mean()) < 0.2


def test_auto_falls_back_to_pca_without_labels():
    mu, labels = three_classes()
    assert fit_projection(mu).method == "pca"
    assert fit_projection(mu, np.full(len(mu), -1)).method == "pca"
    with pytest.raises(ArgumentError, match="lda projection needs labelled"):
        fit_projection(mu, method="lda")


def test_a_2d_latent_is_its_own_map():
    mu = np.random.default_rng(0).normal(size=(50, 2))
    p = fit_projection(mu, np.arange(50) % 3)
    assert p.method == "latent"
    assert np.allclose(p.project(mu), mu, atol=1e-6) and np.allclose(p.unproject(mu), mu, atol=1e-6)


@pytest.mark.parametrize("mu, match", [
    (np.zeros((10, 1)), "1-D latent"),
    (np.zeros((2, 4)), "at least three"),
    (np.full((5, 4), np.nan), "not finite"),
    (np.zeros(4), "at least three"),
])
def test_fit_projection_refuses_what_has_no_map(mu, match):
    with pytest.raises(ArgumentError, match=match):
        fit_projection(mu)


def test_fit_projection_refuses_an_unknown_method():
    with pytest.raises(ArgumentError, match="Unknown projection 'tsne'"):
        fit_projection(elongated(), method="tsne")


def test_project_checks_shapes():
    p = fit_projection(elongated(), method="pca")
    with pytest.raises(ArgumentError, match=r"the map takes \[N, 6\]"):
        p.project(np.zeros((2, 5)))
    with pytest.raises(ArgumentError, match=r"\[N, 2\]"):
        p.unproject(np.zeros((2, 3)))


def test_map_bounds_are_square_and_hold_the_points():
    xy = np.random.default_rng(0).normal(size=(1000, 2)) * [3.0, 1.0]
    x0, x1, y0, y1 = map_bounds(xy)
    assert x1 - x0 == pytest.approx(y1 - y0)
    inside = (xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)
    assert inside.mean() > 0.99


def test_encode_map_of_the_tiny_bundle(tiny_bundle):
    import vaegen
    from vaegen.data.load import load_dataset

    model = vaegen.load_model(tiny_bundle)
    m = encode_map(model, limit=100)  # the bundle's own dataset, a folder of four classes (subfolders 0-3)
    assert m.xy.shape == (20, 2) and m.labels.shape == (20,)  # its held-out images: every 10th of 200
    assert m.classes == ["0", "1", "2", "3"] and m.projection.method == "lda" and m.note == ""
    images = load_dataset(model.bundle.meta["dataset"], "test").images[:100]
    assert np.allclose(m.projection.project(model.encode(images.astype(np.float32) / 255)[0]), m.xy, atol=1e-5)


def test_a_fitted_bundle_carries_the_map_of_its_held_out_images(prior_bundle):
    import vaegen

    model = vaegen.load_model(prior_bundle)
    meta = model.bundle.meta
    assert meta["map"]["images"] == 20 and meta["map"]["classes"] == ["0", "1", "2", "3"]  # every 10th of 200
    assert MAP_FILE in meta["files"]
    own = read_map(model.bundle)
    again = encode_map(model, limit=None)  # its own folder's test split: every 10th image
    assert own.xy.shape == (20, 2) and own.projection.method == "lda"
    assert np.allclose(own.projection.unproject(own.xy), own.projection.unproject(own.xy).astype(np.float32))
    assert len(again.xy) == 20


def test_map_and_serve_need_no_dataset_when_the_bundle_has_a_map(prior_bundle, tmp_path):
    moved = shutil.copytree(prior_bundle, tmp_path / "model")
    meta = json.loads((moved / "vaegen.json").read_text())
    meta["dataset"] = str(tmp_path / "gone")  # the data it was trained on is nowhere
    (moved / "vaegen.json").write_text(json.dumps(meta))
    result = CliRunner().invoke(cli, ["map", "--model", str(moved), "-o", str(tmp_path / "m.png"), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["images"] == 20 and (tmp_path / "m.png").is_file()
    result = CliRunner().invoke(cli, ["map", "--model", str(moved), "-o", str(tmp_path / "m2.png"), "--limit", "5"])
    assert result.exit_code == 1 and "which is not here" in result.output  # asking for other images reads the data


def test_a_tampered_map_is_refused(prior_bundle, tmp_path):
    import vaegen

    moved = shutil.copytree(prior_bundle, tmp_path / "model")
    data = bytearray((moved / MAP_FILE).read_bytes())
    data[-1] ^= 1
    (moved / MAP_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its sha256"):
        read_map(vaegen.load_model(moved).bundle)


def test_an_empty_map_still_frames_the_prior(tiny_bundle):
    import vaegen

    m = empty_map(vaegen.load_model(tiny_bundle), "no data here")
    assert m.xy.shape == (0, 2) and m.note == "no data here"
    assert m.projection.unproject(np.zeros((1, 2))).shape == (1, 4)


def test_map_command_writes_the_picture(tiny_bundle, tmp_path):
    out = tmp_path / "map.png"
    result = CliRunner().invoke(cli, ["map", "--model", str(tiny_bundle), "-o", str(out), "--limit", "500",
                                      "--size", "300", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["images"] == 20 and report["projection"] == "lda" and report["classes"] == ["0", "1", "2", "3"]
    picture = Image.open(out)
    assert picture.mode == "RGB" and picture.width > 300


def test_a_map_from_data_never_shows_the_models_training_images(tiny_bundle, tmp_path):
    own = json.loads((tiny_bundle / "vaegen.json").read_text())["dataset"]
    other = tmp_path / "new-digits"
    other.mkdir()
    for i, image in enumerate(draw_digits(12, seed=9)[0]):
        Image.fromarray(image).save(other / f"{i}.png")
    for folder, count in ((own, 20), (other, 12)):  # its own folder's held-out tenth; all of one it never saw
        result = CliRunner().invoke(cli, ["map", "--model", str(tiny_bundle), "--dataset", str(folder), "-o",
                                          str(tmp_path / "m.png"), "--json", "--quiet"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["images"] == count


def test_map_command_pca_and_errors(tiny_bundle, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["map", "--model", str(tiny_bundle), "-o", str(tmp_path / "m.png"), "--projection",
                                 "pca", "--limit", "50", "--json", "--quiet"])
    assert result.exit_code == 0 and json.loads(result.output)["projection"] == "pca"
    result = runner.invoke(cli, ["map", "--model", str(tiny_bundle), "-o", str(tmp_path / "m.jpg"), "--quiet"])
    assert result.exit_code == 0 and Image.open(tmp_path / "m.jpg").format == "JPEG"  # the format follows the name
    result = runner.invoke(cli, ["map", "--model", str(tiny_bundle), "-o", str(tmp_path / "m.bmp")])
    assert result.exit_code == 2 and "must end in .png, .jpg" in result.output
    result = runner.invoke(cli, ["map", "--model", str(tiny_bundle), "--dataset", str(tmp_path / "none"),
                                 "-o", str(tmp_path / "m.png")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "does not exist" in result.output


def test_the_explorer_starts_on_an_empty_map_and_says_why(tiny_bundle):
    """No map in the bundle and no data at hand: the page still serves its
    sliders, pad and decoding, and the map pane carries the reason."""
    import vaegen
    from vaegen.serve.app import Explorer

    model = vaegen.load_model(tiny_bundle)
    explorer = Explorer(model, empty_map(model, "No map: no images at hand"))
    info = explorer.info()
    assert info["map_note"] == "No map: no images at hand" and info["points"]["x"] == []
    x0, x1, y0, y1 = info["bounds"]
    assert x1 > x0 and y1 > y0
    answer = explorer.decode({"xy": [(x0 + x1) / 2, (y0 + y1) / 2]})
    assert answer["image"]["height"] == 28 and len(answer["z"]) == 4
