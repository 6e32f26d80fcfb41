"""ONNX Runtime sessions for a bundle: provider choice, threads, batching.

`auto` means CUDA when it really runs, else CPU; `cuda` means CUDA or a clear
error. ONNX Runtime falls back to the CPU silently, so the providers a session
really got are read back after it is made. Imports numpy, onnxruntime and
vaegen's torch-free modules only.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vaegen.bundle.read import Bundle
from vaegen.choices import PROVIDERS
from vaegen.errors import BundleError, ProviderError
from vaegen.likelihoods import get_likelihood

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_BATCH = 1024
DRIVER_NAMES = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]

_quiet_logs = True


def set_verbose(verbose: bool) -> None:
    """ONNX Runtime's own log lines are hidden unless `verbose`."""
    global _quiet_logs
    _quiet_logs = not verbose
    # 4 (fatal) hides ORT's error lines too, such as a CUDA library that fails
    # to load: vaegen reports each failure itself, as one line.
    ort.set_default_logger_severity(0 if verbose else 4)


set_verbose(False)


def _load_driver():
    """The NVIDIA driver's library (a ctypes handle), or None when none loads."""
    for name in DRIVER_NAMES:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def cuda_driver_present() -> bool:
    """Is an NVIDIA driver loadable? A cheap test before asking ORT for CUDA."""
    return _load_driver() is not None


def _driver_problem() -> str | None:
    """Why the NVIDIA driver cannot run CUDA here, or None when it sees a GPU."""
    driver = _load_driver()
    if driver is None:
        return f"no NVIDIA driver ({DRIVER_NAMES[0]} cannot be loaded)"
    status = driver.cuInit(0)
    if status == 100:  # CUDA_ERROR_NO_DEVICE
        return "the NVIDIA driver finds no GPU"
    if status != 0:
        return f"the NVIDIA driver does not start (cuInit error {status})"
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "the NVIDIA driver finds no GPU"
    return None


def _provider_library_problem() -> str | None:
    """Why ONNX Runtime's CUDA provider library cannot load, in the dynamic
    loader's words as ONNX Runtime reports them (a missing CUDA or cuDNN
    library, by name), or None when it loads."""
    names = {"win32": "onnxruntime_providers_cuda.dll", "darwin": "libonnxruntime_providers_cuda.dylib"}
    library = Path(ort.__file__).parent / "capi" / names.get(sys.platform, "libonnxruntime_providers_cuda.so")
    built_for = f" (this ONNX Runtime is built for CUDA {ort.cuda_version})" if getattr(ort, "cuda_version", "") else ""
    if not library.is_file():
        return f"ONNX Runtime's CUDA provider library {library.name} is missing; reinstall onnxruntime-gpu"
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return f"ONNX Runtime cannot load its CUDA provider: {str(exc).strip()}{built_for}"
    return None


def cuda_problem() -> str | None:
    """Why CUDA cannot run here, as one phrase, or None when nothing that can
    be seen without making a session stops it: no CUDA provider in this
    ONNX Runtime, no driver or GPU, or a missing CUDA or cuDNN library."""
    if CUDA not in ort.get_available_providers():
        return "this ONNX Runtime has no CUDA provider (install onnxruntime-gpu)"
    reasons = [why for why in (_driver_problem(), _provider_library_problem()) if why]
    return "; ".join(reasons) or None


def provider_report() -> dict:
    """Installed providers, the ones that can really run here, and why CUDA
    cannot (None when it can)."""
    problem = cuda_problem()
    return {"onnxruntime": ort.__version__, "installed": ort.get_available_providers(),
            "usable": [CPU] if problem else [CUDA, CPU], "cuda_problem": problem}


def describe_machine() -> str:
    """One line naming the CPU this runs on, for model cards and benchmark tables."""
    import platform

    gpu = "CUDA driver present" if cuda_driver_present() else "no GPU"
    return f"{describe_cpu()}, {gpu}, {platform.system()}, Python {platform.python_version()}"


def describe_cpu() -> str:
    """The CPU's cores and model name, e.g. "2 CPU cores (Intel(R) Xeon(R) Processor)"."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu})"


def session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # One pool of `threads` for the GEMMs; the inter-op pool is idle in a
    # sequential chain of layers, so it gets one thread.
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    # ORT's workers spin after each run by default; between runs vaegen does
    # numpy work (evaluate's likelihoods), which the spinning threads would
    # starve. Measured on 2 cores: evaluate's decoder calls went from 85 ms to
    # the 46 ms they take alone.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4 if _quiet_logs else 0
    return options


def make_session(path, provider: str = "auto", threads: int | None = None,
                 graph: bytes | None = None) -> ort.InferenceSession:
    """An InferenceSession on the requested provider, verified to be running it.

    `graph`, when given, is the model's bytes (already checked); `path` then
    only names it in errors."""
    if provider not in PROVIDERS:
        raise ProviderError(f"Unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}.")
    wants_cuda = provider == "cuda" or (provider == "auto" and CUDA in ort.get_available_providers()
                                        and cuda_driver_present())
    if provider == "cuda" and CUDA not in ort.get_available_providers():
        raise _cuda_refused(cuda_problem())
    providers = [CUDA, CPU] if wants_cuda else [CPU]
    try:
        session = ort.InferenceSession(str(path) if graph is None else graph, session_options(threads),
                                       providers=providers)
    except Exception as exc:  # ORT's exception classes are not importable by name
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"ONNX Runtime cannot load {path}: {first}") from exc
    if provider == "cuda" and session.get_providers()[0] != CUDA:
        raise _cuda_refused(cuda_problem() or "ONNX Runtime did not start its CUDA provider")
    return session


def _cuda_refused(why: str | None) -> ProviderError:
    return ProviderError(f'provider="cuda": CUDA cannot run here: {why}; use provider="cpu" or provider="auto".',
                         argument="provider")


def check_io(session: ort.InferenceSession, want_in: dict, want_out: dict, name: str) -> None:
    def shape_ok(actual, expected):
        if len(actual) != len(expected):
            return False
        return all(e is None or a == e for a, e in zip(actual, expected, strict=True))

    got_in = {i.name: i.shape for i in session.get_inputs()}
    got_out = {o.name: o.shape for o in session.get_outputs()}
    for kind, got, want in (("input", got_in, want_in), ("output", got_out, want_out)):
        for key, shape in want.items():
            if key not in got:
                raise BundleError(f"{name} has no {kind} named '{key}' (it has {', '.join(got) or 'none'}).")
            if not shape_ok(got[key], shape):
                raise BundleError(f"{name}: {kind} '{key}' has shape {got[key]}, the bundle says {shape}.")


class OnnxVAE:
    """The encoder and decoder of a bundle, each session made on first use."""

    def __init__(self, bundle: Bundle, provider: str = "auto", threads: int | None = None,
                 batch_size: int = DEFAULT_BATCH, io_binding: bool | None = None):
        if provider not in PROVIDERS:
            raise ProviderError(f"Unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}.")
        self.bundle = bundle
        self.provider = provider
        self.threads = threads
        self.batch_size = batch_size
        self.io_binding = io_binding  # None: on when the session runs on CUDA
        self._encoder = None
        self._decoder = None

    def _session(self, path, inputs: dict, outputs: dict) -> ort.InferenceSession:
        graph = self.bundle.read_graph(path.name)  # checked against vaegen.json's sha256
        session = make_session(path, self.provider, self.threads, graph=graph)
        del graph
        check_io(session, inputs, outputs, path.name)
        meta = session.get_modelmeta().custom_metadata_map
        graph_id = meta.get("vaegen.model_id")
        if graph_id != self.bundle.model_id:
            raise BundleError(
                f"{path.name} belongs to model {graph_id or 'unknown'}, but the bundle is model "
                f"{self.bundle.model_id or 'unknown'}: encoder and decoder come from different exports."
            )
        return session

    @property
    def encoder(self) -> ort.InferenceSession:
        if self._encoder is None:
            c, h, w = self.bundle.image_shape
            d = self.bundle.latent_dim
            self._encoder = self._session(self.bundle.encoder_path, {"image": [None, c, h, w]},
                                          {"mu": [None, d], "logvar": [None, d]})
        return self._encoder

    @property
    def decoder(self) -> ort.InferenceSession:
        if self._decoder is None:
            c, h, w = self.bundle.image_shape
            d = self.bundle.latent_dim
            outputs = {name: [None, c, h, w] for name in get_likelihood(self.bundle.likelihood).outputs}
            self._decoder = self._session(self.bundle.decoder_path, {"z": [None, d]}, outputs)
        return self._decoder

    def _run(self, session: ort.InferenceSession, name: str, batch: np.ndarray, outputs: list[str]) -> list:
        """One batch through `session`. With IO binding the input is copied to
        the device once, and only the requested outputs are copied back."""
        on_cuda = session.get_providers()[0] == CUDA
        if not (self.io_binding if self.io_binding is not None else on_cuda):
            return session.run(outputs, {name: batch})
        binding = session.io_binding()
        binding.bind_cpu_input(name, batch)
        for output in outputs:
            binding.bind_output(output, "cuda" if on_cuda else "cpu")
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def open_sessions(self) -> None:
        """Make both sessions now (each is made, and its graph checked, on first use):
        a bundle is then vouched for whole, and no request thread pays for it."""
        self.encoder, self.decoder  # noqa: B018

    @property
    def active_provider(self) -> str:
        session = self._decoder or self._encoder or self.decoder
        return session.get_providers()[0]

    def encode_uint8(self, images, *, seed: int = 0, levels: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images [N, C, H, W] (an array, a memory map or data.sets.Rows) -> mu, logvar,
        converted a batch at a time, so a large set costs its codes and one float batch:
        as the likelihood prepares them (binarized from one Generator seeded with `seed`,
        the same bits as in one piece), or with `levels` plainly as k/255."""
        likelihood = get_likelihood(self.bundle.likelihood)
        rng = np.random.default_rng(seed)
        d = self.bundle.latent_dim
        mus, logvars = [np.zeros((0, d), np.float32)], [np.zeros((0, d), np.float32)]
        for start in range(0, len(images), self.batch_size):
            chunk = np.asarray(images[start : start + self.batch_size])
            x = chunk.astype(np.float32) / np.float32(255.0) if levels else likelihood.prepare(chunk, rng)
            mu, logvar = self.encode(x)
            mus.append(mu)
            logvars.append(logvar)
        return np.concatenate(mus), np.concatenate(logvars)

    def encode(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images float32 [N, C, H, W] in [0, 1] -> mu, logvar float32 [N, D]."""
        mus, logvars = [], []
        for start in range(0, len(images), self.batch_size):
            batch = np.ascontiguousarray(images[start : start + self.batch_size], dtype=np.float32)
            mu, logvar = self._run(self.encoder, "image", batch, ["mu", "logvar"])
            mus.append(mu)
            logvars.append(logvar)
        if not mus:
            d = self.bundle.latent_dim
            return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
        return np.concatenate(mus), np.concatenate(logvars)

    def decode_batches(self, z: np.ndarray, output: str = "probs") -> Iterator[np.ndarray]:
        """Decode z [N, D] in batches, yielding [b, C, H, W] arrays: memory stays bounded."""
        for batch in self.decode_outputs(z, [output]):
            yield batch[0]

    def decode_outputs(self, z: np.ndarray, outputs: list[str]) -> Iterator[list[np.ndarray]]:
        """Decode z [N, D] in batches, yielding the named outputs of each batch."""
        if z.ndim != 2 or z.shape[1] != self.bundle.latent_dim:
            raise BundleError(f"latents have shape {z.shape}; this model takes [N, {self.bundle.latent_dim}].")
        for start in range(0, len(z), self.batch_size):
            batch = np.ascontiguousarray(z[start : start + self.batch_size], dtype=np.float32)
            yield self._run(self.decoder, "z", batch, outputs)

    def decode(self, z: np.ndarray, output: str = "probs") -> np.ndarray:
        parts = list(self.decode_batches(z, output))
        if not parts:
            return np.zeros((0, *self.bundle.image_shape), np.float32)
        return np.concatenate(parts)
