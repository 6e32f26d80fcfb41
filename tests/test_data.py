"""Tests for vaegen.data: IDX parsing, finding, verifying and downloading
MNIST-layout files (against a local HTTP server), image folders, binarize.

All data is made here and is tiny; only the slow integration test at the end
reads real MNIST, from $VAEGEN_DATA_DIR.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import encode_idx, read_idx_file
from vaegen.data import load, named
from vaegen.data.folders import load_image_folder
from vaegen.data.named import IdxDataset, IdxFile, load_idx_dataset
from vaegen.data.sets import FolderOptions
from vaegen.errors import DataError
from vaegen.likelihoods.bernoulli import binarize

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# ---------------------------------------------------------------- helpers


def tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny MNIST-like arrays: 6 train and 4 test images of 5x7, labels 0..9."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (6, 5, 7), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 6, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (4, 5, 7), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, 4, dtype=np.uint8),
    }


def write_idx_files(folder: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> None:
    """The arrays as MNIST-named IDX files (<name>.gz or raw <name>) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        raw = encode_idx(array)
        path = folder / (f"{NAMES[key]}.gz" if gz else NAMES[key])
        path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)


def fake_dataset(arrays: dict[str, np.ndarray], mirrors: tuple[str, ...] = (), name: str = "mnist",
                 package: str = "") -> IdxDataset:
    """An IdxDataset whose files' content (sha256 of the raw IDX bytes) is that of `arrays`."""
    files = {key: IdxFile(NAMES[key], hashlib.sha256(encode_idx(a)).hexdigest()) for key, a in arrays.items()}
    return IdxDataset(name=name, mirrors=mirrors, system_package=package, **files)


@pytest.fixture
def use_dataset(monkeypatch):
    """Register an IdxDataset under its name for this test only."""
    return lambda dataset: monkeypatch.setitem(named.DATASETS, dataset.name, dataset)


@pytest.fixture(autouse=True)
def no_machine_data(request, tmp_path, monkeypatch):
    """Nothing of this machine's is searched (but by the slow tests of the real
    files): HOME (the cache) and the system folder are empty folders of the
    test's own, and VAEGEN_DATA_DIR is unset."""
    if request.node.get_closest_marker("slow"):
        return
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VAEGEN_DATA_DIR", raising=False)
    monkeypatch.setattr(named, "SYSTEM_DATA_DIR", tmp_path / "system")


@pytest.fixture
def http_server(request, monkeypatch):
    """start(root, status=None) -> (base URL ending in '/', list of request paths).

    Serves `root` on 127.0.0.1, or answers every request with `status`.
    """
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # even where an http_proxy is set

    def start(root: Path, status: int | None = None) -> tuple[str, list[str]]:
        requests: list[str] = []

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                if status:
                    self.send_error(status)
                else:
                    super().do_GET()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def stop():
            server.shutdown()
            server.server_close()
            thread.join(5)

        request.addfinalizer(stop)
        return f"http://127.0.0.1:{server.server_address[1]}/", requests

    return start


def dead_url() -> str:
    """A 127.0.0.1 URL with nothing listening on its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# ---------------------------------------------------------------- IDX format


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    for key, array in tiny_arrays().items():
        raw = encode_idx(array)
        path = tmp_path / NAMES[key]
        path.write_bytes(gzip.compress(raw) if gz else raw)
        back = read_idx_file(path, ndim=array.ndim)
        assert back.dtype == np.uint8 and back.shape == array.shape
        np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(
    ("raw", "ndim", "words"),
    [
        (encode_idx(np.zeros((2, 3, 4), np.uint8)), 1, ["not an IDX file of 1-D", "00000803"]),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + bytes(8), 1, ["unsigned bytes", "00000d01"]),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + bytes(2), 1, ["not an IDX file"]),
        (b"\x00\x00\x08\x03\x00\x00", 3, ["too short", "6 bytes"]),
        (encode_idx(np.zeros((2, 3, 4), np.uint8))[:-1], 3, ["(2, 3, 4)", "23 bytes", "truncated or corrupt"]),
        (encode_idx(np.zeros(5, np.uint8)) + b"\x00", 1, ["(5,)", "6 bytes", "truncated or corrupt"]),
        # 2**31 * 2**31 * 4 == 2**64: must not wrap around to match an empty body.
        (b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**31, 4), 3, ["truncated or corrupt"]),
    ],
    ids=["3-D-as-1-D", "not-ubyte", "nonzero-magic", "short-header", "short-body", "long-body", "overflow"],
)
def test_parse_idx_rejects_bad_data(raw, ndim, words):
    with pytest.raises(DataError) as info:
        named.parse_idx(raw, ndim=ndim, source="bad.idx")
    for word in ["bad.idx", *words]:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"\x1f\x8bnot really gzip at all", gzip.compress(encode_idx(np.ones((3, 4, 4), np.uint8)))[:-12]],
    ids=["garbage", "truncated"],
)
def test_read_idx_file_rejects_bad_gzip(tmp_path, content):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not a valid gzip file") as info:
        read_idx_file(path, ndim=3)
    assert str(path) in str(info.value)


def test_read_idx_file_missing(tmp_path):
    with pytest.raises(DataError, match="Cannot read"):
        read_idx_file(tmp_path / "absent", ndim=1)


# ---------------------------------------------------------------- local IDX datasets


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_dataset_from_folder(tmp_path, use_dataset, gz):
    arrays = tiny_arrays()
    write_idx_files(tmp_path / "mnist", arrays, gz=gz)
    use_dataset(fake_dataset(arrays))
    for split in ("train", "test"):
        ds = load_idx_dataset("mnist", split, tmp_path / "mnist", download=False)
        n = len(arrays[f"{split}_labels"])
        assert ds.images.shape == (n, 1, 5, 7) and ds.images.dtype == np.uint8
        assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images[:, 0], arrays[f"{split}_images"])
        np.testing.assert_array_equal(ds.labels, arrays[f"{split}_labels"])
    with pytest.raises(DataError, match="Unknown split"):
        load_idx_dataset("mnist", "valid", tmp_path / "mnist", download=False)


@pytest.mark.parametrize("gz", [False, True])
def test_a_corrupt_file_is_refused_in_one_line_that_names_it(tmp_path, use_dataset, gz):
    arrays = tiny_arrays()
    write_idx_files(tmp_path, arrays, gz=gz)
    use_dataset(fake_dataset(tiny_arrays(seed=1)))  # other data: content that matches no known file
    with pytest.raises(DataError, match="does not match the published one") as info:
        load_idx_dataset("mnist", "train", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / (NAMES["train_images"] + (".gz" if gz else ""))) in message
    assert "\n" not in message and "delete" not in message  # never advise deleting a file vaegen did not write


def test_a_faithful_copy_is_accepted_however_it_is_wrapped(tmp_path, use_dataset):
    """Verified by content: re-gzipped with another level, name and time (as
    Debian's package is), or plain, the same IDX bytes load."""
    arrays = tiny_arrays()
    use_dataset(fake_dataset(arrays))
    folder = tmp_path / "rewrapped"
    folder.mkdir()
    for i, (key, array) in enumerate(arrays.items()):
        raw = encode_idx(array)
        if i % 2:
            (folder / NAMES[key]).write_bytes(raw)
        else:
            with gzip.GzipFile(folder / f"{NAMES[key]}.gz", "wb", compresslevel=1, mtime=12345) as f:
                f.write(raw)
    assert (folder / f"{NAMES['train_images']}.gz").read_bytes() != gzip.compress(encode_idx(arrays["train_images"]))
    ds = load_idx_dataset("mnist", "train", folder, download=False)
    np.testing.assert_array_equal(ds.images[:, 0], arrays["train_images"])
    np.testing.assert_array_equal(load_idx_dataset("mnist", "test", folder, download=False).labels,
                                  arrays["test_labels"])


def test_load_idx_dataset_count_mismatch(tmp_path, use_dataset):
    arrays = {**tiny_arrays(), "train_labels": np.zeros(5, np.uint8)}
    write_idx_files(tmp_path, arrays)
    use_dataset(fake_dataset(arrays))
    with pytest.raises(DataError, match="6 images but 5 labels"):
        load_idx_dataset("mnist", "train", tmp_path, download=False)


def test_data_dir_from_environment(tmp_path, monkeypatch, use_dataset):
    arrays = tiny_arrays()
    write_idx_files(tmp_path / "env", arrays)
    use_dataset(fake_dataset(arrays))
    monkeypatch.setenv("VAEGEN_DATA_DIR", str(tmp_path / "env"))
    assert named.data_dirs("mnist")[:2] == [tmp_path / "env", tmp_path / "env" / "mnist"]
    ds = load_idx_dataset("mnist", "test", None, download=False)
    np.testing.assert_array_equal(ds.labels, arrays["test_labels"])


def test_a_data_dir_of_datasets_holds_each_in_its_own_folder(tmp_path, monkeypatch, use_dataset):
    arrays = tiny_arrays()
    write_idx_files(tmp_path / "data" / "mnist", arrays)
    use_dataset(fake_dataset(arrays))
    monkeypatch.setenv("VAEGEN_DATA_DIR", str(tmp_path / "data"))
    np.testing.assert_array_equal(load_idx_dataset("mnist", "train", None, download=False).labels,
                                  arrays["train_labels"])


def test_the_search_order_and_what_not_found_says(tmp_path, monkeypatch, use_dataset):
    use_dataset(fake_dataset(tiny_arrays(), name="fashion-mnist", package="dataset-fashion-mnist"))
    monkeypatch.setenv("VAEGEN_DATA_DIR", str(tmp_path / "env"))
    cache = tmp_path / "home" / ".cache" / "vaegen" / "fashion-mnist"
    system = tmp_path / "system" / "fashion-mnist"
    assert named.data_dirs("fashion-mnist", tmp_path / "given") == [
        tmp_path / "given", tmp_path / "given" / "fashion-mnist", tmp_path / "env", tmp_path / "env" / "fashion-mnist",
        cache, system]
    with pytest.raises(DataError) as info:
        load_idx_dataset("fashion-mnist", "train", tmp_path / "given", download=False)
    message = str(info.value)
    for part in (NAMES["train_images"], NAMES["train_labels"], str(tmp_path / "given"), str(cache), str(system),
                 "VAEGEN_DATA_DIR", "apt-get install dataset-fashion-mnist"):
        assert part in message, part
    assert "\n" not in message


def test_the_system_folder_is_found_without_a_hint(tmp_path, use_dataset):
    arrays = tiny_arrays()
    write_idx_files(tmp_path / "system" / "mnist", arrays)
    use_dataset(fake_dataset(arrays))
    np.testing.assert_array_equal(load_idx_dataset("mnist", "train", download=False).labels, arrays["train_labels"])


def test_another_datasets_file_of_the_same_name_is_passed_over(tmp_path, monkeypatch, use_dataset):
    """MNIST and Fashion-MNIST name their files alike: a VAEGEN_DATA_DIR of
    MNIST files is no error when Fashion-MNIST is found further on."""
    digits, clothes = tiny_arrays(seed=0), tiny_arrays(seed=5)
    use_dataset(fake_dataset(digits))
    use_dataset(fake_dataset(clothes, name="fashion-mnist"))
    write_idx_files(tmp_path / "env", digits)
    write_idx_files(tmp_path / "system" / "fashion-mnist", clothes)
    monkeypatch.setenv("VAEGEN_DATA_DIR", str(tmp_path / "env"))
    ds = load_idx_dataset("fashion-mnist", "train", download=False)
    np.testing.assert_array_equal(ds.images[:, 0], clothes["train_images"])
    np.testing.assert_array_equal(load_idx_dataset("mnist", "train", download=False).images[:, 0],
                                  digits["train_images"])


# ---------------------------------------------------------------- downloading


def test_download_verifies_and_caches(tmp_path, use_dataset, http_server):
    arrays = tiny_arrays()
    write_idx_files(tmp_path / "served", arrays)
    url, requests = http_server(tmp_path / "served")
    use_dataset(fake_dataset(arrays, mirrors=(url,)))
    folder, seen = tmp_path / "data", []
    ds = load_idx_dataset("mnist", "train", folder, timeout=5, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(ds.images[:, 0], arrays["train_images"])
    np.testing.assert_array_equal(ds.labels, arrays["train_labels"])
    names = [f"{NAMES['train_images']}.gz", f"{NAMES['train_labels']}.gz"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    for name in names:
        assert (folder / name).read_bytes() == (tmp_path / "served" / name).read_bytes()
    assert sorted(requests) == sorted(f"/{name}" for name in names)
    assert seen and seen[-1][0] == seen[-1][1]
    load_idx_dataset("mnist", "train", folder, timeout=5)
    assert len(requests) == 2  # the second load used the verified files on disk


@pytest.mark.parametrize("corruption", ["wrong-content", "not-gzip"])
def test_corrupt_download_leaves_nothing(tmp_path, use_dataset, http_server, corruption):
    arrays = tiny_arrays()
    served = tmp_path / "served"
    write_idx_files(served, tiny_arrays(seed=1) if corruption == "wrong-content" else arrays)
    if corruption == "not-gzip":
        (served / f"{NAMES['train_images']}.gz").write_bytes(os.urandom(300))
    url, requests = http_server(served)
    use_dataset(fake_dataset(arrays, mirrors=(url,)))
    folder = tmp_path / "data"
    with pytest.raises(DataError, match="the download failed") as info:
        load_idx_dataset("mnist", "train", folder, timeout=5)
    message = str(info.value)
    assert str(folder) in message and NAMES["train_images"] in message
    assert ("does not match the published file" if corruption == "wrong-content" else "gzip") in message
    assert requests == [f"/{NAMES['train_images']}.gz"]
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("failure", ["refused", 404, 500])
def test_download_falls_back_to_next_mirror(tmp_path, use_dataset, http_server, failure):
    arrays = tiny_arrays()
    write_idx_files(tmp_path / "served", arrays)
    good, good_requests = http_server(tmp_path / "served")
    if failure == "refused":
        bad, bad_requests = dead_url(), []
    else:
        bad, bad_requests = http_server(tmp_path / "served", status=failure)
    use_dataset(fake_dataset(arrays, mirrors=(bad, good)))
    ds = load_idx_dataset("mnist", "test", tmp_path / "data", timeout=5)
    np.testing.assert_array_equal(ds.labels, arrays["test_labels"])
    assert len(good_requests) == 2
    assert len(bad_requests) == (0 if failure == "refused" else 2)
    assert (tmp_path / "data" / f"{NAMES['test_images']}.gz").is_file()


# ---------------------------------------------------------------- image folders


def make_image_folder(root: Path) -> None:
    """Five images, sorted: a/x.png a/y.jpg b/w.png b/z.png root.png."""
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("RGB", (50, 40), (255, 0, 0)).save(root / "a" / "x.png")
    Image.new("RGB", (28, 28), (0, 0, 0)).save(root / "a" / "y.jpg", quality=95)
    Image.new("P", (64, 64), 0).save(root / "b" / "w.png")
    Image.new("RGBA", (20, 35), (0, 0, 0, 0)).save(root / "b" / "z.png")  # transparent: white
    Image.new("L", (31, 17), 200).save(root / "root.png")
    (root / "notes.txt").write_text("not an image")


def test_load_image_folder_gray(tmp_path):
    make_image_folder(tmp_path / "imgs")
    ds = load_image_folder(tmp_path / "imgs")
    assert ds.images.shape == (5, 1, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [0, 0, 1, 1, -1]
    assert ds.name == "imgs"
    assert np.all(ds.images[1] <= 3)  # black JPEG
    assert np.all(ds.images[3] == 128)  # transparent onto the default background, mid grey (docs/data.md)
    assert np.all(ds.images[4] == 200)
    white = load_image_folder(tmp_path / "imgs", options=FolderOptions(background=255))
    assert np.all(white.images[3] == 255)  # transparent onto white, when asked


def test_load_image_folder_rgb(tmp_path):
    make_image_folder(tmp_path / "imgs")
    ds = load_image_folder(tmp_path / "imgs", channels=3, size=(16, 12))
    assert ds.images.shape == (5, 3, 16, 12)
    assert np.all(ds.images[0, 0] == 255) and np.all(ds.images[0, 1:] == 0)  # red stays red


@pytest.mark.parametrize("contents", [[], ["readme.txt"]])
def test_load_image_folder_without_images(tmp_path, contents):
    for name in contents:
        (tmp_path / name).write_text("x")
    with pytest.raises(DataError, match="holds no image"):
        load_image_folder(tmp_path)


def test_load_image_folder_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "absent")


def test_load_dataset_unknown_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="mnist") as info:
        load.load_dataset("cifar10")
    assert "cifar10" in str(info.value)


# ---------------------------------------------------------------- the held-out rule


def numbered_folder(root: Path, n: int = 40) -> Path:
    """n grey PNGs whose value is their place in sorted order (0, 5, 10, ...)."""
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("L", (28, 28), 5 * i).save(root / f"img{i:02d}.png")
    return root


def places(data) -> list[int]:
    return (data.images[:, 0, 0, 0] // 5).tolist()


def test_a_folder_holds_out_every_tenth_image_in_sorted_order(tmp_path):
    folder = str(numbered_folder(tmp_path / "numbers"))
    assert places(load.load_dataset(folder, "test")) == [0, 10, 20, 30]
    assert places(load.load_dataset(folder, "train")) == [i for i in range(40) if i % 10]
    assert places(load.load_dataset(folder, "all")) == list(range(40))
    train, held = load.split_for_training(folder)
    assert places(train) == places(load.load_dataset(folder, "train")) and places(held) == [0, 10, 20, 30]
    with pytest.raises(DataError, match="Unknown split 'valid'"):
        load.load_dataset(folder, "valid")


def test_the_fingerprint_knows_a_folder_by_its_files_not_its_place(tmp_path):
    folder = numbered_folder(tmp_path / "numbers")
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    folder.rename(moved)
    fingerprint = load.dataset_fingerprint(str(moved))
    assert fingerprint == load.dataset_fingerprint(str(numbered_folder(tmp_path / "numbers")))
    (moved / "img00.png").write_bytes((moved / "img00.png").read_bytes() + b"\0")  # one file grew
    assert load.dataset_fingerprint(str(moved)) != fingerprint
    assert load.dataset_fingerprint("mnist") is None and load.dataset_fingerprint(str(tmp_path / "none")) is None


def test_a_model_is_scored_on_its_own_folders_held_out_images_and_on_all_of_another(tmp_path):
    own = str(numbered_folder(tmp_path / "numbers"))
    other = str(numbered_folder(tmp_path / "others", n=12))
    meta = {"dataset": "numbers", "dataset_fingerprint": load.dataset_fingerprint(own)}
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in Path(own).iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    for folder in (own, str(copy)):  # its own folder, found again by content under another name
        assert load.model_split(folder, "test", meta) == "test" and load.model_split(folder, "train", meta) == "train"
    assert load.model_split(other, "test", meta) == "all" and load.model_split(other, "train", meta) == "all"
    assert load.model_split("mnist", "test", meta) == "test"
    older = {"dataset": "/somewhere/numbers"}  # a bundle without a fingerprint: its folder's name decides
    assert load.model_split(own, "test", older) == "test" and load.model_split(other, "test", older) == "all"
    assert load.model_split(own, "test", {"dataset": "mnist"}) == "all"


# ---------------------------------------------------------------- binarize


def test_binarize():
    images = np.full((4, 1, 28, 28), 128, np.uint8)
    out = binarize(images, seed=0)
    assert out.dtype == np.float32 and out.shape == images.shape
    assert set(np.unique(out).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(out, binarize(images, seed=0))
    assert not np.array_equal(out, binarize(images, seed=1))
    assert np.all(binarize(np.full((2, 1, 5, 5), 255, np.uint8), seed=3) == 1.0)
    assert np.all(binarize(np.zeros((2, 1, 5, 5), np.uint8), seed=3) == 0.0)


# ---------------------------------------------------------------- real MNIST


def _has_real_mnist() -> bool:
    folder = os.environ.get("VAEGEN_DATA_DIR")
    return bool(folder) and all(
        (Path(folder) / n).is_file() or (Path(folder) / f"{n}.gz").is_file() for n in NAMES.values()
    )


@pytest.mark.slow
@pytest.mark.skipif(not _has_real_mnist(), reason="set VAEGEN_DATA_DIR to a folder holding real MNIST")
def test_real_mnist():
    folder = os.environ["VAEGEN_DATA_DIR"]
    expected = {
        "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    }
    for split, counts in expected.items():
        ds = load_idx_dataset("mnist", split, folder, download=False)
        assert ds.images.shape == (sum(counts), 1, 28, 28) and ds.images.dtype == np.uint8
        assert np.bincount(ds.labels, minlength=10).tolist() == counts


@pytest.mark.slow
@pytest.mark.skipif(not (named.SYSTEM_DATA_DIR / "fashion-mnist").is_dir(),
                    reason="apt-get install dataset-fashion-mnist (CI does)")
def test_real_fashion_mnist_from_debians_package(tmp_path, monkeypatch):
    """Debian re-gzips Fashion-MNIST: found with no hint (empty HOME, no
    VAEGEN_DATA_DIR) and accepted by its content."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("VAEGEN_DATA_DIR", raising=False)
    for split, n in (("train", 60_000), ("test", 10_000)):
        ds = load_idx_dataset("fashion-mnist", split, download=False)
        assert ds.images.shape == (n, 1, 28, 28)
        assert np.bincount(ds.labels, minlength=10).tolist() == [n // 10] * 10
        assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
