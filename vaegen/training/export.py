"""Export a trained VAE to an ONNX model bundle, verified before it is kept.

The bundle is built in a temporary folder beside its destination
(vaegen.fileio.building_folder): the two graphs here, then whatever the
caller adds (the fitted prior and map of a train run), then the sample
grids, vaegen.json and the card by vaegen.bundle.write, each file written
once. It is moved into place only after onnx.checker, a scan for random ops,
and a parity check of ONNX Runtime (CPU) against torch at several batch sizes
have all passed; an old bundle is swapped out in one atomic step where the
system allows it, so a reader sees the old bundle or the new one. Imports
torch, onnx, ONNX Runtime and vaegen's bundle writers.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import statistics
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from vaegen import __version__
from vaegen.api import Model
from vaegen.bundle.read import BUNDLE_FORMAT, DECODER_FILE, ENCODER_FILE, Bundle, sha256_file
from vaegen.bundle.write import draw_samples, save_meta_and_card
from vaegen.data.load import dataset_fingerprint
from vaegen.errors import ExportError, OutputError
from vaegen.fileio import building_folder, check_folder_target
from vaegen.training.checkpoint import CHECKPOINT, load_checkpoint, model_from_checkpoint
from vaegen.training.model import VAE, DecoderGraph, EncoderGraph

OPSET = 17
PARITY_BATCHES = (1, 7, 64)
PARITY_ATOL = 1e-4
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


def export_graph(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, outputs: list[str]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), input_names=[input_name], output_names=outputs,
            dynamic_axes={input_name: {0: "N"}, **{o: {0: "N"} for o in outputs}},
            opset_version=OPSET, dynamo=False,
        )


def stamp_graph(path: Path, facts: dict, role: str) -> None:
    """Write the bundle's facts into the graph's metadata_props; check the graph."""
    model = onnx.load(str(path))
    found = {node.op_type for node in model.graph.node} & RANDOM_OPS
    if found:
        raise ExportError(f"{path.name} contains random ops ({', '.join(sorted(found))}); refusing to export.")
    del model.metadata_props[:]
    for key, value in {"vaegen": json.dumps(facts, sort_keys=True), "vaegen.role": role,
                       "vaegen.model_id": facts["model_id"]}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name, model.producer_version = "vaegen", __version__
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def verify_parity(model: VAE, encoder_path: Path, decoder_path: Path, *, seed: int = 0,
                  batches=PARITY_BATCHES, atol: float = PARITY_ATOL, atol_by_output: dict | None = None) -> dict:
    """Compare ONNX Runtime (CPU) with torch on mu, logvar and each decoder output.

    Returns the largest absolute difference per output; raises ExportError on
    a mismatch above `atol` (or the output's own entry in `atol_by_output`),
    a missing output or a wrong shape.
    """
    atol_by_output = atol_by_output or {}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        enc = ort.InferenceSession(str(encoder_path), options, providers=["CPUExecutionProvider"])
        dec = ort.InferenceSession(str(decoder_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own non-exported exception types
        raise ExportError(f"ONNX Runtime cannot load the exported graphs: {exc}") from exc
    gen = torch.Generator().manual_seed(seed)
    outputs = list(model.likelihood.outputs)
    worst = dict.fromkeys(["mu", "logvar", *outputs], 0.0)
    cfg = model.cfg
    model.eval()
    graph = DecoderGraph(model)
    for n in batches:
        x = torch.rand((n, *cfg.image_shape), generator=gen).round()
        z = torch.randn((n, cfg.latent_dim), generator=gen)
        with torch.inference_mode():
            mu, logvar = model.encode(x)
            expected = {"mu": mu, "logvar": logvar, **dict(zip(outputs, graph(z), strict=True))}
        got = dict(zip(["mu", "logvar"], enc.run(["mu", "logvar"], {"image": x.numpy()}), strict=True))
        got.update(zip(outputs, dec.run(outputs, {"z": z.numpy()}), strict=True))
        for name, want in expected.items():
            have = got[name]
            if have.shape != tuple(want.shape):
                raise ExportError(f"Parity check failed: {name} has shape {have.shape}, torch gives {tuple(want.shape)}.")
            diff = float(np.max(np.abs(have - want.numpy())))
            limit = atol_by_output.get(name, atol)
            if not np.isfinite(diff) or diff > limit:
                raise ExportError(
                    f"Parity check failed: {name} differs from torch by {diff:.3g} at batch size {n} "
                    f"(tolerance {limit:g}); no bundle was written."
                )
            worst[name] = max(worst[name], diff)
    return worst


def model_id(model: VAE) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def bundle_facts(model: VAE, *, dataset: str, training: dict | None, metrics: dict | None,
                 preprocessing: str | None, fp16: bool, fingerprint: str | None = None) -> dict:
    """What vaegen.json says of `model` before its files are made (they add their own).
    `fingerprint`: of the training folder's content, when `dataset` names it by a name and not its path."""
    if preprocessing is None:
        # MNIST's own preprocessing (crop the digit, centre it by mass) is for digits only.
        preprocessing = "mnist" if dataset == "mnist" and model.cfg.image_shape == (1, 28, 28) else "resize"
    return {
        "format": BUNDLE_FORMAT,
        "vaegen_version": __version__,
        "model_id": model_id(model),
        "image_shape": list(model.cfg.image_shape),
        "latent_dim": model.cfg.latent_dim,
        "likelihood": model.cfg.likelihood,
        "preprocessing": preprocessing,
        "dataset": dataset,
        # Knows the training folder again wherever it lies, so it is never scored as held-out (vaegen.data.load).
        "dataset_fingerprint": fingerprint or dataset_fingerprint(dataset),
        "architecture": model.cfg.to_dict(),
        # The grey level under transparent pixels, as the training images had it: the light commands
        # prepare a user's image the same way.
        "background": int((training or {}).get("background", 255)),
        "training": training or {},
        "metrics": metrics or {},
        "decoder_precision": "fp16" if fp16 else "fp32",
    }


@contextlib.contextmanager
def building_bundle(model: VAE, dst: str | Path, *, dataset: str = "mnist", training: dict | None = None,
                    metrics: dict | None = None, preprocessing: str | None = None,
                    fp16: bool = False, fingerprint: str | None = None) -> Iterator[Bundle]:
    """Build `model`'s bundle for `dst` in a folder beside it: both graphs,
    stamped and checked against torch; then yield it as a Bundle whose meta
    is vaegen.json to be, so the block can add records to it
    (vaegen.bundle.write.add_records: the fitted prior and the map). After
    the block, the sample grids are drawn where no prior drew them, vaegen.json
    and the card are written, each once, and the folder replaces `dst`. An
    error anywhere leaves `dst` as it was.

    With `fp16` the decoder's layers run in float16 (for GPUs); its parity
    is held to the likelihood's fp16_atol instead of PARITY_ATOL.
    """
    dst = check_folder_target(dst, "Bundle folder")
    model = model.cpu().eval()
    facts = bundle_facts(model, dataset=dataset, training=training, metrics=metrics, preprocessing=preprocessing,
                         fp16=fp16, fingerprint=fingerprint)
    try:
        with building_folder(dst) as tmp:
            build_graphs(model, tmp, facts, fp16)
            bundle = Bundle(tmp, facts)
            yield bundle
            if "prior" not in facts:
                draw_samples(Model(bundle, provider="cpu"))
            save_meta_and_card(bundle)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the exported graph: {exc}") from exc
    except OSError as exc:  # a full disk or a vanished folder while building: one line, and nothing is left
        raise OutputError(f"Cannot write the bundle {dst}: {exc.strerror or exc}.") from exc


def export_bundle(model: VAE, dst: str | Path, *, dataset: str = "mnist", training: dict | None = None,
                  metrics: dict | None = None, preprocessing: str | None = None, fp16: bool = False) -> Path:
    """Export `model` as a verified bundle folder at `dst` (building_bundle, adding nothing); return its path."""
    with building_bundle(model, dst, dataset=dataset, training=training, metrics=metrics,
                         preprocessing=preprocessing, fp16=fp16):
        pass
    return Path(dst)


def build_graphs(model: VAE, folder: Path, facts: dict, fp16: bool) -> None:
    """Both graphs in `folder`, stamped and checked against torch, and listed in `facts`."""
    cfg = model.cfg
    outputs = list(model.likelihood.outputs)
    # The tolerance of each output, as recorded and as checked: fp16's own for the half-precision decoder's.
    fp16_atol = model.likelihood.fp16_atol if fp16 else {}
    facts["parity_atol"] = {k: fp16_atol.get(k, PARITY_ATOL) for k in ("mu", "logvar", *outputs)}
    export_graph(EncoderGraph(model), torch.rand(2, *cfg.image_shape), folder / ENCODER_FILE, "image", ["mu", "logvar"])
    decoder = DecoderGraph(copy.deepcopy(model).half(), half=True) if fp16 else DecoderGraph(model)
    export_graph(decoder, torch.randn(2, cfg.latent_dim), folder / DECODER_FILE, "z", outputs)
    stamp_graph(folder / ENCODER_FILE, facts, "encoder")
    stamp_graph(folder / DECODER_FILE, facts, "decoder")
    facts["parity_max_abs_diff"] = verify_parity(model, folder / ENCODER_FILE, folder / DECODER_FILE,
                                                 atol_by_output=facts["parity_atol"])
    facts["files"] = {name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
                      for name in (ENCODER_FILE, DECODER_FILE)}
    facts["exported"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def run_facts(state: dict) -> tuple[dict, dict]:
    """What a bundle records of the run whose checkpoint is `state`: its
    training (settings, epochs, wall time, hardware) and its metrics."""
    training = dict(state.get("train_config", {}))
    training.pop("data_dir", None)
    history = state.get("history", [])
    training["epochs_trained"] = state.get("epoch")
    seconds = sum(m.get("seconds", 0.0) for m in history)
    if seconds:
        training["wall_time"] = f"{seconds / 60:.1f} min of training epochs"
        start = int(training.get("schedule_start") or 0)
        stages = [s for s in (history[:start], history[start:]) if s]
        if len(stages) > 1:
            # Epoch times on a shared machine vary; each stage's median epoch is the steady cost.
            typical = sum(len(s) * statistics.median(m.get("seconds", 0.0) for m in s) for s in stages)
            training["wall_time"] += (f" as measured; {typical / 60:.0f} min at each stage's median epoch time "
                                      f"({', '.join(str(len(s)) for s in stages)} epochs)")
    devices = sorted({m["device"] for m in history if "device" in m})
    if devices:
        processes = max(m.get("processes", 1) for m in history)
        training["trained_on"] = ", ".join(devices) + (f" ({processes} processes)" if processes > 1 else "")
    metrics = {}
    if history:
        last = history[-1]
        metrics = {k: last[k] for k in ("test_neg_elbo", "test_recon", "test_kl") if k in last}
    return training, metrics


def building_run_bundle(state: dict, dst: str | Path, *, extra_metrics: dict | None = None,
                        extra_training: dict | None = None, fp16: bool = False):
    """building_bundle for the model of a checkpoint `state` (as read, or as
    the loop last wrote it), recording its run. `extra_metrics` and
    `extra_training` (e.g. a full evaluation and the hardware it ran on)
    join what the checkpoint records."""
    training, metrics = run_facts(state)
    trained_on = training.get("dataset", "mnist")  # where the run read its images (a folder's path, as given)
    metrics.update(extra_metrics or {})
    training.update(extra_training or {})  # a shipped bundle names its folder by a name: no path of this machine
    return building_bundle(model_from_checkpoint(state), dst, dataset=training.get("dataset", "mnist"),
                           training=training, metrics=metrics, fp16=fp16, fingerprint=dataset_fingerprint(trained_on))


def export_checkpoint(checkpoint: str | Path, dst: str | Path, *, extra_metrics: dict | None = None,
                      extra_training: dict | None = None, fp16: bool = False) -> Path:
    """Load a vaegen checkpoint (weights_only) and export its bundle to `dst` (building_run_bundle)."""
    with building_run_bundle(load_checkpoint(checkpoint), dst, extra_metrics=extra_metrics,
                             extra_training=extra_training, fp16=fp16):
        pass
    return Path(dst)


def export_run(run: str | Path) -> Path:
    """Export the bundle of a training run folder to <run>/model."""
    run = Path(run)
    return export_checkpoint(run / CHECKPOINT, run / "model")
