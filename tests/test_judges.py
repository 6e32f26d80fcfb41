"""vaegen.evaluation.judges: the Frechet distance against closed forms, the inception
score's bounds, the confident share and label agreement, the shipped judge
(loaded, checked, consistent) and, with torch, a tiny judge training run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import blocker_site, draw_digits
from vaegen.errors import ArgumentError, BundleError
from vaegen.evaluation.judges import (
    JUDGE_FILE,
    JUDGE_META,
    confident_share,
    feature_statistics,
    frechet_distance,
    inception_score,
    judge_dir,
    label_agreement,
    load_judge,
    reference_statistics,
    sample_quality,
)

ROOT = Path(__file__).resolve().parent.parent


def random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------- Frechet distance


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((m1 - m2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_a_pure_shift_is_the_squared_distance_of_the_means():
    rng = np.random.default_rng(1)
    sigma = random_covariance(rng, 8)
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    assert frechet_distance(m1, sigma, m2, sigma) == pytest.approx(np.sum((m1 - m2) ** 2), rel=1e-8, abs=1e-9)


def test_frechet_distance_of_identical_gaussians_is_zero_and_it_is_symmetric():
    rng = np.random.default_rng(2)
    mu, s1, s2 = rng.normal(size=16), random_covariance(rng, 16), random_covariance(rng, 16)
    assert frechet_distance(mu, s1, mu, s1) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(mu, s1, mu + 1, s2) == pytest.approx(frechet_distance(mu + 1, s2, mu, s1), rel=1e-9)


def test_frechet_distance_of_scaled_covariances_is_the_closed_form():
    # sigma2 = c^2 sigma1 commutes with sigma1: tr term = (1 - c)^2 tr(sigma1)
    rng = np.random.default_rng(3)
    sigma = random_covariance(rng, 10)
    assert frechet_distance(np.zeros(10), sigma, np.zeros(10), 9 * sigma) == pytest.approx(4 * np.trace(sigma))


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(5, 20))  # fewer images than dimensions: rank 4
    mu, sigma = feature_statistics(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-6)
    d = frechet_distance(mu, sigma, mu, np.zeros((20, 20)))
    assert np.isfinite(d) and d == pytest.approx(np.trace(sigma))


def test_frechet_distance_refuses_shapes_that_disagree():
    with pytest.raises(ArgumentError, match="shapes do not agree"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------- class-probability figures


def test_inception_score_bounds():
    same = np.tile(np.eye(10)[3], (50, 1))
    assert inception_score(same) == pytest.approx(1.0)
    spread = np.eye(10)[np.arange(100) % 10]
    assert inception_score(spread) == pytest.approx(10.0)
    uncertain = np.full((20, 10), 0.1)
    assert inception_score(uncertain) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=200)
    assert 1.0 <= inception_score(probs) <= 10.0


def test_confident_share():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert confident_share(probs) == pytest.approx(0.5)  # 0.9 counts: the threshold is inclusive
    assert confident_share(probs, threshold=0.5) == 1.0
    assert confident_share(probs, threshold=0.99) == 0.0


def test_label_agreement():
    probs = np.eye(10)[[1, 2, 3, 3]]
    assert label_agreement(probs, np.array([1, 2, 3, 4])) == pytest.approx(0.75)
    with pytest.raises(ArgumentError, match="4 images but labels"):
        label_agreement(probs, np.array([1, 2]))


def test_empty_probabilities_are_refused():
    with pytest.raises(ArgumentError, match="N >= 1"):
        inception_score(np.zeros((0, 10)))


# ---------------------------------------------------------------- the shipped judge


@pytest.fixture(scope="module")
def judge():
    return load_judge(provider="cpu", threads=1)


def test_the_judges_reference_and_real_images_follow_the_held_out_rule(judge, tiny_bundle):
    from vaegen.api import load_model
    from vaegen.evaluation.judges import judging_data

    model = load_model(tiny_bundle, provider="cpu", threads=1)
    real = judging_data(model, judge, model.bundle.dataset)  # a folder of 200: train 9/10, held out 1/10
    assert len(real["reference_images"]) == 180 and len(real["real_images"]) == 20


def test_shipped_judge_describes_itself(judge):
    assert judge.classes == [str(d) for d in range(10)]
    assert judge.feature_dim == judge.meta["feature_dim"] == 128
    assert judge.meta["metrics"]["test_accuracy"] >= 0.99
    assert not any(word.startswith("/") for word in judge.meta["training"]["command"].split())  # no machine paths


@pytest.mark.parametrize("dataset, accuracy, first", [("mnist", 0.99, "0"), ("fashion-mnist", 0.90, "T-shirt/top")])
def test_each_shipped_judge_never_saw_its_reference_or_floor(dataset, accuracy, first):
    """Trained on the first 50,000 training images; the other 10,000 are the
    reference, the test split the floor: the floor is two unseen real sets."""
    meta = load_judge(dataset=dataset, provider="cpu", threads=1).meta
    assert meta["dataset"] == dataset and meta["classes"][0] == first and len(meta["classes"]) == 10
    assert meta["training"]["train_images"] == meta["reference"]["start"] == 50_000
    assert meta["reference"]["count"] == 10_000 and meta["floor"]["count"] == 10_000
    assert meta["metrics"]["test_accuracy"] >= accuracy
    assert meta["floor"]["reference"] == f"{dataset} train [50000:] (10000)"


def test_no_judge_for_a_dataset_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("VAEGEN_JUDGE", raising=False)
    with pytest.raises(BundleError, match="No judge for cifar: vaegen ships judges for emoji, fashion-mnist, mnist;"):
        load_judge(dataset="cifar")


def test_shipped_judge_classifies_drawn_digits_consistently(judge):
    images, labels = draw_digits(24, seed=5)
    x = images[:, None]
    probs, features = judge.predict(x)
    assert probs.shape == (24, 10) and features.shape == (24, 128)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-9)
    assert (features >= 0).all()  # the features are a ReLU's output
    # uint8 and [0, 1] floats are the same images; the batch size changes nothing
    again, feats_again = judge.predict(x.astype(np.float32) / 255)
    np.testing.assert_allclose(again, probs, atol=1e-6)
    judge.batch_size, batch = 5, judge.batch_size
    try:
        chunked, _ = judge.predict(x)
    finally:
        judge.batch_size = batch
    np.testing.assert_allclose(chunked, probs, atol=1e-6)
    # a ring is a 0 and a vertical stroke a 1
    for digit in (0, 1):
        assert (probs[labels == digit].argmax(axis=1) == digit).all()


def test_shipped_judge_refuses_images_of_the_wrong_shape(judge):
    with pytest.raises(ArgumentError, match=r"\[N, 1, 28, 28\]"):
        judge.predict(np.zeros((2, 28, 28), np.float32))


def test_sample_quality_of_a_set_against_itself(judge):
    images, labels = draw_digits(64, seed=6)
    x = images[:, None]
    reference = reference_statistics(judge, x)
    report = sample_quality(judge, x, reference, labels=labels)
    assert report["frechet_distance"] == pytest.approx(0, abs=1e-6)
    assert report["count"] == 64 and len(report["class_shares"]) == 10
    assert sum(report["class_shares"]) == pytest.approx(1)
    assert 1 <= report["inception_score"] <= 10 and 0 <= report["confident_share"] <= 1
    assert 0 <= report["label_agreement"] <= 1
    assert sample_quality(judge, x, x) == {k: v for k, v in report.items() if k != "label_agreement"}
    other = sample_quality(judge, np.clip(x.astype(np.float32) / 255 * 0.3, 0, 1), x)
    assert other["frechet_distance"] > 1


@pytest.fixture
def judge_copy(tmp_path):
    return Path(shutil.copytree(judge_dir(), tmp_path / "judge"))


def test_tampered_judge_is_refused(judge_copy):
    path = judge_copy / JUDGE_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{JUDGE_FILE} does not match its sha256 in {JUDGE_META}: tampered"):
        load_judge(judge_copy, provider="cpu")


def test_truncated_or_missing_judge_is_refused(judge_copy):
    path = judge_copy / JUDGE_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match=f"1000 bytes, not the .* recorded in {JUDGE_META}"):
        load_judge(judge_copy, provider="cpu")
    path.unlink()
    with pytest.raises(BundleError, match=f"incomplete: {JUDGE_FILE} is missing"):
        load_judge(judge_copy, provider="cpu")
    (judge_copy / JUDGE_META).unlink()
    with pytest.raises(BundleError, match=f"not a judge folder: {JUDGE_META} is missing"):
        load_judge(judge_copy, provider="cpu")


def test_judge_json_without_a_checksum_is_refused(judge_copy):
    meta = json.loads((judge_copy / JUDGE_META).read_text())
    del meta["files"]
    (judge_copy / JUDGE_META).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=f"no sha256 for {JUDGE_FILE}"):
        load_judge(judge_copy, provider="cpu")


def test_the_judge_runs_without_torch(tmp_path, judge_copy):
    site = blocker_site(tmp_path)
    code = ("import numpy as np; from vaegen.evaluation.judges import load_judge; "
            f"j = load_judge({str(judge_copy)!r}, provider='cpu'); print(j.predict(np.zeros((2, 1, 28, 28)))[1].shape)")
    result = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": f"{site}:{ROOT}", "PATH": ""},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 128)"


# ---------------------------------------------------------------- training (torch)


@pytest.mark.torch
def test_tiny_judge_training_exports_with_parity(tmp_path):
    torch = pytest.importorskip("torch")
    from vaegen.training.judge import export_judge, fit_judge

    torch.set_num_threads(1)
    images, labels = draw_digits(48, seed=7)
    model = fit_judge(images[:, None], labels, epochs=1, batch_size=16, seed=0)
    again = fit_judge(images[:, None], labels, epochs=1, batch_size=16, seed=0)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs between two runs with one seed"
    held_out = {"test_images": images[:16, None], "test_labels": labels[:16], "reference_images": images[16:32, None],
                "reference": {"start": 16}}
    out = export_judge(model, tmp_path / "judge", dataset="mnist", classes=[str(d) for d in range(4)],
                       held_out=held_out, training={"command": "test"})
    meta = json.loads((out / JUDGE_META).read_text())
    assert max(meta["parity_max_abs_diff"].values()) < 1e-4
    assert set(meta["metrics"]) == {"test_accuracy", "test_accuracy_binarized", "test_accuracy_blurred"}
    assert meta["reference"] == {"split": "train", "start": 16, "step": 1, "count": 16} and meta["floor"]["count"] == 16
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", JUDGE_FILE, JUDGE_META])  # no temporary file
    judge = load_judge(out, provider="cpu", threads=1)
    probs, features = judge.predict(images[:4, None])
    model.eval()
    with torch.inference_mode():
        logits, torch_features = model(torch.from_numpy(images[:4, None].astype(np.float32) / 255))
    np.testing.assert_allclose(probs, torch.softmax(logits.double(), 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(features, torch_features.numpy(), atol=1e-4)


@pytest.mark.torch
def test_a_judge_graph_that_disagrees_with_torch_is_not_kept(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from vaegen.errors import ExportError
    from vaegen.training import judge as judge_module

    real_export = judge_module.export_graph

    def corrupting(module, example, path, input_name, outputs):
        real_export(module, example, path, input_name, outputs)
        graph = onnx.load(str(path))
        bias = next(i for i in graph.graph.initializer if len(i.dims) == 1)
        bias.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(bias) + 0.5, bias.name))
        onnx.save(graph, str(path))

    monkeypatch.setattr(judge_module, "export_graph", corrupting)
    torch.manual_seed(0)
    images, labels = draw_digits(8, seed=8)
    held_out = {"test_images": images[:, None], "test_labels": labels, "reference_images": images[:, None],
                "reference": {"start": 0}}
    with pytest.raises(ExportError, match="Parity check failed: the judge's (logits|features) differ from torch"):
        judge_module.export_judge(judge_module.JudgeNet(), tmp_path / "judge", dataset="mnist",
                                  classes=[str(d) for d in range(10)], held_out=held_out)
    assert list((tmp_path / "judge").iterdir()) == []  # no judge.onnx, no temporary file


# ---------------------------------------------------------------- a labelled folder's judge


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory) -> Path:
    from tests.support import write_colour_folder

    return write_colour_folder(tmp_path_factory.mktemp("shapes") / "shapes", 120, size=32)


@pytest.fixture(scope="module")
def colour_judge(colour_folder, tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    import torch

    from vaegen.training.judge import train_judge

    torch.set_num_threads(1)
    return train_judge(colour_folder, tmp_path_factory.mktemp("j") / "judge", image_size=32, channels=3, epochs=4,
                       batch_size=16)


@pytest.mark.torch
def test_a_folder_judge_learns_the_folders_classes_from_its_training_split(colour_folder, colour_judge):
    from vaegen.data.load import dataset_fingerprint

    judge = load_judge(colour_judge, provider="cpu", threads=1)
    meta = judge.meta
    assert judge.image_shape == (3, 32, 32) and judge.classes == ["bar", "disc", "square"]
    assert meta["dataset"] == "shapes" and meta["dataset_fingerprint"] == dataset_fingerprint(str(colour_folder))
    # 120 images: 12 held out (the floor), 108 to train; every 4th of those (27) is the reference, the judge saw 81
    assert meta["reference"] == {"split": "train", "start": 3, "step": 4, "count": 27}
    assert meta["training"]["train_images"] == 81 and meta["floor"]["count"] == 12
    assert meta["floor"]["reference"] == "shapes train [3::4] (27)"
    assert meta["metrics"]["test_accuracy"] >= 0.9  # three shapes in three colours: easy
    assert not any(str(colour_folder) in str(v) for v in meta["training"].values())  # no machine paths
    assert "[N, 3, 32, 32]" in (colour_judge / "README.md").read_text()


@pytest.mark.torch
def test_a_judge_is_refused_for_a_folder_without_classes(tmp_path):
    from PIL import Image

    from vaegen.training.judge import train_judge

    (tmp_path / "flat").mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(tmp_path / "flat" / f"{i}.png")
    with pytest.raises(BundleError, match="its images are in no class subfolders.*nothing to train it on"):
        train_judge(tmp_path / "flat", tmp_path / "judge", image_size=8, channels=3)
    assert not (tmp_path / "judge").exists()


def test_evaluate_names_why_an_unlabelled_folder_has_no_judge(tmp_path, monkeypatch):
    from PIL import Image

    from vaegen.evaluation.judges import judge_dir

    monkeypatch.delenv("VAEGEN_JUDGE", raising=False)
    (tmp_path / "flat" / "only").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "only" / "a.png")
    with pytest.raises(BundleError, match="it has one class subfolder"):
        judge_dir(None, str(tmp_path / "flat"))
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "b.png")
    (tmp_path / "flat" / "other").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "other" / "c.png")
    with pytest.raises(BundleError, match="1 of its images sit outside any class subfolder"):
        judge_dir(None, str(tmp_path / "flat"))


@pytest.mark.torch
def test_a_shipped_folder_judge_is_found_by_the_folders_content(colour_folder, colour_judge, tmp_path, monkeypatch):
    from vaegen.evaluation import judges as judges_module

    monkeypatch.delenv("VAEGEN_JUDGE", raising=False)
    shipped = tmp_path / "weights" / "judges"
    shutil.copytree(colour_judge, shipped / "shapes")
    monkeypatch.setattr(judges_module, "shipped_models", lambda kind, marker: ["shapes"])
    monkeypatch.setattr(judges_module, "shipped_model_dir", lambda name, marker: tmp_path / "weights" / name)
    copy = tmp_path / "elsewhere" / "my-shapes"
    shutil.copytree(colour_folder, copy)
    assert judges_module.judge_dir(None, str(copy)) == shipped / "shapes"  # same content, another place and name
    (copy / "disc" / "extra.png").write_bytes((copy / "disc" / "0000.png").read_bytes())
    with pytest.raises(BundleError, match="No judge for .*my-shapes: train one .*`vaegen judge --dataset"):
        judges_module.judge_dir(None, str(copy))


@pytest.mark.torch
def test_evaluate_samples_on_a_colour_folder_model_with_its_judge(colour_folder, colour_judge, tmp_path, clean_env):
    import vaegen

    model = vaegen.train(str(colour_folder), tmp_path / "run", epochs=1, image_size=32, channels=3, arch="mlp", hidden=32,
                         latent_dim=4, batch_size=32, threads=1, progress=False)
    result = subprocess.run([sys.executable, "-m", "vaegen", "evaluate", "--model", str(model.bundle.path),
                             "--dataset", str(colour_folder), "--samples", "12", "--judge", str(colour_judge),
                             "--json"], capture_output=True, text=True, env=clean_env)
    assert result.returncode == 0, result.stderr
    quality = json.loads(result.stdout)["quality"]
    assert quality["real held-out"]["count"] == 12 and quality["real held-out"]["label_agreement"] >= 0.9
    assert quality["reconstructions"]["frechet_distance"] > quality["real held-out"]["frechet_distance"]
    assert "fitted prior, per class" in quality  # the model's classes are the judge's


@pytest.mark.torch
def test_the_judge_command_trains_a_folders_judge_or_says_why_not(colour_folder, tmp_path, clean_env):
    from PIL import Image

    out = tmp_path / "judge"
    run = lambda *args: subprocess.run([sys.executable, "-m", "vaegen", "judge", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True, env=clean_env)
    result = run("--dataset", colour_folder, "--image-size", 16, "--channels", 3, "--epochs", 1, "--threads", 1,
                 "--out", out, "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["classes"] == ["bar", "disc", "square"] and facts["out"] == str(out)
    assert json.loads((out / JUDGE_META).read_text())["input"]["shape"] == ["N", 3, 16, 16]
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.png")
    result = run("--dataset", tmp_path / "flat", "--out", tmp_path / "never")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "no class subfolders" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "never").exists()


EMOJI = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "emoji"


@pytest.mark.slow
@pytest.mark.skipif(not EMOJI.is_dir(), reason="the real colour folder is ../shared/data/emoji (CI has it)")
def test_the_shipped_emoji_judge_is_found_by_the_folders_content_and_never_saw_its_figures(monkeypatch):
    from vaegen.evaluation.judges import judge_dir

    monkeypatch.delenv("VAEGEN_JUDGE", raising=False)
    folder = judge_dir(None, str(EMOJI))
    assert folder.name == "emoji"
    judge = load_judge(folder, provider="cpu", threads=1)
    meta = judge.meta
    assert judge.image_shape == (3, 64, 64) and len(judge.classes) == 9 and "people-body" in judge.classes
    # 7,562 images: 757 held out (the floor), 6,805 in training; every 4th of those (1,701) the reference
    assert meta["reference"] == {"split": "train", "start": 3, "step": 4, "count": 1701}
    assert meta["training"]["train_images"] == 6805 - 1701 and meta["floor"]["count"] == 757
    assert meta["metrics"]["test_accuracy"] > 0.7  # well above the largest class's share (0.60)
    assert not any(word.startswith("/") for word in meta["training"]["command"].split())
