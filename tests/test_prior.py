"""The fitted latent prior: the numpy mixture sampler, prior.npy (written,
read back checked), fitting (scikit-learn), and `vaegen sample` / `vaegen
fit-prior` on a bundle that has one, bad inputs included."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import assert_one_line_error
from vaegen.api import load_model
from vaegen.bundle.read import load_bundle
from vaegen.bundle.records import PRIOR_FILE, parse_prior, read_prior, write_prior
from vaegen.cli import cli
from vaegen.errors import ArgumentError, BundleError
from vaegen.evaluation.judges import judge_dir
from vaegen.latent.sampling import FittedPrior, GaussianMixture


def random_mixture(k: int, d: int, seed: int) -> GaussianMixture:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(0, 3, (k, d))
    factors = rng.normal(0, 0.5, (k, d, d))
    covariances = factors @ factors.transpose(0, 2, 1) + 0.1 * np.eye(d)
    return GaussianMixture.from_covariances(weights, means, covariances)


# ---------------------------------------------------------------- the sampler


def test_many_draws_have_the_mixtures_mean_and_covariance():
    mixture = random_mixture(3, 4, seed=1)
    z = mixture.sample(200_000, np.random.default_rng(0)).astype(np.float64)
    mean = mixture.weights @ mixture.means
    second = sum(w * (c + np.outer(m, m)) for w, m, c in zip(mixture.weights, mixture.means, mixture.covariances,
                                                               strict=True))
    covariance = second - np.outer(mean, mean)
    assert np.allclose(z.mean(axis=0), mean, atol=0.05)
    assert np.allclose(np.cov(z.T), covariance, atol=0.15 * np.abs(covariance).max())


def test_temperature_scales_the_spread_around_each_component_mean():
    one = GaussianMixture.from_covariances(np.ones(1), np.full((1, 2), 5.0), np.eye(2)[None] * 4.0)
    z = one.sample(50_000, np.random.default_rng(0), temperature=0.5)
    assert np.allclose(z.mean(axis=0), 5.0, atol=0.03)
    assert np.allclose(z.std(axis=0), 1.0, atol=0.02)  # 0.5 * sqrt(4)
    assert np.array_equal(one.sample(3, np.random.default_rng(0), temperature=0.0), np.full((3, 2), 5.0, np.float32))


def test_same_seed_same_draws_other_seed_other_draws():
    prior = FittedPrior(random_mixture(4, 3, seed=2))
    assert np.array_equal(prior.sample(64, seed=7), prior.sample(64, seed=7))
    assert not np.array_equal(prior.sample(64, seed=7), prior.sample(64, seed=8))
    assert prior.sample(5).dtype == np.float32


def test_log_density_matches_a_single_gaussian_in_closed_form():
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    mixture = GaussianMixture.from_covariances(np.ones(1), np.array([[1.0, -1.0]]), cov[None])
    z = np.array([[0.0, 0.0], [1.0, -1.0]])
    diff = z - [1.0, -1.0]
    expected = -0.5 * (np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff) + np.log(np.linalg.det(cov))
                       + 2 * np.log(2 * np.pi))
    assert np.allclose(mixture.log_density(z), expected)


@pytest.mark.parametrize("bad", [
    lambda w, m, c: (w * 2, m, c),  # weights do not sum to 1
    lambda w, m, c: (w, m, -c),  # not positive definite
    lambda w, m, c: (w, m[:, :2], c),  # shapes disagree
    lambda w, m, c: (w, m * np.nan, c),
])
def test_an_inconsistent_mixture_is_refused(bad):
    mixture = random_mixture(2, 3, seed=0)
    with pytest.raises((ValueError, np.linalg.LinAlgError)):
        GaussianMixture.from_covariances(*bad(mixture.weights, mixture.means, mixture.covariances))


@pytest.mark.parametrize("bad", [
    lambda L: L.transpose(0, 2, 1),  # upper, not lower, triangular
    lambda L: -L,  # a negative diagonal
    lambda L: L + np.inf,
])
def test_a_scale_that_is_not_a_cholesky_factor_is_refused(bad):
    mixture = random_mixture(2, 3, seed=0)
    with pytest.raises(ValueError):
        GaussianMixture(mixture.weights, mixture.means, bad(mixture.scale_tril))


def test_a_class_is_named_or_indexed_and_an_unknown_one_is_refused():
    per_class = [random_mixture(1, 2, seed=s) for s in range(3)]
    prior = FittedPrior(random_mixture(2, 2, seed=9), ["cat", "dog", "7"], per_class)
    assert prior.class_index("dog") == 1
    assert prior.class_index(0) == 0 and prior.class_index("1") == 1
    assert prior.class_index("7") == 2  # a name wins over an index
    for bad in ("emu", 3, -1, "-1", 1.5, True):
        with pytest.raises(ValueError, match="no class"):
            prior.class_index(bad)


# ---------------------------------------------------------------- fitting


def separated_codes(n_per_class: int = 150, d: int = 3, seed: int = 0):
    """Codes of three classes in far-apart clusters, so every draw's class is plain."""
    rng = np.random.default_rng(seed)
    centres = np.array([[10.0, 0, 0], [-10.0, 0, 0], [0, 10.0, 0]])[:, :d]
    z = np.concatenate([c + rng.normal(0, 1, (n_per_class, d)) for c in centres])
    labels = np.repeat(np.arange(3), n_per_class)
    return z, labels, centres


def test_per_class_draws_stay_in_their_class():
    pytest.importorskip("sklearn")
    from vaegen.latent.fit import fit_mixture

    z, labels, centres = separated_codes()
    per_class = [fit_mixture(z[labels == c], 2, "full", seed=0) for c in range(3)]
    prior = FittedPrior(fit_mixture(z, 3, "full", seed=0), ["a", "b", "c"], per_class)
    for c, name in enumerate(["a", "b", "c"]):
        draws = prior.sample(500, seed=c, label=name)
        nearest = np.argmin(((draws[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        assert (nearest == c).all()
    rows = prior.sample_per_class(10, seed=0).reshape(3, 10, -1)
    for c in range(3):
        assert (np.argmin(((rows[c][:, None, :] - centres[None]) ** 2).sum(-1), axis=1) == c).all()


def test_fitting_is_seeded():
    pytest.importorskip("sklearn")
    from vaegen.latent.fit import fit_mixture

    z, _, _ = separated_codes(seed=1)
    a, b = fit_mixture(z, 4, "full", seed=3), fit_mixture(z, 4, "full", seed=3)
    assert np.array_equal(a.means, b.means) and np.array_equal(a.covariances, b.covariances)


def test_a_diagonal_fit_is_stored_as_full_diagonal_matrices():
    pytest.importorskip("sklearn")
    from vaegen.latent.fit import fit_mixture

    z, _, _ = separated_codes(seed=2)
    mixture = fit_mixture(z, 3, "diag", seed=0)
    assert mixture.covariances.shape == (3, 3, 3)
    off = mixture.covariances * (1 - np.eye(3))
    assert not off.any()


# ---------------------------------------------------------------- prior.npy


def test_prior_file_round_trip(tmp_path):
    prior = FittedPrior(random_mixture(3, 4, seed=0), ["x", "y"], [random_mixture(2, 4, s) for s in (1, 2)])
    write_prior(tmp_path / PRIOR_FILE, prior)
    back = parse_prior((tmp_path / PRIOR_FILE).read_bytes(), 4, "prior.npy")
    assert back.classes == ["x", "y"]
    assert np.allclose(back.mixture.covariances, prior.mixture.covariances, rtol=1e-5, atol=1e-6)  # stored as float32
    assert np.allclose(back.sample(20, seed=1, label="y"), prior.sample(20, seed=1, label="y"), rtol=1e-5, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [PRIOR_FILE]  # no temporary file left


def test_a_prior_for_another_latent_size_is_refused(tmp_path):
    write_prior(tmp_path / PRIOR_FILE, FittedPrior(random_mixture(2, 5, seed=0)))
    with pytest.raises(BundleError, match="5-d latents; this model's are 4-d"):
        parse_prior((tmp_path / PRIOR_FILE).read_bytes(), 4, "prior.npy")


def pickled_prior() -> bytes:
    """A prior.npy whose weights are pickled objects."""
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("data, match", [
    (b"not a zip", "not a readable prior"),
    (pickled_prior(), "not a readable prior"),
])
def test_unreadable_or_pickled_prior_bytes_are_refused(data, match):
    with pytest.raises(BundleError, match=match):
        parse_prior(data, 4, "prior.npy")


# ---------------------------------------------------------------- a bundle with a prior


def test_the_prior_is_fitted_on_the_training_split_and_the_map_drawn_from_the_held_out(prior_bundle):
    meta = json.loads((prior_bundle / "vaegen.json").read_text())
    assert " of 180 " in meta["prior"]["fitted_on"] and meta["map"]["images"] == 20  # the tiny folder's 200: 9/10, 1/10


def test_fit_prior_lists_the_file_and_its_facts(prior_bundle):
    meta = json.loads((prior_bundle / "vaegen.json").read_text())
    assert meta["files"][PRIOR_FILE]["bytes"] == (prior_bundle / PRIOR_FILE).stat().st_size
    assert meta["prior"]["covariance_type"] == "full" and "posterior means" in meta["prior"]["fitted_on"]
    assert "## Fitted prior" in (prior_bundle / "README.md").read_text()
    with Image.open(prior_bundle / "samples_per_class.png") as img:  # redrawn from the fitted prior: 4 rows of 10
        assert img.size == (2 * (10 * 30 + 2), 2 * (4 * 30 + 2))
    prior = read_prior(load_bundle(prior_bundle))
    assert prior.classes == ["0", "1", "2", "3"] and prior.mixture.dim == 4


def test_the_api_samples_the_fitted_prior_by_default(prior_bundle):
    model = load_model(prior_bundle, provider="cpu")
    assert model.classes == ["0", "1", "2", "3"] and model.prior_in_use() == "fitted"
    fitted = model.sample_latents(32, seed=0)
    assert np.array_equal(fitted, model.prior.sample(32, seed=0))
    assert np.array_equal(model.sample_latents(32, seed=0, prior="standard"),
                          load_model(prior_bundle).sample_latents(32, seed=0, prior="standard"))
    assert not np.array_equal(fitted, model.sample_latents(32, seed=0, prior="standard"))
    assert model.sample(5, label="2").shape == (5, 1, 28, 28)
    assert model.sample_per_class(3).shape == (12, 1, 28, 28)


def test_the_api_refuses_what_cannot_be_drawn(prior_bundle, tiny_bundle):
    model = load_model(prior_bundle, provider="cpu")
    with pytest.raises(ArgumentError, match="no class '9'; the classes are 0, 1, 2, 3"):
        model.sample(2, label="9")
    with pytest.raises(ArgumentError, match="cannot go with the standard prior"):
        model.sample(2, label=1, prior="standard")
    with pytest.raises(ArgumentError, match="Unknown prior"):
        model.sample(2, prior="vamp")
    plain = load_model(tiny_bundle, provider="cpu")
    assert plain.prior is None and plain.classes == [] and plain.prior_in_use() == "standard"
    with pytest.raises(ArgumentError, match="has no fitted prior"):
        plain.sample(2, prior="fitted")


def png_bytes(path: Path) -> bytes:
    with Image.open(path) as img:
        return img.tobytes()


def test_sample_draws_the_fitted_prior_by_default_and_the_standard_one_when_asked(vaegen, prior_bundle, tmp_path):
    assert vaegen("sample", "--model", prior_bundle, "-n", 16, "-o", "auto.png").exit_code == 0
    assert vaegen("sample", "--model", prior_bundle, "-n", 16, "--prior", "fitted", "-o", "fitted.png").exit_code == 0
    assert vaegen("sample", "--model", prior_bundle, "-n", 16, "--prior", "standard", "-o", "std.png").exit_code == 0
    assert (tmp_path / "auto.png").read_bytes() == (tmp_path / "fitted.png").read_bytes()
    assert png_bytes(tmp_path / "auto.png") != png_bytes(tmp_path / "std.png")
    result = vaegen("sample", "--model", prior_bundle, "-n", 4, "-o", "j.png", "--json")
    assert json.loads(result.stdout)["prior"] == "fitted"


def test_sample_per_label_draws_a_row_per_class(vaegen, prior_bundle, tmp_path):
    result = vaegen("sample", "--model", prior_bundle, "--per-label", 5, "-o", "rows.png", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n"] == 20 and summary["classes"] == ["0", "1", "2", "3"]
    with Image.open(tmp_path / "rows.png") as img:
        assert img.size == (5 * 30 + 2, 4 * 30 + 2)


def test_sample_label_by_name_and_index_agree(vaegen, prior_bundle, tmp_path):
    prior = read_prior(load_bundle(prior_bundle))
    assert prior.class_index("3") == 3
    assert vaegen("sample", "--model", prior_bundle, "--label", "3", "-n", 9, "-o", "a.png").exit_code == 0
    model = load_model(prior_bundle, provider="cpu")
    assert np.array_equal(model.sample_latents(9, label="3"), model.sample_latents(9, label=3))


@pytest.mark.parametrize("args, code, fragment", [
    (["--label", "7"], 2, "no class '7'; the classes are 0, 1, 2, 3"),
    (["--per-label", "3", "-n", "8"], 2, "--per-label draws every class; it cannot go with -n or --label"),
    (["--per-label", "3", "--label", "1"], 2, "--per-label draws every class"),
    (["--per-label", "3", "--prior", "standard"], 2, "drop --prior standard"),
    (["--label", "1", "--prior", "standard"], 2, "cannot go with the standard prior"),
])
def test_sample_bad_prior_options_on_a_bundle_with_classes(vaegen, prior_bundle, tmp_path, args, code, fragment):
    assert_one_line_error(vaegen("sample", "--model", prior_bundle, *args, "-o", "s.png"), code, fragment)
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--prior", "fitted"], "has no fitted prior"),
    (["--label", "1"], "has no classes to draw from"),
    (["--per-label", "2"], "has no fitted prior"),
])
def test_sample_prior_options_on_a_bundle_without_a_prior(vaegen, tiny_bundle, tmp_path, args, fragment):
    assert_one_line_error(vaegen("sample", "--model", tiny_bundle, *args, "-o", "s.png"), 2, fragment)
    assert not (tmp_path / "s.png").exists()


def test_a_prior_without_classes_refuses_a_label(vaegen, tiny_bundle, tmp_path):
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "model"))
    from vaegen.bundle.write import install_prior

    pytest.importorskip("sklearn")
    facts = {"kind": "gaussian_mixture", "components": 2, "class_components": 0, "covariance_type": "full",
             "fitted_on": "posterior means of 9 test images", "classes": [], "seed": 0, "encode_seconds": 0.0,
             "fit_seconds": 0.0}
    install_prior(load_model(copy, provider="cpu"), FittedPrior(random_mixture(2, 4, seed=0), facts=facts))
    assert_one_line_error(vaegen("sample", "--model", copy, "--label", "1", "-o", "s.png"), 2,
                          "has no classes (its data had no labels)")


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: p.write_bytes(p.read_bytes()[:-10] + b"0123456789"), "does not match its sha256"),
    (lambda p: p.unlink(), "prior.npy is missing"),
    (lambda p: p.write_bytes(pickled_prior()), "is"),
])
def test_a_tampered_or_missing_prior_is_refused(vaegen, prior_bundle, tmp_path, damage, fragment):
    copy = Path(shutil.copytree(prior_bundle, tmp_path / "model"))
    damage(copy / PRIOR_FILE)
    if fragment == "is":  # a pickled file with the right checksum: refused by np.load, never unpickled
        meta = json.loads((copy / "vaegen.json").read_text())
        from vaegen.bundle.read import sha256_file

        meta["files"][PRIOR_FILE] = {"bytes": (copy / PRIOR_FILE).stat().st_size, "sha256": sha256_file(copy / PRIOR_FILE)}
        (copy / "vaegen.json").write_text(json.dumps(meta))
        fragment = "not a readable prior"
    assert_one_line_error(vaegen("sample", "--model", copy, "-o", "s.png"), 1, fragment)
    assert not (tmp_path / "s.png").exists()


def test_the_standard_prior_needs_no_prior_file(vaegen, prior_bundle, tmp_path):
    """--prior standard never reads prior.npz, so a damaged one does not stop it."""
    copy = Path(shutil.copytree(prior_bundle, tmp_path / "model"))
    (copy / PRIOR_FILE).write_bytes(b"junk")
    assert vaegen("sample", "--model", copy, "--prior", "standard", "-o", "s.png").exit_code == 0


def test_info_shows_the_prior(vaegen, prior_bundle):
    result = vaegen("info", "--model", prior_bundle)
    assert result.exit_code == 0, result.output
    assert "prior        gaussian_mixture, 3 components (full), classes 0, 1, 2, 3" in result.stdout


def test_the_prior_file_is_one_record_of_plain_arrays(prior_bundle):
    record = np.load(prior_bundle / PRIOR_FILE, allow_pickle=False)
    assert record.shape == () and sorted(record.dtype.names) == sorted(
        ("weights", "means", "scale_tril", "classes", "class_weights", "class_means", "class_scale_tril"))
    assert record["scale_tril"].dtype == np.float32 and record["classes"].dtype.kind == "U"


MNIST_JUDGE = judge_dir(dataset="mnist")  # the tiny folder's classes are digits 0-3: MNIST's judge knows them


def test_evaluate_samples_judges_each_prior_beside_real_images(vaegen, prior_bundle):
    dataset = json.loads((prior_bundle / "vaegen.json").read_text())["dataset"]  # the tiny labelled folder
    result = vaegen("evaluate", "--model", prior_bundle, "--samples", 40, "--judge", MNIST_JUDGE, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = report["quality"]
    assert report["dataset"] == dataset  # the bundle's own, unless --dataset says otherwise
    assert list(rows) == ["real held-out", "reconstructions", "fitted prior", "fitted prior, per class", "standard prior"]
    for row in rows.values():
        assert row["frechet_distance"] >= 0 and 0 <= row["confident_share"] <= 1 and 1 <= row["inception_score"] <= 10
    assert rows["fitted prior, per class"]["count"] == 40  # 10 of each of the 4 classes
    assert "label_agreement" in rows["real held-out"] and "label_agreement" not in rows["fitted prior"]
    assert "label_agreement" in rows["reconstructions"]  # decoded posterior means of the labelled held-out images
    assert set(rows["fitted prior, per class"]["class_agreement"]) == {"0", "1", "2", "3"}
    text = vaegen("evaluate", "--model", prior_bundle, "--samples", 40, "--judge", MNIST_JUDGE, "--quiet").stdout
    assert "fitted prior, per class" in text and "Frechet" in text and "worst class" in text


def test_evaluate_samples_on_a_bundle_without_a_prior_judges_the_standard_prior(vaegen, tiny_bundle):
    dataset = json.loads((tiny_bundle / "vaegen.json").read_text())["dataset"]
    result = vaegen("evaluate", "--dataset", dataset, "--samples", 20, "--judge", MNIST_JUDGE, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)["quality"]) == ["real held-out", "reconstructions", "standard prior"]


def test_evaluate_samples_without_a_judge_for_the_dataset_says_so_in_one_line(vaegen, tiny_bundle):
    result = vaegen("evaluate", "--model", tiny_bundle, "--samples", 20)
    assert result.exit_code == 1
    assert result.output.startswith("Error: No judge for ") and result.output.count("\n") == 1
    assert "`vaegen judge --dataset" in result.output  # its folder has classes: how to train its judge


def test_inactive_dimensions_stay_out_of_em_as_an_independent_gaussian():
    pytest.importorskip("sklearn")
    from vaegen.latent.fit import fit_mixture

    z, _, centres = separated_codes(seed=3)
    rng = np.random.default_rng(0)
    unused = 0.5 + 0.001 * rng.standard_normal((len(z), 2))  # an encoder's unused units: (nearly) constant
    mixture = fit_mixture(np.concatenate([z[:, :1], unused[:, :1], z[:, 1:], unused[:, 1:]], axis=1), 3, "full", seed=0)
    assert mixture.dim == 5
    for k in range(3):
        assert np.allclose(mixture.means[k, [1, 4]], 0.5, atol=0.01)
        cov = mixture.covariances[k]
        assert not cov[[1, 4]][:, [0, 2, 3]].any()  # independent of the active block
        assert cov[1, 1] < 0.01 and cov[4, 4] < 0.01
    active_means = mixture.means[:, [0, 2, 3]]
    for centre in centres:  # the active block still finds the three clusters
        assert np.min(np.linalg.norm(active_means - centre, axis=1)) < 0.5


def test_purity_drops_codes_that_lie_in_another_class():
    pytest.importorskip("sklearn")
    from vaegen.latent.fit import fit_class_mixtures

    rng = np.random.default_rng(0)
    a_centre, b_centre = np.array([10.0, 0, 0]), np.array([-10.0, 0, 0])
    a = np.concatenate([a_centre + rng.normal(0, 1, (150, 3)), b_centre + rng.normal(0, 1, (30, 3))])  # 30 mislabelled
    b = b_centre + rng.normal(0, 1, (300, 3))

    def share_near_b(mixture):
        draws = mixture.sample(2000, np.random.default_rng(1))
        return np.mean(np.linalg.norm(draws - b_centre, axis=1) < np.linalg.norm(draws - a_centre, axis=1))

    plain = fit_class_mixtures([a, b], 2, "full", seed=0, purity=0)
    pure = fit_class_mixtures([a, b], 2, "full", seed=0, purity=0.5)
    assert share_near_b(plain[0]) > 0.1  # the mislabelled codes got a component of their own
    assert share_near_b(pure[0]) < 0.01
    assert share_near_b(pure[1]) > 0.99


def test_the_card_is_written_anew_from_the_metadata_on_a_refit(prior_bundle, tmp_path):
    """One card writer (vaegen.bundle.card): after a refit the card says what
    vaegen.json says, once, and nothing a hand added."""
    from vaegen.bundle.card import model_card

    copy = Path(shutil.copytree(prior_bundle, tmp_path / "model"))
    card = copy / "README.md"
    card.write_text(card.read_text() + "\n## A note by hand\n\nnot kept\n")
    result = CliRunner().invoke(cli, ["fit-prior", str(copy), "--components", "2", "--class-components", "2", "-q"])
    assert result.exit_code == 0, result.output
    text = card.read_text()
    assert text == model_card(json.loads((copy / "vaegen.json").read_text()))
    assert text.count("## Fitted prior") == 1 and "mixture of 2 components" in text and "## Latent map" in text
    assert "a Bernoulli decoder" in text and "A note by hand" not in text


def test_fit_prior_purity_is_an_option_and_a_recorded_fact(prior_bundle, tmp_path):
    meta = json.loads((prior_bundle / "vaegen.json").read_text())
    assert meta["prior"]["purity"] == 0.99  # the default
    assert "p(class | z) < 0.99" in (prior_bundle / "README.md").read_text()
    copy = Path(shutil.copytree(prior_bundle, tmp_path / "model"))
    result = CliRunner().invoke(cli, ["fit-prior", str(copy), "--components", "2", "--class-components", "2",
                                      "--purity", "0", "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prior"]["purity"] == 0  # one pass: the card says nothing of a second
    assert "p(class | z)" not in (copy / "README.md").read_text()
    result = CliRunner().invoke(cli, ["fit-prior", str(copy), "--purity", "1.5"])
    assert result.exit_code == 2 and "--purity" in result.stderr


def test_malformed_class_mixtures_are_refused_when_a_class_is_drawn(vaegen, prior_bundle, tmp_path):
    from vaegen.bundle.read import sha256_file

    copy = Path(shutil.copytree(prior_bundle, tmp_path / "model"))
    record = np.load(copy / PRIOR_FILE, allow_pickle=False)
    record["class_scale_tril"] = -record["class_scale_tril"]  # not Cholesky factors
    with open(copy / PRIOR_FILE, "wb") as f:
        np.save(f, record, allow_pickle=False)
    meta = json.loads((copy / "vaegen.json").read_text())
    meta["files"][PRIOR_FILE] = {"bytes": (copy / PRIOR_FILE).stat().st_size, "sha256": sha256_file(copy / PRIOR_FILE)}
    (copy / "vaegen.json").write_text(json.dumps(meta))
    assert vaegen("sample", "--model", copy, "-n", 4, "-o", "all.png").exit_code == 0  # the overall mixture is fine
    assert_one_line_error(vaegen("sample", "--model", copy, "--label", "1", "-o", "one.png"), 1, "is malformed")
    assert not (tmp_path / "one.png").exists()


def test_a_colour_model_takes_more_components_each_with_a_latent_dimensions_worth_of_codes(colour_bundle, tiny_bundle,
                                                                                          tmp_path):
    """vaegen.recipes: a grey model's prior has 20 components, a colour model's 100; either is cut to one
    component per latent dimension's worth of codes (the tiny colour folder's 81 codes of 8 dimensions: 10)."""
    from vaegen.latent.fit import fit_bundle_prior
    from vaegen.recipes import COLOUR_PRIOR, PRIOR, prior_defaults

    assert prior_defaults(1) == PRIOR and prior_defaults(3)["components"] == COLOUR_PRIOR["components"] > PRIOR["components"]
    meta = json.loads((colour_bundle / "vaegen.json").read_text())
    assert " of 81 " in meta["prior"]["fitted_on"] and meta["prior"]["components"] == 81 // 8
    grey = load_model(shutil.copytree(tiny_bundle, tmp_path / "grey"), provider="cpu")
    assert fit_bundle_prior(grey).facts["components"] == PRIOR["components"]  # 180 codes of 4 dimensions: no cut
    assert fit_bundle_prior(grey, settings={"components": 60}).facts["components"] == 180 // 4
