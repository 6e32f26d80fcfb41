"""Real image folders in training (vaegen.data.folders through `vaegen train`
and vaegen.train): every bad file named before anything is written, --skip-bad
and the card's count, the formats people keep, a second run that decodes
nothing, the held-out split read from the memory map, --flip, and the
background the bundle records. Needs torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import write_digit_folder
from vaegen.cli import cli

torch = pytest.importorskip("torch")

SMALL = ["--arch", "mlp", "--latent-dim", "2", "--hidden", "16", "--epochs", "1", "--batch-size", "16",
         "--no-fit-prior", "--quiet", "--threads", "1"]


def broken_folder(root):
    """60 digit PNGs, a truncated JPEG and a text file named .png."""
    folder = write_digit_folder(root / "digits", 60, seed=2)
    good = folder / "0" / "cut.jpg"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:200])
    (folder / "1" / "notes.png").write_text("not an image at all")
    return folder


def test_a_folder_with_bad_files_stops_before_any_checkpoint_naming_every_one(tmp_path):
    folder = broken_folder(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--dataset", str(folder), "--out", str(out), *SMALL])
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("Error: ") and len(message.splitlines()) == 1
    assert "holds 2 files that cannot be read" in message and "cut.jpg" in message and "notes.png" in message
    assert "--skip-bad" in message
    assert not (out / "checkpoint.pt").exists()


def test_skip_bad_trains_on_the_rest_names_them_and_the_card_counts_them(tmp_path):
    folder = broken_folder(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--dataset", str(folder), "--out", str(out), "--skip-bad",
                                      *[a for a in SMALL if a != "--quiet"]])
    assert result.exit_code == 0, result.output
    assert "Skipped 2 files that cannot be read as images: 0/cut.jpg, 1/notes.png." in result.stderr
    meta = json.loads((out / "model" / "vaegen.json").read_text())
    assert meta["training"]["skipped_files"] == 2
    assert "- skipped_files: 2" in (out / "model" / "README.md").read_text()


def test_webp_bmp_and_tiff_are_trained_on(tmp_path):
    import vaegen
    from vaegen.data.load import load_dataset

    folder = tmp_path / "mixed"
    rng = np.random.default_rng(0)
    for i in range(48):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(sub / f"{i}.{('webp', 'bmp', 'tif')[i % 3]}")
    assert len(load_dataset(str(folder), "all", channels=3, size=(8, 8))) == 48
    model = vaegen.train(folder, tmp_path / "run", image_size=8, channels=3, arch="mlp", latent_dim=2, hidden=8,
                         epochs=1, batch_size=8, fit_prior=False, threads=1)
    assert model.image_shape == (3, 8, 8) and model.sample(4, seed=0).shape == (4, 3, 8, 8)


def test_a_second_run_on_the_same_folder_decodes_nothing(tmp_path, monkeypatch):
    from vaegen.data import cache

    folder = write_digit_folder(tmp_path / "digits", 40)
    first = CliRunner().invoke(cli, ["train", "--dataset", str(folder), "--out", str(tmp_path / "a"), *SMALL])
    assert first.exit_code == 0, first.output

    def no_decoding(*args, **kwargs):
        raise AssertionError("the folder was decoded again")

    monkeypatch.setattr(cache, "_decode_into", no_decoding)
    again = CliRunner().invoke(cli, ["train", "--dataset", str(folder), "--out", str(tmp_path / "b"), *SMALL])
    assert again.exit_code == 0, again.output
    scored = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path / "a"), "--k", "2", "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["images"] == 4  # the held-out tenth, read from the cache


def test_training_reads_the_folder_memory_mapped_and_split_by_index(tmp_path):
    from vaegen.data.load import split_for_training
    from vaegen.data.sets import Rows

    folder = write_digit_folder(tmp_path / "digits", 40)
    train, held = split_for_training(str(folder))
    assert isinstance(train.images, Rows) and isinstance(train.images.base, np.memmap)
    assert len(train) == 36 and len(held) == 4
    np.testing.assert_array_equal(held.images[1], train.images.base[10])  # the 11th image in sorted order
    np.testing.assert_array_equal(np.asarray(train.images)[0], train.images.base[1])


def test_flip_mirrors_about_half_of_a_batch(tmp_path):
    from vaegen.training.loop import gather_batch

    images = np.arange(2 * 1 * 2 * 3, dtype=np.uint8).reshape(2, 1, 2, 3).repeat(50, axis=0)
    gen = torch.Generator().manual_seed(0)
    batch = gather_batch(images, torch.arange(100), True, gen)
    mirrored = [bool((batch[i].numpy() == images[i][..., ::-1]).all()) for i in range(100)]
    assert 30 < sum(mirrored) < 70
    assert (gather_batch(images, torch.arange(100), False, gen).numpy() == images).all()


def test_the_bundle_records_its_background_and_prepares_user_images_on_it(tmp_path):
    import vaegen

    folder = tmp_path / "icons"
    for i in range(24):
        (folder / "x").mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", (10, 10), (255, 0, 0, 255 if i % 2 else 0)).save(folder / "x" / f"{i}.png")
    model = vaegen.train(folder, tmp_path / "run", image_size=8, channels=3, arch="mlp", latent_dim=2, hidden=8,
                         epochs=1, batch_size=8, fit_prior=False, threads=1, background=0)
    assert model.bundle.meta["background"] == 0
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (10, 10), (255, 255, 255, 0)).save(clear)
    assert model.read_images([clear]).max() == 0.0  # transparent onto black, as in training


EMOJI = __import__("pathlib").Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "emoji"


@pytest.mark.slow
@pytest.mark.skipif(not EMOJI.is_dir(), reason="the real colour folder is ../shared/data/emoji (CI has it)")
def test_the_real_emoji_folder_decodes_once_trains_and_is_scored_on_its_held_out_tenth(tmp_path, monkeypatch):
    """7,562 RGBA PNGs in 9 category folders: decoded by every core into the cache, trained one epoch from
    the memory map, then evaluated on every 10th image, read from the cache without decoding."""
    from vaegen.data import cache

    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "--dataset", str(EMOJI), "--image-size", "32", "--channels", "3", "--out", str(out), *SMALL]
    trained = CliRunner().invoke(cli, args)
    assert trained.exit_code == 0, trained.output
    meta = json.loads((out / "model" / "vaegen.json").read_text())
    assert meta["image_shape"] == [3, 32, 32] and meta["background"] == 128 and meta["dataset"].endswith("emoji")

    def no_decoding(*args, **kwargs):
        raise AssertionError("the folder was decoded again")

    monkeypatch.setattr(cache, "_decode_into", no_decoding)
    scored = CliRunner().invoke(cli, ["evaluate", "--model", str(out), "--k", "2", "--json", "--quiet"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["images"] == 757  # every 10th of 7,562, from the first


@pytest.mark.parametrize("command", [["evaluate", "--k", "2", "--json"], ["map", "-o", "m.png"],
                                     ["fit-prior", "--components", "2", "--class-components", "1"]])
def test_evaluate_map_and_fit_prior_name_a_folders_bad_files_and_go_on_with_skip_bad(command, tiny_bundle, tmp_path,
                                                                                      monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    model = shutil.copytree(tiny_bundle, tmp_path / "model")
    folder = write_digit_folder(tmp_path / "other", 40, seed=5)
    (folder / "0" / "broken.png").write_text("no image here")
    head, rest = command[0], command[1:]
    where = [str(model)] if head == "fit-prior" else ["--model", str(model)]
    stopped = CliRunner().invoke(cli, [head, *where, "--dataset", str(folder), *rest, "--quiet"])
    assert stopped.exit_code == 1 and "holds 1 file that cannot be read" in stopped.stderr
    assert "broken.png" in stopped.stderr and "--skip-bad" in stopped.stderr
    went_on = CliRunner().invoke(cli, [head, *where, "--dataset", str(folder), *rest, "--quiet", "--skip-bad"])
    assert went_on.exit_code == 0, went_on.output
