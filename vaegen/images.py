"""Images in and out, with Pillow and numpy only: reading user images safely,
MNIST-style preprocessing, grids, and writing (always atomic) in the format
a file's extension names: PNG, JPEG, WebP, or GIF (animated too).

Model-side images are float32 arrays [N, C, H, W] in [0, 1].
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vaegen.errors import ImageError, OutputError
from vaegen.fileio import atomic_path, check_suffix

# Decoding a larger image is refused before its pixels are read: a 40 kB PNG
# can claim a billion pixels (a decompression bomb).
MAX_PIXELS = 40_000_000
# How much brighter than the paper (on a 0-1 scale) the MNIST recipe needs a stroke to be, at least.
MIN_CONTRAST = 0.1
# Modes with more than 8 bits a pixel (16-bit and 32-bit integers, floats): scaled by hand.
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# A grid vaegen writes may be larger (`sample -n 200000` is 180 Mpixels), but
# not unbounded: `-n 10**9` is refused up front instead of failing for memory.
MAX_GRID_PIXELS = 1 << 30
# The pixel modes to_gray_array and to_rgb_array convert; a file in another
# (a CIELAB TIFF, say) is refused rather than converted wrongly or not at all.
READABLE_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr",
                  "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
# What vaegen writes, by extension: the output's format follows its name, as with Pillow.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}
# Grids are sharp pixel art: JPEG at high quality without chroma subsampling, WebP lossless.
SAVE_OPTIONS = {"PNG": {"optimize": False}, "JPEG": {"quality": 95, "subsampling": 0}, "WEBP": {"lossless": True}}


def load_image(path: str | os.PathLike, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode an image (a GIF's first frame), refusing bombs and
    broken files. With `draft` (height, width), a JPEG is decoded straight at
    the smallest 1/2, 1/4 or 1/8 scale that keeps twice that size: a camera
    picture bound for 64x64 costs a fraction of its full decode."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"Image {path} does not exist.")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image.")
    return _decode(path, path, draft)


def load_image_bytes(data: bytes, name: str = "the image", *, draft: tuple[int, int] | None = None) -> Image.Image:
    """load_image() of a file's bytes (the explorer's dropped file), its errors naming `name`."""
    import io

    return _decode(io.BytesIO(data), name, draft)


def _decode(source, path, draft: tuple[int, int] | None) -> Image.Image:
    """load_image()'s decode of `source` (a path or a file object), its errors naming `path`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": stderr stays one line
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{path} is {width}x{height} pixels, more than the limit of {MAX_PIXELS:,}; "
                        "shrink it first."
                    )
                if width == 0 or height == 0:
                    raise ImageError(f"{path} has no pixels.")
                if draft is not None and img.format == "JPEG":
                    img.draft(None, (2 * draft[1], 2 * draft[0]))
                img.load()
                if img.mode not in READABLE_MODES:
                    raise ImageError(f"{path} has pixel mode {img.mode}, which vaegen does not read; "
                                     "save it as an RGB or grayscale PNG or JPEG.")
                # A phone photo keeps its rotation in EXIF; apply it, as every viewer does.
                from PIL import ImageOps

                return ImageOps.exif_transpose(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path} is too large to decode safely (decompression bomb); shrink it first.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path} is not an image Pillow can read (PNG, JPEG, ...).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path} is damaged or truncated ({exc}).") from exc


def to_gray_array(img: Image.Image, background: int = 255) -> np.ndarray:
    """Any mode (RGB, RGBA, P, 16-bit, CMYK, float) -> float32 [H, W] in [0, 1].

    Transparency is composited onto the grey level `background` (white, as a
    drawing on paper would be, unless a model records another).
    """
    if img.mode in DEEP_MODES:
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        return np.clip(arr / top, 0, 1).astype(np.float32)
    if img.mode == "P" or img.mode == "LA" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        img = Image.alpha_composite(Image.new("RGBA", img.size, (background,) * 3 + (255,)), img)
    if img.mode == "CMYK":
        img = img.convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def to_rgb_array(img: Image.Image, background: int = 255) -> np.ndarray:
    """Any mode -> float32 [3, H, W] in [0, 1], transparency onto the grey level `background`."""
    if img.mode in DEEP_MODES:
        gray = to_gray_array(img)
        return np.repeat(gray[None], 3, axis=0)
    img = img.convert("RGBA")
    img = Image.alpha_composite(Image.new("RGBA", img.size, (background,) * 3 + (255,)), img).convert("RGB")
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def resize_gray(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float [H, W] to (H, W) `size` with antialiasing."""
    img = Image.fromarray(arr.astype(np.float32), mode="F")
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.LANCZOS), dtype=np.float32)


def resize_to(img: Image.Image, *, channels: int, size: tuple[int, int], background: int = 255) -> np.ndarray:
    """Centre-crop to the target aspect, resize, and return uint8 [C, H, W]
    (transparency onto the grey level `background`)."""
    height, width = size
    from PIL import ImageOps

    img = ImageOps.fit(_as_display_mode(img), (width, height), Image.Resampling.LANCZOS)
    arr = to_gray_array(img, background)[None] if channels == 1 else to_rgb_array(img, background)
    return np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)


def _as_display_mode(img: Image.Image) -> Image.Image:
    """Bring exotic modes to one ImageOps can resize, keeping the pixel values."""
    if img.mode in DEEP_MODES:
        return Image.fromarray(np.round(to_gray_array(img) * 255).astype(np.uint8), mode="L")
    if img.mode in ("P", "LA", "PA", "CMYK", "1"):
        return img.convert("RGBA")
    return img


def _no_stroke(gray: np.ndarray, contrast: float, grain: float) -> str:
    """Why mnist_preprocess finds no stroke, by what it measured: an even
    picture is blank; any other has too little contrast for its background."""
    spread = float(gray.max() - gray.min())
    if spread < MIN_CONTRAST / 2:
        return f"the image is blank: its pixels differ by at most {spread:.2f} on a 0-1 scale"
    needed = max(MIN_CONTRAST, 6 * grain)
    if needed >= 1:  # a picture, not paper: its edges are as varied as any stroke could be
        return (f"no stroke stands out from the background: the background itself varies by {grain:.2f} "
                f"on a 0-1 scale, too much for a stroke to stand out (the contrast is {contrast:.2f})")
    busy = " on a background this grainy" if needed > MIN_CONTRAST else ""
    return (f"no stroke stands out from the background: the contrast is {contrast:.2f} on a 0-1 scale, "
            f"and{busy} a stroke needs {needed:.2f}")


def mnist_preprocess(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """The MNIST recipe: a white digit on black, cropped to its bounding box,
    fitted into `box` x `box` keeping its aspect, and placed by centre of mass
    in a `size` x `size` frame. Input and output are float32 [H, W] in [0, 1].
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: make the ink bright
        gray = 1.0 - gray
        border = 1.0 - border
    background = float(np.median(border))
    # The paper's grain (sensor or JPEG noise), robustly from the border: one
    # noise pixel kept as ink would stretch the bounding box to the whole photo.
    grain = 1.4826 * float(np.median(np.abs(border - background)))
    peak = float(gray.max())
    if peak - background < max(MIN_CONTRAST, 6 * grain):
        raise ImageError(_no_stroke(gray, peak - background, grain))
    # Stretch so the paper is 0 and the darkest ink is 1; faint noise drops out.
    ink = np.clip((gray - background) / (peak - background), 0, 1)
    ink[ink < max(0.15, 6 * grain / (peak - background))] = 0.0
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    ink = np.clip(resize_gray(ink, (new_h, new_w)), 0, 1)
    total = ink.sum()
    ys, xs = np.indices(ink.shape)
    cy, cx = (ys * ink).sum() / total, (xs * ink).sum() / total
    top = int(np.clip(round(size / 2 - cy - 0.5), 0, size - new_h))
    left = int(np.clip(round(size / 2 - cx - 0.5), 0, size - new_w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = ink
    return out


def prepare_image(path: str | os.PathLike, *, image_shape: tuple[int, int, int], preprocessing: str,
                  background: int = 255) -> np.ndarray:
    """A user image as the model's input: float32 [C, H, W] in [0, 1], its
    transparency on the grey level `background` (the bundle's, as in training).
    A JPEG is decoded at a reduced scale as the training folder's were (load_image's draft)."""
    channels, height, width = image_shape
    img = load_image(path, draft=(height, width) if preprocessing != "mnist" else None)
    return prepare_decoded(img, path, image_shape=image_shape, preprocessing=preprocessing, background=background)


def prepare_decoded(img: Image.Image, path, *, image_shape: tuple[int, int, int], preprocessing: str,
                    background: int = 255) -> np.ndarray:
    """prepare_image() of an image already decoded (load_image, load_image_bytes); errors name `path`."""
    channels, height, width = image_shape
    if preprocessing == "mnist":
        try:
            return prepare_gray(to_gray_array(img), image_shape=image_shape, preprocessing=preprocessing)
        except ImageError as exc:
            raise ImageError(f"{path}: {exc}.") from exc
    return resize_to(img, channels=channels, size=(height, width), background=background).astype(np.float32) / 255.0


def prepare_gray(gray: np.ndarray, *, image_shape: tuple[int, int, int], preprocessing: str) -> np.ndarray:
    """A grayscale picture float [H, W] in [0, 1] (a file's, or the explorer's
    drawing) as the model's input [C, H, W]: the MNIST recipe for a bundle
    whose preprocessing is "mnist", else resized to the model's size."""
    channels, height, width = image_shape
    if preprocessing == "mnist":
        fitted = mnist_preprocess(gray, size=height, box=round(height * 20 / 28))
    else:
        fitted = np.clip(resize_gray(gray, (height, width)), 0, 1)
    return np.repeat(fitted[None], channels, axis=0).astype(np.float32)


def grid_size(n: int, image_shape: tuple[int, int, int], nrow: int, padding: int = 2) -> tuple[int, int]:
    """(width, height) in pixels of a grid of `n` images, `nrow` per row."""
    _, h, w = image_shape
    nrow = max(1, min(nrow, n))
    rows = -(-n // nrow)
    return nrow * (w + padding) + padding, rows * (h + padding) + padding


def make_grid(images: np.ndarray, nrow: int = 8, padding: int = 2, pad_value: float = 0.5) -> Image.Image:
    """Tile float images [N, C, H, W] in [0, 1] into one picture, `nrow` per row."""
    n, c, h, w = images.shape
    nrow = max(1, min(nrow, n))
    width, height = grid_size(n, (c, h, w), nrow, padding)
    grid = np.full((c, height, width), pad_value, np.float32)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y : y + h, x : x + w] = images[i]
    return to_pil(grid)


def to_pil(image: np.ndarray) -> Image.Image:
    """float [C, H, W] in [0, 1] -> an L or RGB Pillow image."""
    arr = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0], mode="L")
    return Image.fromarray(arr.transpose(1, 2, 0), mode="RGB")


def image_format(path: str | os.PathLike) -> str:
    """The format `path`'s extension names (PNG, JPEG, WEBP, GIF); an
    ArgumentError that lists the known extensions for any other."""
    return IMAGE_FORMATS[check_suffix(path, tuple(IMAGE_FORMATS))]


def _enlarged(img: Image.Image, scale: int) -> Image.Image:
    """`img` with each pixel made a `scale` x `scale` block (no smoothing)."""
    return img if scale <= 1 else img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def save_image(img: Image.Image, path: str | os.PathLike, scale: int = 1) -> None:
    """Write a still image atomically, in the format its extension names
    (.png, .jpg/.jpeg, .webp; .gif as a single frame); `scale` enlarges it
    with nearest-neighbour pixels."""
    suffix = Path(path).suffix.lower()
    fmt = image_format(path)
    img = _enlarged(img, scale)
    # The temporary name keeps the extension, so Pillow imports that one
    # plugin alone; format="PNG" would import five (~10 ms of start-up).
    with atomic_path(path, suffix=suffix) as tmp:
        _save(img, tmp, fmt, **SAVE_OPTIONS.get(fmt, {}))


def save_gif(frames: list[Image.Image], path: str | os.PathLike, duration_ms: int = 80, scale: int = 1) -> None:
    """Write an animated GIF (looping forever) atomically; `path` must end in .gif."""
    check_suffix(path, (".gif",), " (an animation is written as a GIF)")
    frames = [_enlarged(f, scale) for f in frames]
    with atomic_path(path, suffix=".gif") as tmp:
        _save(frames[0], tmp, "GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)


def _save(img: Image.Image, tmp: Path, fmt: str, **options) -> None:
    try:
        img.save(tmp, **options)
    except (KeyError, ValueError) as exc:  # a Pillow built without that format's library
        raise OutputError(f"This Pillow cannot write {fmt} files ({exc}); choose another extension.") from exc


class GridWriter:
    """Fill a grid batch by batch, so `sample -n 100000` holds one uint8 canvas
    and one batch of floats, never all the images as floats."""

    def __init__(self, n: int, image_shape: tuple[int, int, int], nrow: int, padding: int = 2, pad_value: int = 128):
        c, h, w = image_shape
        self.n, self.h, self.w, self.padding = n, h, w, padding
        self.nrow = max(1, min(nrow, n))
        width, height = grid_size(n, image_shape, self.nrow, padding)
        self.canvas = np.full((c, height, width), pad_value, np.uint8)
        self.count = 0

    def add(self, batch: np.ndarray) -> None:
        pixels = np.round(np.clip(batch, 0, 1) * 255).astype(np.uint8)
        for image in pixels:
            r, col = divmod(self.count, self.nrow)
            y, x = self.padding + r * (self.h + self.padding), self.padding + col * (self.w + self.padding)
            self.canvas[:, y : y + self.h, x : x + self.w] = image
            self.count += 1

    def image(self) -> Image.Image:
        if self.canvas.shape[0] == 1:
            return Image.fromarray(self.canvas[0], mode="L")
        return Image.fromarray(self.canvas.transpose(1, 2, 0), mode="RGB")


def save_each(images: np.ndarray, out_dir: str | os.PathLike, names: list[str], scale: int = 1) -> list[Path]:
    """One file per image in `out_dir` (created if missing; its parent must
    exist), each written atomically in the format its name's extension
    names; returns the paths written. A folder this call created is removed
    again if the first write fails: a failed command leaves no empty folder
    behind."""
    from vaegen.fileio import make_folder

    created = not Path(out_dir).exists()
    out_dir = make_folder(out_dir)
    written = []
    try:
        for image, name in zip(images, names, strict=True):
            save_image(to_pil(image), out_dir / name, scale=scale)
            written.append(out_dir / name)
    except BaseException:
        if created and not written:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    return written


def pairs_grid(top: np.ndarray, bottom: np.ndarray, nrow: int) -> Image.Image:
    """Two aligned sets of images (inputs and their reconstructions) as a grid
    of row pairs: `nrow` of `top`, then the same `nrow` of `bottom`, and so on.
    The last pair of rows is padded with black when there are several."""
    n = len(top)
    rows = []
    for start in range(0, n, nrow):
        chunk_top, chunk_bottom = top[start : start + nrow], bottom[start : start + nrow]
        pad = nrow - len(chunk_top)
        if pad and n > nrow:
            blank = np.zeros((pad, *chunk_top.shape[1:]), np.float32)
            chunk_top, chunk_bottom = np.concatenate([chunk_top, blank]), np.concatenate([chunk_bottom, blank])
        rows += [chunk_top, chunk_bottom]
    return make_grid(np.concatenate(rows), nrow=min(nrow, n))


def there_and_back(frames: np.ndarray) -> list[Image.Image]:
    """An animation's frames forward then backward, each end shown once: a
    loop with no stutter (a b c d -> a b c d c b)."""
    return [to_pil(f) for f in np.concatenate([frames, frames[-2:0:-1]])]
