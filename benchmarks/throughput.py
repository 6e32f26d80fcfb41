"""`make bench` section "decoder": decoder throughput, ONNX Runtime against
torch eager (inference mode) on the very weights of decoder.onnx, at batch 1,
64 and 1024, and as a fraction of this machine's measured sgemm ceiling.
Also `torch_decoder`, that torch copy of the bundle's decoder.

Imports timing, vaegen's bundle and runtime API, and (inside the functions)
torch, onnx and vaegen.training.model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from timing import THREADS, alternate, median

from vaegen.api import Model
from vaegen.bundle.read import load_bundle


def sgemm_gflops() -> float:
    import torch

    torch.set_num_threads(THREADS)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return best


def decoder_flops(model_dir: Path) -> int:
    """FLOPs per image of decoder.onnx's dense layers (2 per multiply-add)."""
    import onnx

    graph = onnx.load(str(model_dir / "decoder.onnx")).graph
    dims = {i.name: list(i.dims) for i in graph.initializer}
    flops = 0
    for node in graph.node:
        if node.op_type in ("Gemm", "MatMul"):
            shape = next(dims[name] for name in node.input[1:2] if name in dims)
            flops += 2 * shape[0] * shape[1]
        elif node.op_type in ("Conv", "ConvTranspose"):
            raise SystemExit("decoder_flops counts dense decoders; this one has convolutions")
    return flops


def torch_decoder(model_dir: Path):
    """A torch VAE holding the very weights of decoder.onnx."""
    import onnx
    import torch
    from onnx import numpy_helper

    from vaegen.training.model import VAE, ModelConfig

    meta = load_bundle(model_dir).meta
    model = VAE(ModelConfig.from_dict(meta["architecture"])).eval()
    weights = {i.name.removeprefix("vae."): torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(str(model_dir / "decoder.onnx")).graph.initializer}
    state = model.state_dict()
    decoder_keys = [k for k in state if k.startswith("decoder.")]
    missing = [k for k in decoder_keys if k not in weights]
    if missing:
        raise SystemExit(f"cannot map decoder.onnx onto torch: missing {missing}")
    model.load_state_dict({**state, **{k: weights[k] for k in decoder_keys}})
    return model


def bench_decoder(model_dir: Path, repeats: int) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    runtime = Model(load_bundle(model_dir), provider="cpu", threads=THREADS, batch_size=1 << 20)
    session = runtime.decoder
    model = torch_decoder(model_dir)
    d = runtime.bundle.latent_dim
    flops = decoder_flops(model_dir)
    ceiling = sgemm_gflops()
    rows = {}
    for batch in (1, 64, 1024):
        z = np.random.default_rng(0).standard_normal((batch, d), dtype=np.float32)
        zt = torch.from_numpy(z)
        with torch.inference_mode():
            np.testing.assert_allclose(session.run(["probs"], {"z": z})[0], torch.sigmoid(model.decode(zt)).numpy(),
                                       atol=1e-4)
        calls = max(1, 2048 // batch)

        def ort_rate(z=z, calls=calls, batch=batch):
            start = time.perf_counter()
            for _ in range(calls):
                session.run(["probs"], {"z": z})
            return calls * batch / (time.perf_counter() - start)

        def torch_rate(zt=zt, calls=calls, batch=batch):
            with torch.inference_mode():
                start = time.perf_counter()
                for _ in range(calls):
                    torch.sigmoid(model.decode(zt))
                return calls * batch / (time.perf_counter() - start)

        raw = alternate({"ort": ort_rate, "torch": torch_rate}, repeats, warmup=2)
        ort_ips, torch_ips = median(raw["ort"]), median(raw["torch"])
        rows[str(batch)] = {
            "ort_images_per_s": ort_ips,
            "torch_images_per_s": torch_ips,
            "ratio_ort_over_torch": ort_ips / torch_ips,
            "ort_fraction_of_ceiling": ort_ips * flops / (ceiling * 1e9),
        }
    return {"sgemm_gflops": ceiling, "decoder_mflops_per_image": flops / 1e6, "batches": rows}
