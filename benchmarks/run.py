"""`make bench`: vaegen measured side by side, each figure a ratio.

Every figure is the median of several runs after a warm-up, the contenders
alternating run by run, so a slow moment of the machine hits both. Results go
to benchmarks/results/latest.md and latest.json.

    python benchmarks/run.py [--model weights/mnist] [--quick]

1. cold start of `vaegen sample -n 64 -o grid.png` (wall time, peak RSS)
   against a bare onnxruntime+numpy+Pillow script and a torch script;
2. decoder throughput, ONNX Runtime against torch eager (inference mode) on
   the same weights, at batch 1, 64 and 1024, and as a fraction of this
   machine's measured sgemm ceiling;
3. training seconds per epoch, the default `vaegen train` recipe and the
   shipped recipe against the classic one (MLP 784-400-20, batch 128, Adam);
4. `vaegen evaluate` at k=1000: images/s and the full test set's time;
5. time to quality: whole `vaegen train` commands (training, export, prior
   fit) against the classic recipe's 10 epochs, with test NLL (IW k=100, the
   first 2,000 test images) after every epoch against wall-clock seconds;
   a chart in benchmarks/results/time_to_quality.png.

`--sections` runs some of them and keeps the others' last results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vaegen.api import Model  # noqa: E402
from vaegen.bundle import load_bundle  # noqa: E402
from vaegen.runtime import describe_machine  # noqa: E402

THREADS = os.cpu_count() or 1


# Each child is started by this small launcher, not by the benchmark itself:
# Linux gives a new process the peak RSS of the process it was forked (or
# vforked) from, so a child of this process, which has imported torch, would
# report this process's ~270 MiB instead of its own peak.
_LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
print(json.dumps([wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), err.decode()[-2000:]]))
"""


def run_child(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, str(cwd), *cmd], capture_output=True, text=True, check=True)
    wall, rss, code, err = json.loads(out.stdout)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err}")
    return wall, rss


def alternate(contenders: dict, repeats: int, warmup: int = 1) -> dict[str, list]:
    """Run each contender in turn, `repeats` rounds after `warmup` rounds."""
    results = {name: [] for name in contenders}
    for round_ in range(warmup + repeats):
        for name, fn in contenders.items():
            value = fn()
            if round_ >= warmup:
                results[name].append(value)
    return results


def median(values):
    return statistics.median(values)


# ---------------------------------------------------------------- 1. cold start


def bench_cold_start(model_dir: Path, checkpoint: Path, repeats: int) -> dict:
    # Byte-compile vaegen as an installed wheel would be (the bare script's
    # libraries are): an editable checkout under PYTHONDONTWRITEBYTECODE
    # would otherwise compile its sources at every start.
    import compileall

    compileall.compile_dir(str(ROOT / "vaegen"), quiet=1)
    py = sys.executable
    vaegen = str(Path(py).parent / "vaegen")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        contenders = {
            "vaegen sample": lambda: run_child([vaegen, "sample", "-n", "64", "-o", "grid.png", "--model",
                                                str(model_dir), "--quiet"], tmp),
            "bare ORT script": lambda: run_child([py, str(ROOT / "benchmarks/bare_sample.py"), str(model_dir),
                                                  "bare.png"], tmp),
            "API script": lambda: run_child([py, str(ROOT / "benchmarks/api_sample.py"), str(model_dir), "api.png"], tmp),
        }
        if checkpoint.is_file():
            contenders["torch script"] = lambda: run_child(
                [py, str(ROOT / "benchmarks/torch_sample.py"), str(checkpoint), "torch.png"], tmp)
        raw = alternate(contenders, repeats)
    out = {name: {"wall_s": median([w for w, _ in v]), "peak_rss_mib": median([r for _, r in v])}
           for name, v in raw.items()}
    base = out["vaegen sample"]["wall_s"]
    out["ratio_vaegen_over_bare"] = base / out["bare ORT script"]["wall_s"]
    out["ratio_api_over_cli"] = out["API script"]["wall_s"] / base
    if "torch script" in out:
        out["ratio_torch_over_vaegen"] = out["torch script"]["wall_s"] / base
    return out


# ---------------------------------------------------------------- 2. decoder throughput


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


# ---------------------------------------------------------------- 3. training


STAGE1_ROW = "shipped recipe, stage 1"
DEFAULT_ROW = "vaegen train default (mlp, batch 256)"


def stage2_row(iw_samples: int, estimator: str = "iwae") -> str:
    return f"shipped recipe, stage 2 (IW k={iw_samples}{', DReG' if estimator == 'dreg' else ''})"


def shipped_recipe(model_dir: Path) -> dict:
    """The shipped model's stages, as its vaegen.json records them (the Makefile's `make weights`)."""
    meta = load_bundle(model_dir).meta
    training = meta.get("training", {})
    epochs, start = int(training.get("epochs", 0)), int(training.get("schedule_start") or 0)
    return {"stage_epochs": [start, epochs - start] if start else [epochs],
            "iw_samples": int(training.get("iw_samples", 1)),
            "iw_estimator": str(training.get("iw_estimator", "iwae")),
            "architecture": meta["architecture"]}


def bench_training(steps: int, repeats: int, recipe: dict) -> dict:
    import torch
    from classic_vae import Classic  # pytorch/examples' VAE, as the time-to-quality section trains it

    from vaegen.training.config import TrainConfig
    from vaegen.training.loop import adam
    from vaegen.training.model import VAE, ModelConfig
    from vaegen.training.objective import batch_loss

    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(0)
    data = torch.rand((steps * 256, 1, 28, 28), generator=gen).bernoulli()

    def timer(make_step, batch=128):
        def run():
            step = make_step()
            for i in range(3):  # warm the allocator and the kernels
                step(data[i * batch : (i + 1) * batch])
            start = time.perf_counter()
            for i in range(steps):
                step(data[i * batch : (i + 1) * batch])
            return steps * batch / (time.perf_counter() - start)
        return run

    def classic():
        model = Classic()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        noise = torch.Generator().manual_seed(1)

        def step(x):
            loss = model.loss(x, noise) / len(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    def vaegen_recipe(cfg, iw_samples=1, estimator="iwae"):
        def make():
            model = VAE(cfg)
            opt = adam(model, 1e-3)  # the training loop's optimizer
            noise = torch.Generator().manual_seed(1)

            def step(x):
                loss, _, _ = batch_loss(model, model, x, 1.0, iw_samples, noise, estimator=estimator)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return step
        return make

    shipped = ModelConfig.from_dict(recipe["architecture"])
    contenders = {
        "classic MLP 784-400-20": timer(classic),
        DEFAULT_ROW: timer(vaegen_recipe(ModelConfig()), TrainConfig().batch_size),
        "conv (the default until 2026-11)": timer(vaegen_recipe(ModelConfig(arch="conv", hidden=512))),
        STAGE1_ROW: timer(vaegen_recipe(shipped)),
    }
    if len(recipe["stage_epochs"]) > 1:
        k, estimator = recipe["iw_samples"], recipe.get("iw_estimator", "iwae")
        contenders[stage2_row(k, estimator)] = timer(
            vaegen_recipe(shipped, iw_samples=k, estimator=estimator))
    raw = alternate(contenders, repeats, warmup=0)
    out = {}
    for name, rates in raw.items():
        ips = median(rates)
        out[name] = {"images_per_s": ips, "s_per_epoch": 60000 / ips}
    base = out["classic MLP 784-400-20"]["s_per_epoch"]
    for name in out:
        out[name]["ratio_to_classic"] = out[name]["s_per_epoch"] / base
    return out


# ---------------------------------------------------------------- 4. evaluation


def bench_evaluate(model_dir: Path, images: int, data_dir: str | None) -> dict:
    from vaegen.data import binarize, load_idx_dataset
    from vaegen.metrics import evaluate

    test = load_idx_dataset("mnist", "test", data_dir)
    x = binarize(test.images[:images], seed=0)
    runtime = Model(load_bundle(model_dir), provider="cpu", threads=THREADS)
    evaluate(runtime, x[:5], k=1000)  # warm-up
    result = evaluate(runtime, x, k=1000)
    full = 10000 / result["images_per_s"]
    return {"images": images, "k": 1000, "images_per_s": result["images_per_s"], "full_test_set_s": full,
            "ratio_to_15_min_budget": full / 900}


def bench_prior_fit(model_dir: Path, data_dir: str | None) -> dict:
    """The prior fit that ends every `vaegen train`, with its default settings,
    on the shipped model's encoder: encoding the training set, then EM."""
    from vaegen.data import load_idx_dataset
    from vaegen.prior_fit import fit_prior

    train = load_idx_dataset("mnist", "train", data_dir)
    prior = fit_prior(Model(load_bundle(model_dir), provider="cpu", threads=THREADS), train)
    return {"encode_s": prior.facts["encode_seconds"], "fit_s": prior.facts["fit_seconds"],
            "components": prior.mixture.components, "classes": len(prior.classes), "fitted_on": prior.facts["fitted_on"]}


def bench_explorer() -> dict:
    """`vaegen serve`'s interaction latency, pointer event to new pixels, as
    the page's own Performance API timings measure it in Chromium."""
    from tools.screenshots import explore

    with tempfile.TemporaryDirectory() as tmp:
        latencies = explore(str(Path(tmp) / "page.png"))
    return {"moves": len(latencies), "median_ms": statistics.median(latencies),
            "p90_ms": statistics.quantiles(latencies, n=10)[-1]}


# ---------------------------------------------------------------- 5. time to quality

CLASSIC = "classic (pytorch/examples), 10 epochs"
DEFAULT = "vaegen train (the default)"
# Each a whole `vaegen train` command; the old default spelled out, so it stays itself.
TTQ_RECIPES = {
    DEFAULT: [],
    "conv, 10 epochs (the default until 2026-11)": ["--arch", "conv", "--hidden", "512", "--epochs", "10",
                                                     "--batch-size", "128", "--lr", "1e-3", "--kl-warmup", "0"],
    "shipped architecture (mlp 512, 3 decoder layers, 64-d), default schedule": [
        "--arch", "mlp", "--hidden", "512", "--decoder-layers", "3", "--latent-dim", "64"],
}


def _child_result(cmd: list[str], result: Path) -> dict:
    proc = subprocess.run(cmd, cwd=ROOT / "benchmarks", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {proc.stderr.strip()[-800:]}")
    return json.loads(result.read_text())


def bench_time_to_quality(data_dir: str | None, recipes: dict[str, list[str]], classic_epochs: int = 10) -> dict:
    """The classic script, then each recipe's whole command, one after another on a quiet machine."""
    data = ["--data-dir", str(Path(data_dir).resolve())] if data_dir else []  # the children run in benchmarks/
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        print(f"  {CLASSIC} ...", file=sys.stderr)
        out[CLASSIC] = _child_result([sys.executable, "classic_vae.py", str(result), *data,
                                      "--epochs", str(classic_epochs)], result)
        out[CLASSIC]["command"] = "python benchmarks/classic_vae.py"
        for name, args in recipes.items():
            print(f"  {name} ...", file=sys.stderr)
            run = Path(tmp) / f"run{len(out)}"
            out[name] = _child_result([sys.executable, "ttq_train.py", str(result), *data, "--",
                                       *args, "--out", str(run), "--quiet"], result)
            out[name]["command"] = " ".join(["vaegen", "train", *args])
            if name == DEFAULT:  # the curve's last point, checked by the light path on the exported bundle
                check = subprocess.run([sys.executable, "-m", "vaegen", "evaluate", "--model", str(run / "model"),
                                        "--k", "100", "--limit", "2000", "--json", "--quiet", *data],
                                       capture_output=True, text=True, check=True)
                out[name]["evaluate_nll"] = json.loads(check.stdout)["nll"]
    base = out[CLASSIC]["whole_s"]
    for row in out.values():
        row["nll"] = row["points"][-1]["nll"]
        row["ratio_to_classic"] = row["whole_s"] / base
    return out


def ttq_chart(ttq: dict, path: Path) -> None:
    from vaegen.plot import line_chart

    # Each epoch's end, then the end of the whole command (export and prior fit).
    series = {name: [(p["seconds"], p["nll"]) for p in row["points"]] + [(row["whole_s"], row["points"][-1]["nll"])]
              for name, row in ttq.items()}
    longest = max(row["whole_s"] for row in ttq.values())
    line_chart(series, x_range=(0, longest * 1.05), y_range=(85, 110),
               title="Test NLL (IW k=100, 2,000 MNIST test images) against wall-clock seconds: each epoch, "
                     "then the command's end",
               axes=("seconds since the command started (2-core CPU)", "NLL, nats"),
               guides={"90 nats": 90.0}).save(path)


# ---------------------------------------------------------------- report


def markdown(r: dict) -> str:
    c, d, t, e = r["cold_start"], r["decoder"], r["training"], r.get("evaluate")
    lines = [f"Measured {r['date']} on {r['machine']} (`make bench`; medians of {r['repeats']} alternating runs).", ""]
    if set(r.get("sections_run", SECTIONS)) != set(SECTIONS):
        lines += [f"This run measured {', '.join(r['sections_run'])} (`make bench BENCH_ARGS=--sections=...`); "
                  "the other figures are from the run before it.", ""]
    lines += [f"**Cold start**, `vaegen sample -n 64 -o grid.png` (medians of {r.get('cold_repeats', r['repeats'])} "
              "alternating runs):", "",
              "| program | wall time | peak RSS |", "|---|---|---|"]
    for name in ("vaegen sample", "API script", "bare ORT script", "torch script"):
        if name in c:
            lines.append(f"| {name} | {c[name]['wall_s']:.3f} s | {c[name]['peak_rss_mib']:.0f} MiB |")
    lines += ["", f"vaegen / bare script: **{c['ratio_vaegen_over_bare']:.2f}x** the time"]
    if "ratio_api_over_cli" in c:
        lines[-1] += f"; the API script (`load_model().sample(64)`, `save_grid`) / vaegen: **{c['ratio_api_over_cli']:.2f}x**"
    if "ratio_torch_over_vaegen" in c:
        lines[-1] += f"; torch script / vaegen: **{c['ratio_torch_over_vaegen']:.1f}x** slower"
    lines += ["", f"**Decoder throughput** (images/s; sgemm ceiling {d['sgemm_gflops']:.1f} GFLOP/s, "
              f"decoder {d['decoder_mflops_per_image']:.2f} MFLOP/image):", "",
              "| batch | ONNX Runtime | torch eager | ORT / torch | ORT share of ceiling |", "|---|---|---|---|---|"]
    for batch, row in d["batches"].items():
        lines.append(f"| {batch} | {row['ort_images_per_s']:,.0f} | {row['torch_images_per_s']:,.0f} | "
                     f"{row['ratio_ort_over_torch']:.2f}x | {row['ort_fraction_of_ceiling']:.0%} |")
    lines += ["", "**Training** (seconds per 60,000-image epoch; the model's step alone, batch 128 unless named):", "",
              "| recipe | s/epoch | images/s | vs classic |", "|---|---|---|---|"]
    for name, row in t.items():
        lines.append(f"| {name} | {row['s_per_epoch']:.1f} | {row['images_per_s']:,.0f} | {row['ratio_to_classic']:.2f}x |")
    recipe = r.get("recipe")
    if recipe and len(recipe["stage_epochs"]) == 2:
        (first, second), k = recipe["stage_epochs"], recipe["iw_samples"]
        second_row = stage2_row(k, recipe.get("iw_estimator", "iwae"))
        minutes = (first * t[STAGE1_ROW]["s_per_epoch"] + second * t[second_row]["s_per_epoch"]) / 60
        lines += ["", f"`make weights` ({first} epochs, then {second} at k={k}) at these rates: "
                      f"**{minutes:.0f} min** of training."]
    explorer = r.get("explorer")
    if explorer:
        lines += ["", f"**Explorer** (`vaegen serve`, Chromium): pointer event to new pixels over {explorer['moves']} "
                      f"moves of a drag across the map, median **{explorer['median_ms']:.1f} ms**, "
                      f"p90 {explorer['p90_ms']:.1f} ms."]
    fit = r.get("prior_fit")
    if fit:
        lines += ["", f"**Prior fit** (the end of every `vaegen train`, default settings, on this model): "
                      f"{fit['fit_s']:.1f} s in all ({fit['encode_s']:.1f} s encoding the training set), "
                      f"{fit['components']} components and {fit['classes']} class mixtures, on the {fit['fitted_on']}."]
    if e:
        lines += ["", f"**Evaluation** at k=1000: {e['images_per_s']:.1f} images/s, so the full 10,000-image test "
                  f"set takes {e['full_test_set_s'] / 60:.1f} min "
                  f"({e['ratio_to_15_min_budget']:.2f}x the 15-minute budget)."]
    ttq = r.get("time_to_quality")
    if ttq:
        lines += ["", "**Time to quality**: whole commands (training, export, prior fit; `vaegen train` rows fit "
                      "the prior at their end), one after another; test NLL by IW k=100 on the first 2,000 MNIST "
                      "test images (the clock stops while a point is measured):", "",
                  "| recipe | command | wall time | vs classic | NLL |", "|---|---|---|---|---|"]
        for name, row in ttq.items():
            lines.append(f"| {name} | `{row['command']}` | {row['whole_s']:.0f} s | {row['ratio_to_classic']:.2f}x "
                         f"| {row['nll']:.2f} |")
        default = ttq.get(DEFAULT, {})
        if "evaluate_nll" in default:
            lines += ["", f"The default's bundle by `vaegen evaluate --k 100 --limit 2000` (ONNX Runtime): "
                          f"{default['evaluate_nll']:.2f} nats."]
        lines += ["", "![time to quality](time_to_quality.png)"]
    return "\n".join(lines) + "\n"


SECTIONS = ("cold", "decoder", "training", "explorer", "prior", "evaluate", "ttq")


def _optional(report: dict, key: str, label: str, measure) -> None:
    """Sections that need MNIST or Chromium: without them the table says so instead of failing."""
    try:
        print(f"{label} ...", file=sys.stderr)
        report[key] = measure()
    except Exception as exc:
        report[key] = None
        print(f"{label} skipped: {exc}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "weights" / "mnist")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint for the torch cold-start script [default: made from the bundle's weights]")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cold-repeats", type=int, default=15,
                        help="rounds of the cold-start race (each under half a second for vaegen; noise needs many)")
    parser.add_argument("--eval-images", type=int, default=300)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated, of: " + ", ".join(SECTIONS) + "; the others keep their last results")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(sections - set(SECTIONS)))}")
    repeats = 3 if args.quick else args.repeats
    cold_repeats = 3 if args.quick else args.cold_repeats
    results = ROOT / "benchmarks" / "results"
    previous = results / "latest.json"
    report = json.loads(previous.read_text()) if previous.is_file() and sections != set(SECTIONS) else {}
    report.update({"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(), "repeats": repeats,
                   "cold_repeats": cold_repeats, "model": str(args.model), "recipe": shipped_recipe(args.model),
                   "sections_run": sorted(sections)})
    if "cold" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = args.checkpoint
            if checkpoint is None:
                import torch

                from vaegen.training.checkpoint import CHECKPOINT_FORMAT

                model = torch_decoder(args.model)
                checkpoint = Path(tmp) / "checkpoint.pt"
                torch.save({"format": CHECKPOINT_FORMAT, "model_config": model.cfg.to_dict(),
                            "model": model.state_dict()}, checkpoint)
            print("cold start ...", file=sys.stderr)
            report["cold_start"] = bench_cold_start(args.model, checkpoint, cold_repeats)
    if "decoder" in sections:
        print("decoder throughput ...", file=sys.stderr)
        report["decoder"] = bench_decoder(args.model, repeats)
    if "training" in sections:
        print("training ...", file=sys.stderr)
        report["training"] = bench_training(steps=20 if args.quick else 60, repeats=3, recipe=report["recipe"])
    if "explorer" in sections:
        _optional(report, "explorer", "explorer latency", bench_explorer)
    if "prior" in sections:
        _optional(report, "prior_fit", "prior fit", lambda: bench_prior_fit(args.model, args.data_dir))
    if "evaluate" in sections:
        _optional(report, "evaluate", "evaluation",
                  lambda: bench_evaluate(args.model, 50 if args.quick else args.eval_images, args.data_dir))
    results.mkdir(exist_ok=True)
    if "ttq" in sections:
        recipes = {DEFAULT: ["--epochs", "2"]} if args.quick else TTQ_RECIPES
        _optional(report, "time_to_quality", "time to quality (whole training runs, about 25 min)",
                  lambda: bench_time_to_quality(args.data_dir, recipes, classic_epochs=1 if args.quick else 10))
        if report["time_to_quality"]:
            ttq_chart(report["time_to_quality"], results / "time_to_quality.png")
    (results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (results / "latest.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
