"""Bad input, odd but valid input, and safety, across every command.

The bad-input table runs each case through click's CliRunner (and a handful
through a real `python -m vaegen` process, where ONNX Runtime's own logging
would show). Every case must fail cleanly: exit code 2 for misuse and 1 for a
runtime failure; stderr exactly one line, `Error: ...`, naming the problem; no
traceback; stdout empty; no file or folder left behind; and, where the
command has an output, a file already at that output left byte for byte as it
was. Odd but valid input (16-bit, CMYK, palette, alpha, EXIF-rotated, huge,
tiny images; -n 1; more than one batch) must work. The safety tests check
that nothing is unpickled, that image decoding is bounded, and that files
land only where the user named them.

Everything runs in tmp_path as the working directory. Cases that need a model
use the session's tiny_bundle (made with torch); a case damages a copy, never
the fixture. tests/test_cli_<module>.py hold the per-command behaviour; this
file is the cross-cutting sweep. The odd image makers are shared, in tests/support.py.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import (
    ODD_IMAGES,
    digit_array,
    draw_digits,
    encode_idx,
    fake_mnist,
    no_gpu,
    odd_16_bit,
    odd_cmyk_jpeg,
    odd_gray_alpha,
    odd_interlaced_png,
    odd_one_bit,
    odd_palette,
    odd_rgba,
    odd_tiny,
    odd_unicode_name,
    write_idx_folder,
)
from vaegen.bundle.read import DECODER_FILE, ENCODER_FILE, META_FILE, load_bundle, sha256_file
from vaegen.cli import cli
from vaegen.data import named as data_module
from vaegen.errors import ImageError, LatentError
from vaegen.images import MAX_PIXELS, load_image, prepare_image
from vaegen.latent.codes import load_latents
from vaegen.runtime import DEFAULT_BATCH

LIGHT = {"sample", "reconstruct", "interpolate", "encode", "decode", "traverse", "info", "evaluate"}
PRECIOUS = b"precious bytes, not to be touched"

root = pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder; 'blocker' cases cover it")


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory, tiny_bundle) -> Path:
    """An export of another model with the tiny bundle's architecture (torch)."""
    torch = pytest.importorskip("torch")
    from vaegen.training.export import export_bundle
    from vaegen.training.model import VAE, ModelConfig

    meta = load_bundle(tiny_bundle).meta
    torch.manual_seed(777)
    model = VAE(ModelConfig.from_dict(meta["architecture"]))
    return export_bundle(model, tmp_path_factory.mktemp("other") / "model", dataset="digits",
                         preprocessing=meta["preprocessing"])


# ---------------------------------------------------------------- building bad input


@dataclass
class Workspace:
    """What a case's setup may use: the working folder and the fixtures."""

    cwd: Path
    request: pytest.FixtureRequest
    monkeypatch: pytest.MonkeyPatch

    @property
    def bundle(self) -> Path:
        return self.request.getfixturevalue("tiny_bundle")

    @property
    def checkpoint(self) -> Path:
        return self.bundle.parent / "checkpoint.pt"  # the tiny bundle's training run


def _digit_png(path: Path, seed: int = 1) -> Path:
    Image.fromarray(draw_digits(1, seed=seed)[0][0]).save(path)
    return path


@functools.cache
def _bomb_png() -> bytes:
    """8000x6000 1-bit pixels (48 M, over MAX_PIXELS) in about 6 kB."""
    buf = io.BytesIO()
    Image.new("1", (8000, 6000)).save(buf, format="PNG")
    assert 8000 * 6000 > MAX_PIXELS
    return buf.getvalue()


def digits(ws: Workspace) -> None:
    _digit_png(ws.cwd / "digit.png", seed=1)
    _digit_png(ws.cwd / "digit2.png", seed=2)


def text_png(ws: Workspace) -> None:
    digits(ws)
    (ws.cwd / "text.png").write_text("this is not an image\n")


def empty_png(ws: Workspace) -> None:
    (ws.cwd / "empty.png").write_bytes(b"")


def truncated_png(ws: Workspace) -> None:
    data = _digit_png(ws.cwd / "digit.png").read_bytes()
    (ws.cwd / "cut.png").write_bytes(data[: len(data) // 2])


def bomb_png(ws: Workspace) -> None:
    (ws.cwd / "bomb.png").write_bytes(_bomb_png())


def lab_tiff(ws: Workspace) -> None:
    Image.new("LAB", (20, 20), (50, 0, 0)).save(ws.cwd / "lab.tif")


def folder_png(ws: Workspace) -> None:
    digits(ws)
    (ws.cwd / "pics.png").mkdir()


def blocker(ws: Workspace) -> None:
    """A regular file where a folder is wanted."""
    digits(ws)
    (ws.cwd / "blocker").write_text("a file, not a folder")


def read_only(ws: Workspace) -> None:
    (ws.cwd / "ro").mkdir()
    (ws.cwd / "ro").chmod(0o500)


def _bundle_copy(ws: Workspace) -> Path:
    digits(ws)
    return Path(shutil.copytree(ws.bundle, ws.cwd / "model"))


def _edit_meta(folder: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    change(meta)
    (folder / META_FILE).write_text(json.dumps(meta))


def _fix_checksum(folder: Path, name: str) -> None:
    """Make vaegen.json agree with a replaced graph, so only a deeper check can tell."""
    file = folder / name
    _edit_meta(folder, lambda m: m["files"].update({name: {"sha256": sha256_file(file), "bytes": file.stat().st_size}}))


def bundle_without_decoder(ws: Workspace) -> None:
    (_bundle_copy(ws) / DECODER_FILE).unlink()


def bundle_truncated(ws: Workspace) -> None:
    decoder = _bundle_copy(ws) / DECODER_FILE
    decoder.write_bytes(decoder.read_bytes()[:5000])


def bundle_truncated_checksum_fixed(ws: Workspace) -> None:
    folder = _bundle_copy(ws)
    for name in (ENCODER_FILE, DECODER_FILE):
        (folder / name).write_bytes((folder / name).read_bytes()[:5000])
        _fix_checksum(folder, name)


def bundle_tampered(ws: Workspace) -> None:
    decoder = _bundle_copy(ws) / DECODER_FILE
    data = bytearray(decoder.read_bytes())
    data[len(data) // 2] ^= 0x40  # the same size: only the sha256 tells
    decoder.write_bytes(bytes(data))


def bundle_mixed(ws: Workspace) -> None:
    folder = _bundle_copy(ws)
    shutil.copyfile(ws.request.getfixturevalue("other_bundle") / ENCODER_FILE, folder / ENCODER_FILE)
    _fix_checksum(folder, ENCODER_FILE)


def bundle_bad_json(ws: Workspace) -> None:
    meta = _bundle_copy(ws) / META_FILE
    meta.write_text(meta.read_text()[:40])


def bundle_newer(ws: Workspace) -> None:
    _edit_meta(_bundle_copy(ws), lambda m: m.update(format=99))


def bundle_no_shape(ws: Workspace) -> None:
    _edit_meta(_bundle_copy(ws), lambda m: m.pop("image_shape"))


def latents(name: str, array: np.ndarray, **save) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        np.save(ws.cwd / name, array, **save)

    setup.__name__ = f"latents_{name}"
    return setup


def truncated_npy(ws: Workspace) -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 4), np.float32))
    (ws.cwd / "cut.npy").write_bytes(buf.getvalue()[:100])


def bad_json(ws: Workspace) -> None:
    (ws.cwd / "z.json").write_text("[[0, 0, 0, 0], [1, 2")


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled_npy(ws: Workspace) -> None:
    array = np.empty(1, dtype=object)
    array[0] = Payload(ws.cwd.parent / f"{ws.cwd.name}-pwned")
    np.save(ws.cwd / "evil.npy", array, allow_pickle=True)


def empty_dataset(ws: Workspace) -> None:
    (ws.cwd / "nothing-here").mkdir()
    (ws.cwd / "nothing-here" / "notes.txt").write_text("no images")


def one_image_dataset(ws: Workspace) -> None:
    (ws.cwd / "one").mkdir()
    _digit_png(ws.cwd / "one" / "a.png")


def mnist(corrupt: Callable[[bytes], bytes] | None = None, *, fix_digest: bool = True, gz: bool = True,
          remove: bool = False) -> Callable[[Workspace], None]:
    """Tiny MNIST-layout files in ./mnist, registered as 'mnist'; the test
    images file corrupted by `corrupt`, its registered sha256 fixed so the
    structure check is what catches it (or not, to check the content itself)."""

    def setup(ws: Workspace) -> None:
        folder = ws.cwd / "mnist"
        digests = write_idx_folder(folder, n_train=64, n_test=16, gz=gz)
        name = "t10k-images-idx3-ubyte"
        target = folder / (f"{name}.gz" if gz else name)
        if remove:
            target.unlink()
        elif corrupt is not None:
            raw = gzip.decompress(target.read_bytes()) if gz else target.read_bytes()
            bad = corrupt(raw)
            target.write_bytes(gzip.compress(bad, mtime=0) if gz else bad)
            if fix_digest:
                digests[name] = hashlib.sha256(bad).hexdigest()
        ws.monkeypatch.setitem(data_module.DATASETS, "mnist", fake_mnist(digests))  # mirrors=(): never downloads

    return setup


def gzip_cut_short(ws: Workspace) -> None:
    mnist()(ws)
    target = ws.cwd / "mnist" / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:200])


def existing_run(ws: Workspace) -> None:
    one_image_dataset(ws)
    (ws.cwd / "run").mkdir()
    (ws.cwd / "run" / "checkpoint.pt").write_bytes(PRECIOUS)


def foreign_checkpoint(ws: Workspace) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"format": 99, "weights": torch.zeros(3)}, ws.cwd / "foreign.pt")


def payload_checkpoint(ws: Workspace) -> None:
    marker = ws.cwd.parent / f"{ws.cwd.name}-pwned"
    (ws.cwd / "evil.pt").write_bytes(pickle.dumps({"format": 1, "model": Payload(marker)}, protocol=2))


def text_checkpoint(ws: Workspace) -> None:
    (ws.cwd / "notes.pt").write_text("not a checkpoint")


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: int  # 2 misuse, 1 runtime failure
    phrase: str  # must appear in the one `Error: ...` line
    output: str | None = None  # what the command would write (file or folder), to pre-fill and protect
    setup: tuple[Callable[[Workspace], None], ...] = ()
    model: bool = True  # append --model <tiny bundle> (light commands); False: the case fails before any model
    torch: bool = False
    subprocess: bool = False  # also run in a real `python -m vaegen`
    marks: tuple = field(default=())


def case(id_: str, args: str, code: int, phrase: str, *setup, **kw) -> pytest.param:
    c = Case(tuple(args.split()), code, phrase, setup=setup, **kw)
    return pytest.param(c, id=id_, marks=c.marks)


TRAIN = "--arch mlp --hidden 8 --latent-dim 2 --epochs 1 --batch-size 8 --threads 1 --quiet"

CASES = [
    # sample: -n, outputs, providers, bundles
    case("sample -n 0", "sample -n 0", 2, "Invalid value for '-n' / '--num': 0 is not in the range x>=1",
         output="samples.png", model=False, subprocess=True),
    case("sample -n -1", "sample -n -1", 2, "-1 is not in the range x>=1", output="samples.png", model=False),
    case("sample -n abc", "sample -n abc", 2, "'abc' is not a valid integer", output="samples.png", model=False),
    case("sample -n 10**12", "sample -n 1000000000000", 2, "more than the limit", output="samples.png"),
    case("sample -o a folder", "sample -o taken.png", 2, "-o taken.png is a folder; give a file name",
         lambda ws: (ws.cwd / "taken.png").mkdir()),
    case("sample -o in a file's folder", "sample -o blocker/s.png", 1, "Output folder blocker is a file, not a folder",
         blocker),
    case("sample -o in a read-only folder", "sample -o ro/s.png", 1, "permission denied", read_only,
         marks=(root,)),
    case("sample -o in a missing folder", "sample -o nowhere/s.png", 1, "Output folder nowhere does not exist"),
    case("sample --out-dir a file", "sample --out-dir blocker", 2, "--out-dir blocker is a file, not a folder",
         blocker),
    case("sample --out-dir in a file's folder", "sample --out-dir blocker/d", 1, "blocker is a file, not a folder",
         blocker),
    case("sample --provider bogus", "sample --provider bogus", 2, "'bogus' is not one of 'auto', 'cuda', 'cpu'",
         output="samples.png", model=False),
    case("sample --provider cuda, no GPU", "sample --provider cuda", 1, "--provider cuda", output="samples.png",
         marks=(no_gpu,)),
    case("sample --threads 0", "sample --threads 0", 2, "Invalid value for '--threads'", output="samples.png",
         model=False),
    case("sample, bundle without decoder", "sample --model model", 1, "decoder.onnx is missing",
         bundle_without_decoder, output="samples.png"),
    case("sample, truncated decoder", "sample --model model", 1, "truncated or replaced", bundle_truncated,
         output="samples.png"),
    case("sample, truncated decoder, checksum fixed", "sample --model model", 1, "ONNX Runtime cannot load",
         bundle_truncated_checksum_fixed, output="samples.png", subprocess=True),
    case("sample, tampered decoder", "sample --model model", 1, "does not match its sha256", bundle_tampered,
         output="samples.png"),
    case("sample --model a file", "sample --model blocker", 1, "is not a folder", blocker, output="samples.png"),
    # reconstruct: every kind of broken image
    case("reconstruct a missing image", "reconstruct missing.png", 1, "Image missing.png does not exist",
         output="reconstructions.png"),
    case("reconstruct a folder", "reconstruct digit.png pics.png -o r.png", 1, "pics.png is a folder, not an image",
         folder_png, output="r.png"),
    case("reconstruct an empty file", "reconstruct empty.png -o r.png", 1, "empty.png is not an image Pillow can read",
         empty_png, output="r.png"),
    case("reconstruct text named .png", "reconstruct digit.png text.png -o r.png", 1,
         "text.png is not an image Pillow can read", text_png, output="r.png"),
    case("reconstruct a truncated PNG", "reconstruct cut.png -o r.png", 1, "cut.png is damaged or truncated",
         truncated_png, output="r.png"),
    case("reconstruct a decompression bomb", "reconstruct bomb.png -o r.png", 1, "decompression bomb", bomb_png,
         output="r.png", subprocess=True),
    case("reconstruct a CIELAB TIFF", "reconstruct lab.tif -o r.png", 1, "pixel mode LAB", lab_tiff, output="r.png"),
    case("reconstruct --out-dir, one image broken", "reconstruct digit.png text.png --out-dir recon", 1,
         "text.png is not an image", text_png, output="recon"),
    case("reconstruct, one good image and two broken", "reconstruct text.png digit.png empty.png -o r.png", 1,
         "2 of 3 images cannot be used", digits, text_png, empty_png, output="r.png"),
    case("reconstruct --skip-bad, nothing usable", "reconstruct text.png empty.png --skip-bad -o r.png", 1,
         "None of the 2 images can be used", text_png, empty_png, output="r.png"),
    case("sample -o an unknown format", "sample -o grid.bmp", 2,
         "-o grid.bmp: the file name must end in .png, .jpg, .jpeg, .webp or .gif", output="grid.bmp", model=False),
    case("reconstruct, mixed bundle", "reconstruct digit.png --model model -o r.png", 1,
         "encoder and decoder come from different exports", bundle_mixed, output="r.png", subprocess=True),
    # interpolate
    case("interpolate --steps 0", "interpolate digit.png digit2.png --steps 0", 2,
         "Invalid value for '--steps': 0 is not in the range x>=2", digits, output="interpolation.png", model=False),
    case("interpolate --steps 1", "interpolate digit.png digit2.png --steps 1", 2,
         "Invalid value for '--steps': 1 is not in the range x>=2", digits, output="interpolation.png", model=False),
    case("interpolate --steps 10**8", "interpolate digit.png digit2.png --steps 100000000", 2, "more than the limit",
         digits, output="interpolation.png"),
    case("interpolate -o with an unknown suffix", "interpolate digit.png digit2.png -o walk.bmp", 2,
         "-o walk.bmp: the file name must end in .png, .jpg, .jpeg, .webp or .gif", digits, output="walk.bmp",
         model=False),
    case("interpolate --gif -o a PNG", "interpolate digit.png digit2.png --gif -o walk.png", 2,
         "-o walk.png: the file name must end in .gif", digits, output="walk.png", model=False),
    case("interpolate --gif, a broken image", "interpolate digit.png text.png --gif", 1, "text.png is not an image",
         text_png, output="interpolation.gif"),
    case("interpolate -o in a file's folder", "interpolate digit.png digit2.png -o blocker/i.png", 1,
         "blocker is a file, not a folder", blocker),
    # encode
    case("encode -o with the wrong suffix", "encode digit.png -o pics.png", 2, "must end in .npy or .json",
         folder_png, model=False),
    case("encode -o a folder named .npy", "encode digit.png -o z.npy", 2, "-o z.npy is a folder", digits,
         lambda ws: (ws.cwd / "z.npy").mkdir()),
    case("encode, mixed bundle", "encode digit.png --model model -o z.npy", 1, "come from different exports",
         bundle_mixed, output="z.npy"),
    case("encode, truncated graphs, checksums fixed", "encode digit.png --model model -o z.json", 1,
         "ONNX Runtime cannot load", bundle_truncated_checksum_fixed, output="z.json"),
    # decode: latent files
    case("decode the wrong dimension", "decode z5.npy", 1, "holds latents of shape (2, 5); this model takes [N, 4]",
         latents("z5.npy", np.zeros((2, 5), np.float32)), output="decoded.png"),
    case("decode a pickled object array", "decode evil.npy", 1, "allow_pickle=False", pickled_npy,
         output="decoded.png", subprocess=True),
    case("decode complex numbers", "decode c.npy", 1, "holds complex64 values",
         latents("c.npy", np.zeros((1, 4), np.complex64)), output="decoded.png"),
    case("decode NaN", "decode nan.npy", 1, "not finite", latents("nan.npy", np.full((1, 4), np.nan, np.float32)),
         output="decoded.png"),
    case("decode a truncated .npy", "decode cut.npy", 1, "cut.npy is not a readable latent file", truncated_npy,
         output="decoded.png"),
    case("decode malformed JSON", "decode z.json", 1, "z.json is not a readable latent file", bad_json,
         output="decoded.png"),
    case("decode a folder", "decode pics.png", 1, "Latent file pics.png does not exist or is not a file", folder_png,
         output="decoded.png"),
    case("decode --out-dir, wrong dimension", "decode z5.npy --out-dir decoded", 1, "holds latents of shape (2, 5)",
         latents("z5.npy", np.zeros((2, 5), np.float32)), output="decoded"),
    # traverse
    case("traverse --dims out of range", "traverse --dims 0,9", 2, "dimensions must lie in 0..3",
         output="traversal.png"),
    case("traverse --image a bomb", "traverse --image bomb.png", 1, "decompression bomb", bomb_png,
         output="traversal.png"),
    case("traverse --steps 10**8", "traverse --steps 100000000", 2, "more than the limit", output="traversal.png"),
    # info: bundles
    case("info, malformed vaegen.json", "info --model model", 1, "vaegen.json is malformed JSON", bundle_bad_json,
         subprocess=True),
    case("info, newer bundle format", "info --model model", 1, "bundle format 99, newer than this vaegen reads",
         bundle_newer),
    case("info, vaegen.json without image_shape", "info --model model", 1, "'image_shape' is missing",
         bundle_no_shape),
    case("info, mixed bundle", "info --model model", 1, "come from different exports", bundle_mixed),
    case("info, missing bundle", "info --model nowhere", 1, "Model bundle nowhere does not exist"),
    # evaluate: datasets
    case("evaluate a folder without images", "evaluate --dataset nothing-here --k 2", 1,
         "holds no image (PNG, JPEG, WebP, BMP, TIFF or GIF)", empty_dataset, subprocess=True),
    case("evaluate --data-dir a file", "evaluate --data-dir blocker", 2, "is a file", blocker, model=False),
    case("evaluate --k 0", "evaluate --k 0", 2, "Invalid value for '--k'", model=False),
    case("evaluate, IDX with the wrong magic", "evaluate --dataset mnist --data-dir mnist --k 2", 1,
         "is not an IDX file of 3-D unsigned bytes", mnist(lambda raw: b"\x00\x00\x09\x03" + raw[4:])),
    case("evaluate, IDX too short", "evaluate --dataset mnist --data-dir mnist --k 2", 1, "too short to be an IDX file",
         mnist(lambda raw: raw[:10])),
    case("evaluate, IDX body cut", "evaluate --dataset mnist --data-dir mnist --k 2", 1, "truncated or corrupt",
         mnist(lambda raw: raw[:-100])),
    case("evaluate, IDX of other content", "evaluate --dataset mnist --data-dir mnist --k 2", 1,
         "does not match the published one", mnist(lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), fix_digest=False)),
    case("evaluate, raw IDX of other content", "evaluate --dataset mnist --data-dir mnist --k 2", 1,
         "does not match the published one",
         mnist(lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), fix_digest=False, gz=False)),
    case("evaluate, gzip cut short", "evaluate --dataset mnist --data-dir mnist --k 2", 1, "not a valid gzip file",
         gzip_cut_short),
    case("evaluate, IDX missing, no mirror", "evaluate --dataset mnist --data-dir mnist --k 2", 1,
         "mnist is not on this machine: t10k-images-idx3-ubyte[.gz] not found in mnist",
         mnist(remove=True)),
    # train
    case("train --epochs 0", f"train --dataset nothing-here {TRAIN} --epochs 0 --out run", 2,
         "Invalid value for '--epochs'", empty_dataset, output="run", model=False),
    case("train a folder without images", f"train --dataset nothing-here {TRAIN} --out run", 1,
         "holds no image (PNG, JPEG, WebP, BMP, TIFF or GIF)", empty_dataset, output="run", torch=True),
    case("train a folder of one image", f"train --dataset one {TRAIN} --out run", 1, "training needs at least 2",
         one_image_dataset, output="run", torch=True),
    case("train on IDX with the wrong magic", f"train --data-dir mnist {TRAIN} --out run", 1, "is not an IDX file",
         mnist(lambda raw: b"\x00\x00\x08\x01" + raw[4:]), output="run", torch=True),
    case("train --resume without a run", "train --resume --epochs 2 --out run", 1, "No checkpoint at",
         output="run", torch=True),
    case("train into an existing run", f"train --dataset one {TRAIN} --out run", 1, "already holds a run",
         existing_run, torch=True),
    case("train --out in a file's folder", f"train --dataset one {TRAIN} --out blocker/run", 1,
         "blocker is a file, not a folder", blocker, one_image_dataset, torch=True),
    # export
    case("export a missing checkpoint", "export missing.pt -o B", 2, "'missing.pt' does not exist", output="B",
         model=False),
    case("export a folder", "export pics.png -o B", 2, "'pics.png' is a directory", folder_png, output="B",
         model=False),
    case("export a text file", "export notes.pt -o B", 1, "notes.pt is not a readable vaegen checkpoint",
         text_checkpoint, output="B", torch=True),
    case("export a foreign checkpoint", "export foreign.pt -o B", 1, "foreign.pt is not a vaegen checkpoint",
         foreign_checkpoint, output="B", torch=True),
    case("export a pickle with a payload", "export evil.pt -o B", 1, "refusing to unpickle", payload_checkpoint,
         output="B", torch=True),
    case("export -o a file", "export {ckpt} -o blocker", 2, "-o blocker is a file; give a folder", blocker,
         torch=True),
    case("export -o in a file's folder", "export {ckpt} -o blocker/B", 1, "blocker is a file, not a folder",
         blocker, torch=True),
]

assert len(CASES) >= 30


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def prepare(c: Case, tmp_path: Path, request, monkeypatch, prefill: bool) -> list[str]:
    """Run the case's setup, pre-fill its output if asked; return the argv."""
    if c.torch:
        pytest.importorskip("torch")
    ws = Workspace(tmp_path, request, monkeypatch)
    for step in c.setup:
        step(ws)
    args = [a.replace("{ckpt}", str(ws.checkpoint)) if "{ckpt}" in a else a for a in c.args]
    if c.model and args[0] in LIGHT and "--model" not in args:
        args += ["--model", str(ws.bundle)]
    if prefill:
        target = tmp_path / c.output
        if Path(c.output).suffix:
            target.write_bytes(PRECIOUS)
        else:  # a folder output: --out-dir, a bundle, a run
            target.mkdir()
            (target / "keep.txt").write_bytes(PRECIOUS)
    return args


def assert_clean_failure(code: int, stdout: str, stderr: str, c: Case) -> None:
    everything = stdout + stderr
    assert code == c.code, everything
    assert "Traceback" not in everything
    assert stdout == ""
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("Error: "), stderr
    assert c.phrase in stderr, stderr


def _variants():
    for param in CASES:
        (c,) = param.values
        yield pytest.param(c, False, id=param.id, marks=param.marks)
        if c.output is not None:
            yield pytest.param(c, True, id=f"{param.id} [output exists]", marks=param.marks)


@pytest.mark.parametrize(("c", "prefill"), list(_variants()))
def test_bad_input_fails_cleanly(c, prefill, tmp_path, request, monkeypatch):
    args = prepare(c, tmp_path, request, monkeypatch, prefill)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, args, prog_name="vaegen")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_clean_failure(result.exit_code, result.stdout, result.stderr, c)
    assert snapshot(tmp_path) == before  # nothing new, nothing changed, no temp file left
    assert not (tmp_path.parent / f"{tmp_path.name}-pwned").exists()


@pytest.mark.parametrize("c", [p for p in CASES if p.values[0].subprocess])
def test_bad_input_fails_cleanly_in_a_real_process(c, tmp_path, request, monkeypatch):
    # A real process shows what CliRunner cannot: ONNX Runtime logging to file descriptor 2.
    args = prepare(c, tmp_path, request, monkeypatch, prefill=c.output is not None)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("VAEGEN_DEBUG", "VAEGEN_MODEL")}
    done = subprocess.run([sys.executable, "-m", "vaegen", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path)
    assert_clean_failure(done.returncode, done.stdout, done.stderr, c)
    assert snapshot(tmp_path) == before
    assert not (tmp_path.parent / f"{tmp_path.name}-pwned").exists()


def test_usage_errors_are_one_line_everywhere():
    """click prints a usage error as four lines; vaegen keeps it to one, with the help hint inside."""
    for args in (["bogus"], ["--bogus"], ["sample", "--bogus"], ["reconstruct"], ["traverse", "--dims", "x"]):
        result = CliRunner().invoke(cli, args, prog_name="vaegen")
        assert result.exit_code == 2, args
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("Error: ") and "--help')" in result.stderr, result.stderr


def test_bare_vaegen_still_prints_the_help():
    result = CliRunner().invoke(cli, [], prog_name="vaegen")
    assert "Commands:" in result.output


# ---------------------------------------------------------------- odd but valid input


@pytest.mark.parametrize("make", ODD_IMAGES, ids=lambda f: f.__name__)
def test_odd_images_reconstruct_and_encode(vaegen, tmp_path, make):
    image = make(tmp_path / make.__name__)
    result = vaegen("reconstruct", image, "-o", tmp_path / "r.png", "--scale", 1)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "r.png") as grid:
        assert grid.size == (32, 62)  # the input as the model saw it, above its reconstruction
    result = vaegen("encode", image, "--json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert len(record["mu"]) == 4 and np.isfinite(record["mu"]).all()


@pytest.mark.parametrize("make", [odd_16_bit, odd_palette, odd_one_bit, odd_interlaced_png, odd_unicode_name],
                         ids=lambda f: f.__name__)
def test_lossless_odd_images_give_the_model_the_plain_pixels(tmp_path, make):
    plain = tmp_path / "plain.png"
    reference = digit_array()
    Image.fromarray(np.where(reference > 127, 255, 0).astype(np.uint8) if make is odd_one_bit else reference).save(plain)
    for preprocessing in ("resize", "mnist"):
        want = prepare_image(plain, image_shape=(1, 28, 28), preprocessing=preprocessing)
        got = prepare_image(make(tmp_path / "odd"), image_shape=(1, 28, 28), preprocessing=preprocessing)
        np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("make", [odd_rgba, odd_gray_alpha], ids=lambda f: f.__name__)
def test_transparent_images_are_ink_on_white_paper(tmp_path, make):
    paper = tmp_path / "paper.png"
    Image.fromarray(255 - digit_array()).save(paper)  # the same dark digit on opaque white
    want = prepare_image(paper, image_shape=(1, 28, 28), preprocessing="mnist")
    got = prepare_image(make(tmp_path / "odd"), image_shape=(1, 28, 28), preprocessing="mnist")
    np.testing.assert_allclose(got, want, atol=1 / 255 + 1e-6)


def test_exif_rotated_photo_is_seen_upright(tmp_path):
    upright = digit_array(seed=6)
    stored = np.rot90(upright, k=1)  # the camera stored it turned left...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and says: turn it 90 degrees clockwise to view it
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=100, subsampling=0)
    Image.fromarray(upright).save(tmp_path / "plain.jpg", quality=100, subsampling=0)
    assert load_image(tmp_path / "photo.jpg").size == (28, 28)
    got = prepare_image(tmp_path / "photo.jpg", image_shape=(1, 28, 28), preprocessing="resize")
    want = prepare_image(tmp_path / "plain.jpg", image_shape=(1, 28, 28), preprocessing="resize")
    assert np.abs(got - want).mean() < 0.02
    turned = prepare_image(tmp_path / "plain.jpg", image_shape=(1, 28, 28), preprocessing="resize")[0]
    assert np.abs(got[0] - np.rot90(turned, k=1)).mean() > 0.05  # and it really was turned


def test_sample_one_image(vaegen, tmp_path):
    result = vaegen("sample", "-n", 1, "-o", tmp_path / "one.png", "--scale", 1)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "one.png") as img:
        assert img.size == (32, 32)


def test_batching_does_not_change_the_images(vaegen, tmp_path):
    """-n above one batch: the images of the first batch are those of a small -n with the same seed."""
    n = DEFAULT_BATCH + 3
    assert vaegen("sample", "-n", n, "--nrow", 32, "--seed", 9, "-o", tmp_path / "big.png").exit_code == 0
    assert vaegen("sample", "-n", 32, "--nrow", 32, "--seed", 9, "-o", tmp_path / "small.png").exit_code == 0
    with Image.open(tmp_path / "big.png") as big, Image.open(tmp_path / "small.png") as small:
        big, small = np.asarray(big), np.asarray(small)
    assert big.shape == ((-(-n // 32)) * 30 + 2, 32 * 30 + 2)
    np.testing.assert_array_equal(big[: small.shape[0]], small)  # the first row of 32
    last = big[-30:-2, 2 * 30 + 2 : 3 * 30]  # image n-1: row 33, column 2, filled by the second batch
    assert not np.all(last == 128)


def test_evaluate_an_image_folder_of_odd_files(vaegen, tmp_path):
    folder = tmp_path / "odd"
    (folder / "nested" / "deeper").mkdir(parents=True)
    for i, make in enumerate([odd_16_bit, odd_palette, odd_rgba, odd_cmyk_jpeg, odd_tiny, odd_interlaced_png]):
        make((folder / "nested" if i % 2 else folder / "nested" / "deeper") / f"img{i}")
    (folder / "notes.txt").write_text("skipped")
    result = vaegen("evaluate", "--dataset", folder, "--k", 2, "--json", "-q")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["images"] == 6 and np.isfinite(figures["nll"])


# ---------------------------------------------------------------- safety


def test_checkpoints_load_weights_only_and_a_payload_never_runs(tmp_path):
    pytest.importorskip("torch")
    from vaegen.errors import TrainingError
    from vaegen.training.checkpoint import load_checkpoint

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": 1, "model": Payload(marker)}, protocol=2))
    with pytest.raises(TrainingError, match="refusing to unpickle"):
        load_checkpoint(evil)
    import torch

    # torch's own zip format with the payload inside: refused the same way.
    buf = io.BytesIO()
    torch.save({"format": 1, "model": Payload(marker)}, buf)
    zipped = tmp_path / "evil-zip.pt"
    zipped.write_bytes(buf.getvalue())
    with pytest.raises(TrainingError, match="refusing to unpickle"):
        load_checkpoint(zipped)
    assert not marker.exists()


def test_latent_files_are_read_without_pickle(tmp_path):
    marker = tmp_path / "pwned"
    array = np.empty(2, dtype=object)
    array[:] = [Payload(marker), Payload(marker)]
    np.save(tmp_path / "evil.npy", array, allow_pickle=True)
    with pytest.raises(LatentError, match="allow_pickle=False"):
        load_latents(tmp_path / "evil.npy", latent_dim=4)
    assert not marker.exists()


def test_image_decoding_has_a_pixel_limit(tmp_path):
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS  # in force for every Pillow open in the process
    (tmp_path / "bomb.png").write_bytes(_bomb_png())
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(tmp_path / "bomb.png")
    # Far over the limit (twice it): Pillow refuses before reading a pixel.
    buf = io.BytesIO()
    Image.new("1", (12000, 8000)).save(buf, format="PNG")
    (tmp_path / "bigger.png").write_bytes(buf.getvalue())
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(tmp_path / "bigger.png")


def test_idx_files_are_bounded_when_unpacked(tmp_path, monkeypatch):
    from tests.support import read_idx_file
    from vaegen.errors import DataError

    monkeypatch.setattr(data_module, "MAX_IDX_BYTES", 1 << 16)
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(encode_idx(np.zeros((100, 28, 28), np.uint8))))
    with pytest.raises(DataError, match="unpacks to more than"):
        read_idx_file(tmp_path / "bomb.gz", ndim=3)


LIGHT_RUNS = {
    "sample": ["sample", "-n", "3", "-o", "{out}/s.png"],
    "sample --out-dir": ["sample", "-n", "2", "--out-dir", "{out}/samples"],
    "reconstruct": ["reconstruct", "{inp}/a.png", "-o", "{out}/r.png"],
    "reconstruct --out-dir": ["reconstruct", "{inp}/a.png", "--out-dir", "{out}/recon"],
    "interpolate": ["interpolate", "{inp}/a.png", "{inp}/b.png", "--steps", "3", "-o", "{out}/i.png"],
    "interpolate --gif": ["interpolate", "{inp}/a.png", "{inp}/b.png", "--steps", "3", "--gif", "-o", "{out}/i.gif"],
    "interpolate -o .gif": ["interpolate", "{inp}/a.png", "{inp}/b.png", "--steps", "3", "-o", "{out}/i.gif"],
    "sample -o .jpg": ["sample", "-n", "3", "-o", "{out}/s.jpg"],
    "reconstruct --skip-bad": ["reconstruct", "{inp}/a.png", "{inp}/missing.png", "--skip-bad", "-o", "{out}/r.webp"],
    "encode --skip-bad": ["encode", "{inp}/missing.png", "{inp}/a.png", "--skip-bad", "-o", "{out}/z.json"],
    "encode": ["encode", "{inp}/a.png", "-o", "{out}/z.npy"],
    "decode": ["decode", "{inp}/z.json", "-o", "{out}/d.png"],
    "decode --out-dir": ["decode", "{inp}/z.json", "--out-dir", "{out}/decoded"],
    "traverse": ["traverse", "--steps", "3", "-o", "{out}/t.png"],
    "info": ["info", "--json"],
    "evaluate": ["evaluate", "--dataset", "{inp}", "--k", "2", "-q"],
}

DEFAULT_OUTPUTS = {
    "sample": (["sample", "-n", "2"], "samples.png"),
    "reconstruct": (["reconstruct", "{inp}/a.png"], "reconstructions.png"),
    "interpolate": (["interpolate", "{inp}/a.png", "{inp}/b.png", "--steps", "3"], "interpolation.png"),
    "interpolate --gif": (["interpolate", "{inp}/a.png", "{inp}/b.png", "--steps", "3", "--gif"], "interpolation.gif"),
    "decode": (["decode", "{inp}/z.json"], "decoded.png"),
    "traverse": (["traverse", "--steps", "3"], "traversal.png"),
}


@pytest.fixture
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    _digit_png(folder / "a.png", seed=1)
    _digit_png(folder / "b.png", seed=2)
    (folder / "z.json").write_text(json.dumps([[0.0, 0.5, -0.5, 1.0]]))
    return folder


def _fill(args: list[str], **paths: Path) -> list[str]:
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]


@pytest.mark.parametrize("args", LIGHT_RUNS.values(), ids=LIGHT_RUNS.keys())
def test_files_land_only_where_the_user_named_them(vaegen, inputs, tmp_path_factory, args):
    cwd, out = Path.cwd(), tmp_path_factory.mktemp("out")
    inputs_before = snapshot(inputs)
    result = vaegen(*_fill(args, inp=inputs, out=out))
    assert result.exit_code == 0, result.output
    assert list(cwd.iterdir()) == []  # the working directory stays empty
    assert snapshot(inputs) == inputs_before  # inputs are read, never written
    assert [p.name for p in out.rglob(".*")] == []  # no temporary file left beside the output


@pytest.mark.parametrize(("args", "name"), DEFAULT_OUTPUTS.values(), ids=DEFAULT_OUTPUTS.keys())
def test_without_o_only_the_documented_default_appears(vaegen, inputs, args, name):
    result = vaegen(*_fill(args, inp=inputs))
    assert result.exit_code == 0, result.output
    assert [p.name for p in Path.cwd().iterdir()] == [name]
