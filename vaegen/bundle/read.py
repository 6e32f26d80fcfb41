"""Find, read and verify a model bundle (the folder that training exports).

A bundle holds encoder.onnx, decoder.onnx and vaegen.json (README.md,
"Where data and models live"); its .npy records are read by vaegen.bundle.records.
Loading checks the format version, the facts the runtime relies on and the
size of each graph; a graph's sha256 is checked when it is read to be run
(read_graph), so `vaegen sample` never pays for hashing the encoder it does
not use, and the bytes checked are the bytes that run. Any mismatch is a
BundleError, never a wrong picture. Standard library and the likelihoods'
registry (itself standard library at import) only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vaegen.errors import BundleError
from vaegen.likelihoods import LIKELIHOODS

BUNDLE_FORMAT = 1
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
META_FILE = "vaegen.json"
DEFAULT_MODEL = "mnist"


class Bundle:
    """A located bundle: its folder and its vaegen.json. (A plain class: the
    dataclasses import would cost every command's start-up a millisecond.)"""

    __slots__ = ("path", "meta", "verify")

    def __init__(self, path: Path, meta: dict, verify: bool = True):
        self.path, self.meta, self.verify = path, meta, verify

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r})"

    def read_graph(self, name: str) -> bytes:
        """The bytes of encoder.onnx or decoder.onnx, checked against the
        sha256 and size in vaegen.json (unless loaded with verify=False)."""
        return read_checked(self.path / name, self.meta["files"][name] if self.verify else None)

    @property
    def encoder_path(self) -> Path:
        return self.path / ENCODER_FILE

    @property
    def decoder_path(self) -> Path:
        return self.path / DECODER_FILE

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.meta["image_shape"])

    @property
    def latent_dim(self) -> int:
        return int(self.meta["latent_dim"])

    @property
    def preprocessing(self) -> str:
        return self.meta.get("preprocessing", "resize")

    @property
    def background(self) -> int:
        """The grey level under transparent pixels, as the training images had it (white before it was recorded)."""
        return int(self.meta.get("background", 255))

    @property
    def likelihood(self) -> str:
        return self.meta.get("likelihood", "bernoulli")

    @property
    def dataset(self) -> str:
        """The dataset the model was trained on (a name, or an image folder's)."""
        return self.meta.get("dataset") or "mnist"

    @property
    def model_id(self) -> str:
        return self.meta.get("model_id", "")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checked(file: Path, expected: dict | None, *, listed_in: str = META_FILE,
                 remedy: str = "re-export the bundle") -> bytes:
    """The bytes of `file`, checked against `expected`, its {"sha256", "bytes"}
    entry in the metadata file `listed_in`; None reads it unchecked. A missing,
    resized or altered file is a BundleError that ends with `remedy`."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{file.parent} is incomplete: {file.name} is missing; {remedy}.") from None
    except OSError as exc:
        raise BundleError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
    if expected is not None:
        _check_size(file, len(data), expected.get("bytes"), listed_in, remedy)
        if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            raise BundleError(f"{file} does not match its sha256 in {listed_in}: tampered or corrupt; {remedy}.")
    return data


def shipped_model_dir(name: str = DEFAULT_MODEL, marker: str = META_FILE) -> Path:
    """A folder shipped in weights/ (the default model, or the judge with
    marker judge.json): inside the installed package (a wheel), or in the
    source checkout's weights/ (an editable install). `marker` is the file
    that shows a candidate folder is the real one."""
    here = Path(__file__).resolve().parent.parent  # vaegen/
    for candidate in (here / "weights" / name, here.parent / "weights" / name):
        if (candidate / marker).is_file():
            return candidate
    return here.parent / "weights" / name


def shipped_models(kind: str = "", marker: str = META_FILE) -> list[str]:
    """The names of the shipped models (weights/<name> holding a bundle); or,
    with `kind` and `marker`, of the folders in weights/<kind> holding that
    file (the judges: "judges", judge.json)."""
    folder = shipped_model_dir(f"{kind}/{DEFAULT_MODEL}" if kind else DEFAULT_MODEL, marker).parent
    return sorted(p.name for p in folder.iterdir() if (p / marker).is_file()) if folder.is_dir() else []


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """`model`, else $VAEGEN_MODEL, else the shipped weights/mnist. `model`
    is a folder, or the name of a shipped model (`fashion-mnist`) where no
    folder of that name is here.

    A training run folder is accepted too: its bundle is in <run>/model.
    """
    if model is None:
        model = os.environ.get("VAEGEN_MODEL") or shipped_model_dir()
    path = Path(model).expanduser()
    if not path.exists() and str(model) in shipped_models():
        path = shipped_model_dir(str(model))
    if not path.exists():
        names = ", ".join(shipped_models())
        raise BundleError(f"Model bundle {path} does not exist: give a folder from `vaegen train`"
                          + (f", or a shipped model's name ({names})." if names else "."))
    if not path.is_dir():
        raise BundleError(f"Model bundle {path} is not a folder; pass the folder that holds {META_FILE}.")
    if not (path / META_FILE).exists() and (path / "model" / META_FILE).exists():
        path = path / "model"
    return path


def _require(meta: dict, key: str, kind, where: Path):
    value = meta.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(f"{where / META_FILE} is malformed: '{key}' is missing or not a {kind.__name__}.")
    return value


def read_json_object(folder: Path, name: str, kind: str, remedy: str = "") -> dict:
    """The JSON object in folder/name (a bundle's vaegen.json, a judge's
    judge.json); `kind` names the folder ("a model bundle") when it is missing."""
    meta_path = folder / name
    if not meta_path.is_file():
        raise BundleError(f"{folder} is not {kind}: {name} is missing.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{meta_path} is malformed JSON ({exc}){remedy}.") from exc
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path} is malformed: expected a JSON object.")
    return meta


def read_meta(path: Path) -> dict:
    meta_path = path / META_FILE
    meta = read_json_object(path, META_FILE, "a model bundle", "; re-export the bundle")
    version = _require(meta, "format", int, path)
    if version > BUNDLE_FORMAT:
        raise BundleError(
            f"{path} is bundle format {version}, newer than this vaegen reads ({BUNDLE_FORMAT}); upgrade vaegen."
        )
    if version < 1:
        raise BundleError(f"{meta_path} is malformed: format {version} is not a vaegen bundle format.")
    shape = _require(meta, "image_shape", list, path)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise BundleError(f"{meta_path} is malformed: image_shape must be three positive integers, not {shape}.")
    if _require(meta, "latent_dim", int, path) < 1:
        raise BundleError(f"{meta_path} is malformed: latent_dim must be positive.")
    if meta.get("likelihood", "bernoulli") not in LIKELIHOODS:
        raise BundleError(f"{meta_path} names likelihood {meta.get('likelihood')!r}, which this vaegen does not know "
                          f"({', '.join(LIKELIHOODS)}); upgrade vaegen.")
    files = _require(meta, "files", dict, path)
    for name in (ENCODER_FILE, DECODER_FILE):
        entry = files.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BundleError(f"{meta_path} is malformed: no sha256 for {name}.")
    return meta


def _check_size(file: Path, size: int, expected, listed_in: str = META_FILE,
                remedy: str = "re-export the bundle") -> None:
    if isinstance(expected, int) and size != expected:
        raise BundleError(
            f"{file} is {size} bytes, not the {expected} recorded in {listed_in}: truncated or replaced; {remedy}."
        )


def load_bundle(model: str | os.PathLike | None = None, *, verify: bool = True, checksums: bool = False) -> Bundle:
    """Locate a bundle and check its metadata, and that each graph is there
    with its recorded size. Each graph's sha256 is checked when it is read
    (Bundle.read_graph); `checksums=True` checks both now."""
    path = resolve_model_dir(model)
    meta = read_meta(path)
    bundle = Bundle(path, meta, verify)
    for name in (ENCODER_FILE, DECODER_FILE):
        file = path / name
        if not file.is_file():
            raise BundleError(f"{path} is incomplete: {name} is missing; re-export the bundle.")
        if verify:
            _check_size(file, file.stat().st_size, meta["files"][name].get("bytes"))
            if checksums:
                bundle.read_graph(name)
    return bundle
