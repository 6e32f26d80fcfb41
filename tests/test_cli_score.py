"""`vaegen score` (vaegen/cli/score.py): the table, --json and --csv, --sort,
--reverse and --top, folders read whole, bad files named with nothing
printed unless --skip-bad, a bundle without a calibration, and the same mean
bits/dim as `vaegen evaluate`. Runs the tiny bundles (made with torch)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import assert_one_line_error, draw_digits
from vaegen.choices import SCORES


@pytest.fixture
def folder(tmp_path) -> Path:
    """Eight drawn digits in a folder (one in a subfolder) and a text file that is not an image."""
    root = tmp_path / "digits"
    (root / "more").mkdir(parents=True)
    for i, image in enumerate(draw_digits(8, seed=7)[0]):
        Image.fromarray(image).save(root / ("more" if i == 7 else "") / f"d{i}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def scored(vaegen, *args) -> list[dict]:
    result = vaegen("score", *args, "--k", 4, "--json", "-q")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_is_a_list_with_a_record_per_image(vaegen, folder):
    records = scored(vaegen, folder)
    assert [Path(r["path"]).name for r in records] == [f"d{i}.png" for i in range(7)] + ["d7.png"]
    assert Path(records[-1]["path"]).parent.name == "more"
    for r in records:
        assert set(r) == {"path", "bits_per_dim", "score", "ood_score", "percentile", "flagged"}
        assert r["score"] == "complexity+latent" and r["bits_per_dim"] > 0
        # The tiny bundle has no calibration: no percentile, no flag, and no value of the default
        # score, which fuses its parts through the calibration; a score that needs none has one.
        assert r["ood_score"] is None and r["percentile"] is None and r["flagged"] is None
    plain = scored(vaegen, folder, "--score", "input-complexity")
    assert all(np.isfinite(r["ood_score"]) for r in plain)
    assert [r["bits_per_dim"] for r in plain] == [r["bits_per_dim"] for r in records]


def test_the_table_and_the_note_of_a_bundle_without_calibration(vaegen, folder, tiny_bundle):
    result = vaegen("score", folder, "--k", 4)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["bits/dim", "complexity+latent", "percentile", "flag", "path"]
    assert len(lines) == 9 and lines[1].split()[1:4] == ["-", "-", "-"] and lines[1].endswith("d0.png")
    # In one line, with the command that adds a calibration; said with --quiet too.
    note = f"{tiny_bundle} has no calibration, so no percentiles or flags: add one with `vaegen fit-prior {tiny_bundle}`."
    assert note in result.stderr.splitlines()
    assert vaegen("score", folder, "--k", 4, "-q").stderr.strip() == note


def test_csv_has_a_header_and_a_row_per_image(vaegen, folder):
    result = vaegen("score", folder, "--k", 4, "--csv", "-q")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 8 and list(rows[0]) == ["path", "bits_per_dim", "score", "ood_score", "percentile", "flagged"]
    assert rows[0]["percentile"] == "" and float(rows[0]["bits_per_dim"]) > 0
    assert_one_line_error(vaegen("score", folder, "--csv", "--json"), 2, "--json and --csv")


def test_sort_reverse_and_top(vaegen, folder, prior_bundle):
    model = ("--model", prior_bundle)
    records = scored(vaegen, folder, *model)
    top = scored(vaegen, folder, *model, "--sort", "ood_score", "--top", 3)
    assert [r["ood_score"] for r in top] == sorted((r["ood_score"] for r in records), reverse=True)[:3]
    typical = scored(vaegen, folder, *model, "--sort", "ood_score", "--reverse", "--top", 2)
    assert [r["ood_score"] for r in typical] == sorted(r["ood_score"] for r in records)[:2]
    by_percentile = scored(vaegen, folder, *model, "--sort", "percentile")
    assert [r["percentile"] for r in by_percentile] == sorted((r["percentile"] for r in records), reverse=True)
    by_bits = scored(vaegen, folder, *model, "--sort", "bits_per_dim")
    assert [r["bits_per_dim"] for r in by_bits] == sorted((r["bits_per_dim"] for r in records), reverse=True)
    by_path = scored(vaegen, folder, *model, "--sort", "path", "--reverse")
    assert [r["path"] for r in by_path] == sorted((r["path"] for r in records), reverse=True)
    unknown = scored(vaegen, folder, "--sort", "ood_score", "--top", 2)  # no calibration: nothing to order by
    assert [r["path"] for r in unknown] == [r["path"] for r in scored(vaegen, folder)][:2]


def test_bad_files_are_all_named_and_nothing_is_printed(vaegen, folder, tmp_path):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    missing = tmp_path / "missing.png"
    result = vaegen("score", folder, missing, "--k", 4)
    assert_one_line_error(result, 1, "broken.png", "missing.png", "2 of 10 images cannot be used",
                          "--skip-bad writes the other 8")
    assert result.stdout == ""
    skipped = vaegen("score", folder, missing, "--k", 4, "--skip-bad", "--json")
    assert skipped.exit_code == 0, skipped.output
    assert len(json.loads(skipped.stdout)) == 8
    assert sum(line.startswith("Skipped: ") for line in skipped.stderr.splitlines()) == 2


def test_a_folder_without_images_is_refused(vaegen, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(vaegen("score", tmp_path / "empty"), 1, "holds no image")


def test_a_calibrated_bundle_gives_percentiles_and_flags(vaegen, folder, prior_bundle):
    records = scored(vaegen, folder, "--model", prior_bundle, "--flag-above", 0)
    assert all(0 <= r["percentile"] <= 100 for r in records)
    assert [r["flagged"] for r in records] == [r["percentile"] > 0 for r in records]
    for name in SCORES:  # every registered score is calibrated, and can be chosen
        chosen = scored(vaegen, folder, "--model", prior_bundle, "--score", name, "--top", 1)
        assert chosen[0]["score"] == name and chosen[0]["percentile"] is not None
    result = vaegen("score", folder, "--model", prior_bundle, "--k", 4)
    assert result.exit_code == 0, result.output
    assert "held-out" in result.stderr and "--k 4 is not the calibration's k=10" in result.stderr


def test_mean_bits_per_dim_is_evaluates(vaegen, folder):
    """The done-when of issue 28: over the same images, at the same k and seed."""
    for path in folder.rglob("*.txt"):
        path.unlink()
    records = scored(vaegen, folder, "--seed", 5)
    result = vaegen("evaluate", "--dataset", folder, "--k", 4, "--seed", 5, "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == len(records)
    assert np.mean([r["bits_per_dim"] for r in records]) == pytest.approx(report["nll_bits_per_dim"], rel=1e-12)


def test_help_teaches_with_examples(vaegen):
    result = vaegen("score", "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "vaegen score photos/ --sort ood_score --top 10" in result.stdout
    text = " ".join(result.stdout.split()).replace("- ", "-")  # click wraps at a hyphen
    assert "[default: complexity+latent]" in text and "[default: 99.0" in text


def test_a_calibration_made_with_another_compressor_says_so(vaegen, folder, prior_bundle, tmp_path):
    copy = Path(shutil.copytree(prior_bundle, tmp_path / "model"))
    meta = json.loads((copy / "vaegen.json").read_text())  # not checksummed: only the files it lists are
    meta["calibration"]["compressor"] = "webp (libwebp 0.1.0)"
    (copy / "vaegen.json").write_text(json.dumps(meta))
    result = vaegen("score", folder, "--model", copy)
    assert result.exit_code == 0, result.output
    assert "the calibration's compressor was webp (libwebp 0.1.0), this one is context (numpy)" in result.stderr
