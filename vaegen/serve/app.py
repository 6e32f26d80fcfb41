"""The explorer's API as plain functions: a parsed JSON request in, a JSON-able
answer out, every field checked before it reaches the model.

Explorer holds the model, its latent map and the active dimensions, all made
once at start-up and read-only afterwards, so any number of request threads
may share it (ONNX Runtime's InferenceSession.run is thread-safe). A bad
field raises vaegen.errors.ArgumentError, which the server answers with 400.
Imports numpy, Pillow (through vaegen.images) and vaegen's torch-free modules.
"""

from __future__ import annotations

import base64
import math

import numpy as np

from vaegen.choices import INTERPOLATIONS
from vaegen.errors import ArgumentError, ImageError
from vaegen.evaluation.scores import DEFAULT_K
from vaegen.fileio import shown_path
from vaegen.latent.map import LatentMap
from vaegen.plot import UNLABELLED, class_colors

# A latent or map coordinate beyond this is refused: the prior puts nearly
# all its mass within |z| < 5, and float32 overflows long before the cap.
MAX_COORDINATE = 1e3
MAX_STEPS = 32  # frames of an interpolation
MAX_PAD_SIDE = 512  # pixels per side of a drawing
MAX_FILE_BYTES = 1_500_000  # a dropped image file, before base64 (the page shrinks larger pictures to 512 px first)
MAX_SEED = 2**63 - 1
SLIDERS = 8


def _number(value, name: str, limit: float = MAX_COORDINATE) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"{name} must be a number, not {type(value).__name__}.")
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise ArgumentError(f"{name} must be a finite number within ±{limit:g}, not {value!r}.")
    return number


def _integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ArgumentError(f"{name} must be an integer from {low} to {high}, not {value!r}.")
    return value


def _vector(value, name: str, length: int) -> np.ndarray:
    if not isinstance(value, list) or len(value) != length:
        size = len(value) if isinstance(value, list) else type(value).__name__
        raise ArgumentError(f"{name} must be a list of {length} numbers, not {size}.")
    return np.array([_number(v, f"{name}[{i}]") for i, v in enumerate(value)], np.float32)


def _field(request, name: str, default=None, required: bool = True):
    if not isinstance(request, dict):
        raise ArgumentError("the request body must be a JSON object.")
    if name not in request:
        if required:
            raise ArgumentError(f"the request has no '{name}'.")
        return default
    return request[name]


def pixels_payload(image: np.ndarray) -> dict:
    """An image [C, H, W] in [0, 1] as the page draws it: uint8 bytes, base64."""
    c, h, w = image.shape
    data = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8).tobytes()
    return {"channels": c, "height": h, "width": w, "data": base64.b64encode(data).decode("ascii")}


class Explorer:
    """The page's endpoints over one model and its latent map."""

    def __init__(self, model, latent_map: LatentMap, sliders: int = SLIDERS):
        self.model = model
        self.map = latent_map
        self.bounds = latent_map.bounds  # an empty map's frame of prior draws: a picked point still decodes
        model.open_sessions()  # now, not on a request thread; the active dimensions too
        self.sliders = model.active_dims(sliders)
        self.classes = list(getattr(model, "classes", []) or [])
        calibration = model.calibration  # read now, not on a request thread
        self.score_k = calibration.k if calibration is not None else DEFAULT_K

    # ------------------------------------------------------------ endpoints

    def info(self) -> dict:
        m = self.map
        xy = np.round(m.xy.astype(np.float64), 4)
        return {
            "model": shown_path(self.model.bundle.path), "latent_dim": self.model.latent_dim,
            "image_shape": list(self.model.image_shape), "preprocessing": self.model.bundle.preprocessing,
            "provider": self.model.active_provider, "projection": m.projection.method,
            "axes": list(m.projection.axes), "dataset": m.dataset, "bounds": list(self.bounds),
            "points": {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "label": m.labels.tolist()},
            "map_classes": m.classes, "colors": class_colors(len(m.classes)), "unlabelled": UNLABELLED,
            "map_note": m.note,
            "sliders": self.sliders, "classes": self.classes, "max_steps": MAX_STEPS, "max_pad_side": MAX_PAD_SIDE,
            "max_file_bytes": MAX_FILE_BYTES,
            # A colour model takes a picture from disk (dropped or chosen); a grey one a drawing, or a file too.
            "drawing": self.model.image_shape[0] == 1,
        }

    def decode(self, request) -> dict:
        """{"xy": [x, y]} (a point of the map) or {"z": [D numbers]} -> its image."""
        if _field(request, "z", required=False) is not None:
            z = _vector(request["z"], "z", self.model.latent_dim)
        else:
            z = self.map.projection.unproject(_vector(_field(request, "xy"), "xy", 2)[None])[0]
        return self._answer(z)

    def encode(self, request) -> dict:
        """{"width": W, "height": H, "pixels": [H*W numbers in 0..1]} (a
        drawing, light ink on dark, row by row), or {"file": base64 of an
        image file's bytes, "name": its name} (a picture dropped or chosen on
        the page) -> its reconstruction and place, and its score (see
        _score) unless "score" is false: the page asks for it when a stroke
        ends, not at every move of it."""
        wants_score = _field(request, "score", True, required=False)
        if not isinstance(wants_score, bool):
            raise ArgumentError(f"score must be true or false, not {wants_score!r}.")
        if _field(request, "file", required=False) is not None:
            image = self._read_file(request["file"], _field(request, "name", "the file", required=False))
        else:
            image = self._read_drawing(request)
        mu, _ = self.model.encode(image[None])
        answer = self._answer(mu[0])
        answer["input"] = pixels_payload(image)
        if wants_score:
            answer["score"] = self._score(image)
        return answer

    def _read_file(self, data, name) -> np.ndarray:
        """A dropped image file (base64) as the model's input, prepared as `vaegen reconstruct` prepares one."""
        from vaegen.images import load_image_bytes, prepare_decoded

        if not isinstance(name, str) or len(name) > 255:
            raise ArgumentError("name must be a file name (a string of at most 255 characters).")
        if not isinstance(data, str):
            raise ArgumentError("file must be the image file's bytes in base64.")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise ArgumentError("file is not valid base64.") from None
        if not raw or len(raw) > MAX_FILE_BYTES:
            raise ArgumentError(f"file must hold 1 to {MAX_FILE_BYTES:,} bytes, not {len(raw):,}.")
        shape = self.model.image_shape
        try:
            img = load_image_bytes(raw, name, draft=shape[1:] if self.model.bundle.preprocessing != "mnist" else None)
            return prepare_decoded(img, name, image_shape=shape, preprocessing=self.model.bundle.preprocessing,
                                   background=self.model.bundle.background)
        except ImageError as exc:
            raise ArgumentError(str(exc).rstrip(".") + ".") from None

    def _read_drawing(self, request) -> np.ndarray:
        width = _integer(_field(request, "width"), "width", 8, MAX_PAD_SIDE)
        height = _integer(_field(request, "height"), "height", 8, MAX_PAD_SIDE)
        pixels = _field(request, "pixels")
        if not isinstance(pixels, list) or len(pixels) != width * height:
            raise ArgumentError(f"pixels must be a list of width*height = {width * height} numbers.")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pixels):
            raise ArgumentError("pixels must all be numbers.")
        gray = np.asarray(pixels, dtype=np.float64).reshape(height, width)
        if not np.isfinite(gray).all() or gray.min() < 0 or gray.max() > 1:
            raise ArgumentError("pixels must be numbers from 0 to 1.")
        return self._prepare(gray.astype(np.float32))

    def sample(self, request) -> dict:
        """{"class": name or index or null, "seed": int} -> a draw from that
        class of the fitted prior (null: the whole prior)."""
        seed = _integer(_field(request, "seed", 0, required=False), "seed", 0, MAX_SEED)
        label = _field(request, "class", None, required=False)
        if label is None:
            return self._answer(self.model.sample_latents(1, seed=seed)[0])
        if not self.classes:
            raise ArgumentError("this model has no classes to draw from (its bundle has no class-conditional prior).")
        if isinstance(label, bool) or not isinstance(label, (int, str)) or (
                label not in self.classes and not (isinstance(label, int) and 0 <= label < len(self.classes))):
            raise ArgumentError(f"unknown class {label!r}; this model's classes are {', '.join(self.classes)}.")
        return self._answer(self.model.sample_latents(1, seed=seed, label=label)[0])

    def interpolate(self, request) -> dict:
        """{"a": z, "b": z, "steps": n, "method": "slerp"|"lerp"} -> the frames between."""
        d = self.model.latent_dim
        z_a, z_b = _vector(_field(request, "a"), "a", d), _vector(_field(request, "b"), "b", d)
        steps = _integer(_field(request, "steps", 10, required=False), "steps", 2, MAX_STEPS)
        method = _field(request, "method", "slerp", required=False)
        if method not in INTERPOLATIONS:
            raise ArgumentError(f"method must be {' or '.join(INTERPOLATIONS)}, not {method!r}.")
        z = self.model.interpolate_latents(z_a, z_b, steps, method)
        images = self.model.decode(z)
        xy = self.map.projection.project(z)
        return {"frames": [pixels_payload(image) for image in images], "xy": np.round(xy, 4).tolist()}

    # ------------------------------------------------------------ helpers

    def _answer(self, z: np.ndarray) -> dict:
        z = np.asarray(z, np.float32)
        image = self.model.decode(z[None])[0]
        xy = self.map.projection.project(z[None])[0]
        return {"image": pixels_payload(image), "z": np.round(z.astype(np.float64), 5).tolist(),
                "xy": np.round(xy.astype(np.float64), 5).tolist()}

    def _score(self, image: np.ndarray) -> dict:
        """The model input's record from Model.score (bits_per_dim, score,
        ood_score, percentile, flagged: None without a calibration), with the
        k it was scored at and whether the bundle has a calibration."""
        record = self.model.score(image[None], k=self.score_k)[0]
        return {**record, "k": self.score_k, "calibrated": self.model.calibration is not None}

    def _prepare(self, gray: np.ndarray) -> np.ndarray:
        """A drawing as the model's input [C, H, W], prepared as the bundle
        prepares images (vaegen.images.prepare_gray): the MNIST recipe for an
        MNIST model, else resized (no digit-cropping for clothes)."""
        from vaegen.images import prepare_gray

        try:
            return prepare_gray(gray, image_shape=self.model.image_shape, preprocessing=self.model.bundle.preprocessing)
        except ImageError as exc:
            raise ArgumentError(f"the drawing: {exc}.") from exc
