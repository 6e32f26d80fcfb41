"""Images in and out (vaegen.images): refusing unsafe or broken files, colour
modes to grayscale, MNIST-style preprocessing, grids, and atomic PNG/GIF
writing. Pillow and numpy only; every file lives in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vaegen import images
from vaegen.errors import ArgumentError, ImageError, OutputError

# ------------------------------------------------------------------ load_image


def noise_image(size=(64, 48), seed=0) -> Image.Image:
    """An RGB image that does not compress, so half its file is half its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def test_load_image_reads_a_good_file_fully(tmp_path):
    path = tmp_path / "ok.png"
    noise_image().save(path)
    img = images.load_image(path)
    path.unlink()  # the pixels were decoded and copied: the file is no longer needed
    assert img.size == (64, 48) and img.mode == "RGB"
    assert np.asarray(img).shape == (48, 64, 3)


def test_load_image_refuses_a_missing_file(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        images.load_image(tmp_path / "nope.png")


def test_load_image_refuses_a_folder(tmp_path):
    with pytest.raises(ImageError, match="folder"):
        images.load_image(tmp_path)


def test_load_image_refuses_text_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageError, match="not an image"):
        images.load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_load_image_refuses_a_truncated_file(tmp_path, fmt):
    path = tmp_path / f"cut.{fmt.lower()}"
    noise_image(size=(256, 256)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="damaged or truncated"):
        images.load_image(path)


def test_load_image_refuses_a_decompression_bomb(tmp_path):
    # 48 million pixels in a file of a few kB: refused before decoding.
    path = tmp_path / "bomb.png"
    Image.new("1", (8000, 6000)).save(path, optimize=True)
    assert path.stat().st_size < 100_000
    assert 8000 * 6000 > images.MAX_PIXELS
    with pytest.raises(ImageError, match="too large|more than the limit") as info:
        images.load_image(path)
    assert "shrink it first" in str(info.value)


def test_load_image_checks_its_own_pixel_limit(tmp_path, monkeypatch):
    path = tmp_path / "normal.png"
    noise_image(size=(100, 50)).save(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 4999)
    with pytest.raises(ImageError, match="100x50 pixels, more than the limit"):
        images.load_image(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 5000)
    assert images.load_image(path).size == (100, 50)


# ---------------------------------------------------------------- to_gray_array


def check_gray(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.float32 and arr.shape == shape
    assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_gray_from_l_and_rgb():
    gray = images.to_gray_array(Image.fromarray(np.array([[0, 51, 255]], np.uint8), mode="L"))
    check_gray(gray, (1, 3))
    np.testing.assert_allclose(gray, [[0.0, 0.2, 1.0]], atol=1e-6)
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0]]], np.uint8)
    gray = images.to_gray_array(Image.fromarray(rgb, mode="RGB"))
    check_gray(gray, (1, 4))
    # ITU-R 601 luma: white, black, red (0.299), green (0.587).
    np.testing.assert_allclose(gray, [[1.0, 0.0, 0.299, 0.587]], atol=2 / 255)


def test_gray_from_rgba_composites_on_white():
    rgba = np.array([[[0, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 128], [255, 255, 255, 0]]], np.uint8)
    gray = images.to_gray_array(Image.fromarray(rgba, mode="RGBA"))
    check_gray(gray, (1, 4))
    # Transparent pixels are paper (white) whatever colour they hold.
    np.testing.assert_allclose(gray, [[1.0, 0.0, 0.5, 1.0]], atol=2 / 255)


def test_gray_from_palette_with_transparency():
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 255, 255, 255, 255, 0, 0] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2])
    gray = images.to_gray_array(img)
    check_gray(gray, (1, 3))
    np.testing.assert_allclose(gray, [[0.0, 1.0, 0.299]], atol=2 / 255)
    img.info["transparency"] = 0  # black becomes see-through: white paper
    np.testing.assert_allclose(images.to_gray_array(img), [[1.0, 1.0, 0.299]], atol=2 / 255)


def test_gray_from_16_bit(tmp_path):
    img = Image.fromarray(np.array([[0, 32768, 65535]], np.uint16))
    assert img.mode.startswith("I;16")
    gray = images.to_gray_array(img)
    check_gray(gray, (1, 3))
    np.testing.assert_allclose(gray, [[0.0, 32768 / 65535, 1.0]], atol=1e-6)
    # The same through a 16-bit PNG file: a dark 16-bit image is not mistaken for 8-bit.
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 200, 65535]], np.uint16)).save(path)
    gray = images.to_gray_array(images.load_image(path))
    check_gray(gray, (1, 3))
    np.testing.assert_allclose(gray, [[0.0, 200 / 65535, 1.0]], atol=1e-6)


def test_gray_from_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # no ink: white
    img.paste((0, 0, 0, 255), (0, 0, 8, 16))  # black ink on the left half
    path = tmp_path / "print.jpg"
    img.save(path, quality=95)
    loaded = images.load_image(path)
    assert loaded.mode == "CMYK"
    gray = images.to_gray_array(loaded)
    check_gray(gray, (16, 16))
    assert gray[:, :4].max() < 0.05 and gray[:, 12:].min() > 0.95


# ------------------------------------------------------------- mnist_preprocess


def photo_of_digit(noise: float, seed: int = 0) -> np.ndarray:
    """A dark '0' drawn on slightly gray paper, 300x400, with sensor-like noise."""
    img = Image.new("L", (300, 400), 230)
    ImageDraw.Draw(img).ellipse([80, 90, 220, 330], outline=30, width=25)
    gray = np.asarray(img, np.float32) / 255 + np.random.default_rng(seed).normal(0, noise, (400, 300))
    return np.clip(gray, 0, 1).astype(np.float32)


def bounding_box(arr: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(arr)
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def centre_of_mass(arr: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(arr.shape)
    return float((ys * arr).sum() / arr.sum()), float((xs * arr).sum() / arr.sum())


# 0.05 is a noisy phone photo: a single noise pixel taken for ink would
# stretch the bounding box over the whole page.
@pytest.mark.parametrize("noise", [0.0, 0.02, 0.05])
def test_mnist_preprocess_centres_a_dark_digit_on_paper(noise):
    out = images.mnist_preprocess(photo_of_digit(noise))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0, abs=0.05)  # bright ink...
    border = np.concatenate([out[0], out[-1], out[:, 0], out[:, -1]])
    assert np.all(border == 0)  # ...on black
    height, width = bounding_box(out)
    assert height <= 20 and width <= 20
    assert height >= 19  # the digit's long side fills the box
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def test_mnist_preprocess_does_not_depend_on_noise():
    clean = images.mnist_preprocess(photo_of_digit(0.0))
    noisy = images.mnist_preprocess(photo_of_digit(0.05, seed=1))
    assert np.abs(noisy - clean).sum() < 0.2 * clean.sum()


def test_mnist_preprocess_keeps_a_bright_digit_bright():
    dark = np.zeros((28, 28), np.float32)
    dark[6:22, 12:16] = 1.0  # MNIST itself: white stroke on black
    out = images.mnist_preprocess(dark)
    assert out.max() == pytest.approx(1.0, abs=0.05) and out[0, 0] == 0.0


@pytest.mark.parametrize(
    "blank",
    [
        np.ones((100, 80), np.float32),  # white paper
        np.full((100, 80), 0.7, np.float32),  # gray paper
        np.zeros((28, 28), np.float32),  # black
    ],
    ids=["white", "gray", "black"],
)
def test_mnist_preprocess_refuses_a_blank_image(blank):
    with pytest.raises(ImageError, match="^the image is blank: its pixels differ by at most 0.00 on a 0-1 scale$"):
        images.mnist_preprocess(blank)


def test_mnist_preprocess_says_what_it_measured_on_grainy_paper():
    grainy = np.clip(0.9 + np.random.default_rng(0).normal(0, 0.04, (400, 300)), 0, 1).astype(np.float32)
    with pytest.raises(ImageError, match=r"^no stroke stands out from the background: the contrast is 0\.\d\d on a "
                                         r"0-1 scale, and on a background this grainy a stroke needs 0\.\d\d$"):
        images.mnist_preprocess(grainy)


def test_mnist_preprocess_says_what_it_measured_on_a_faint_mark():
    paper = np.full((40, 40), 0.5, np.float32)
    paper[15:25, 18:22] = 0.55  # a mark 0.05 above the paper
    with pytest.raises(ImageError, match="^no stroke stands out from the background: the contrast is 0.05 on a 0-1 "
                                         "scale, and a stroke needs 0.10$"):
        images.mnist_preprocess(paper)


def test_mnist_preprocess_does_not_call_a_picture_blank():
    rng = np.random.default_rng(0)
    picture = rng.random((60, 80)).astype(np.float32)  # busy from edge to edge: no paper to find a stroke on
    with pytest.raises(ImageError) as caught:
        images.mnist_preprocess(picture)
    assert "blank" not in str(caught.value)
    assert str(caught.value).startswith("no stroke stands out from the background: the background itself varies by")


def test_mnist_preprocess_keeps_the_aspect_ratio():
    paper = np.ones((400, 300), np.float32)
    paper[100:300, 130:170] = 0.0  # a bar 200 tall, 40 wide
    out = images.mnist_preprocess(paper)
    height, width = bounding_box(out)
    assert height == 20
    assert 3 <= width <= 6  # 40/200 of 20 is 4, plus a pixel of resampling fringe


# ---------------------------------------------------------------- prepare_image


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 8, 12)])
def test_prepare_image_resize_gives_chw(tmp_path, shape):
    path = tmp_path / "photo.png"
    noise_image(size=(50, 30)).save(path)
    arr = images.prepare_image(path, image_shape=shape, preprocessing="resize")
    assert arr.shape == shape and arr.dtype == np.float32
    assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_prepare_image_mnist_names_the_file_when_blank(tmp_path):
    path = tmp_path / "empty.png"
    Image.new("L", (40, 40), 255).save(path)
    with pytest.raises(ImageError, match="empty.png: the image is blank"):
        images.prepare_image(path, image_shape=(1, 28, 28), preprocessing="mnist")
    Image.fromarray((photo_of_digit(0.0) * 255).astype(np.uint8)).save(path)
    arr = images.prepare_image(path, image_shape=(1, 28, 28), preprocessing="mnist")
    assert arr.shape == (1, 28, 28) and arr.dtype == np.float32


# ------------------------------------------------------------ grids and writers


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("n, nrow", [(10, 4), (3, 8), (16, 4)])
def test_make_grid_size_and_grid_writer_agree(channels, n, nrow):
    h, w = 5, 7
    batch = np.random.default_rng(n).random((n, channels, h, w), dtype=np.float32)
    grid = images.make_grid(batch, nrow=nrow)
    columns = min(nrow, n)
    rows = -(-n // columns)
    assert grid.size == (columns * (w + 2) + 2, rows * (h + 2) + 2)
    assert grid.mode == ("L" if channels == 1 else "RGB")

    writer = images.GridWriter(n, (channels, h, w), nrow=nrow)
    for start in range(0, n, 3):  # batches of 3, the last one short
        writer.add(batch[start : start + 3])
    np.testing.assert_array_equal(np.asarray(writer.image()), np.asarray(grid))


# ------------------------------------------------------- atomic PNG and GIF writing


def failing_save(monkeypatch):
    """Make every Image.save write a few bytes, then fail like a full disk."""

    def save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", save)


def frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((6, 6), 40 * i, np.uint8), mode="L") for i in range(n)]


@pytest.mark.parametrize(("name", "fmt"), [("out.png", "PNG"), ("out.jpg", "JPEG"), ("out.JPEG", "JPEG"),
                                           ("out.webp", "WEBP"), ("out.gif", "GIF")])
def test_save_image_writes_the_format_its_extension_names(tmp_path, name, fmt):
    path = tmp_path / name
    images.save_image(frames(3)[2], path, scale=2)
    with Image.open(path) as img:
        assert img.format == fmt and img.size == (12, 12)
        assert getattr(img, "n_frames", 1) == 1
        assert abs(int(np.asarray(img.convert("L"))[0, 0]) - 80) <= 2  # the grey survived (JPEG within a level or two)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["out.bmp", "out", "out.png.tmp"])
def test_save_image_refuses_an_unknown_extension_and_lists_the_known_ones(tmp_path, name):
    with pytest.raises(ArgumentError, match=r": the file name must end in \.png, \.jpg, \.jpeg, \.webp or \.gif"):
        images.save_image(frames(1)[0], tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_gif_refuses_another_extension(tmp_path):
    with pytest.raises(ArgumentError, match=r"walk.png: the file name must end in \.gif"):
        images.save_gif(frames(3), tmp_path / "walk.png")
    assert list(tmp_path.iterdir()) == []


def test_save_image_writes_a_png(tmp_path):
    path = tmp_path / "out.png"
    images.save_image(frames(2)[1], path, scale=3)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (18, 18)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.parametrize("writer", ["png", "gif"])
def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch, writer):
    path = tmp_path / f"out.{writer}"
    path.write_bytes(b"old content")
    failing_save(monkeypatch)
    with pytest.raises(OutputError, match=f"Cannot write {path}: No space left on device"):
        if writer == "png":
            images.save_image(frames(1)[0], path)
        else:
            images.save_gif(frames(3), path)
    assert path.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_save_gif_writes_frames_that_loop(tmp_path):
    path = tmp_path / "walk.gif"
    images.save_gif(frames(5), path, duration_ms=70, scale=2)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 5 and gif.is_animated
        assert gif.info["loop"] == 0  # forever
        assert gif.size == (12, 12)
        seen = []
        for i in range(gif.n_frames):
            gif.seek(i)
            seen.append(int(np.asarray(gif.convert("L"))[0, 0]))
            assert gif.info["duration"] == 70
    assert seen == [40 * i for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.gif"]
