"""The report of `make bench`: SECTIONS, its parts in the order they are
measured; `markdown`, latest.md written from latest.json's dict; `ttq_chart`,
the time-to-quality picture.

Imports training and ttq for the row names it looks up, and (inside
ttq_chart) vaegen.plot.
"""

from __future__ import annotations

from pathlib import Path

from training import STAGE1_ROW, stage2_row
from ttq import DEFAULT

SECTIONS = ("cold", "decoder", "training", "explorer", "prior", "evaluate", "folders", "score", "ttq", "colour")


def markdown(r: dict) -> str:
    """r: the report as latest.json holds it. The cold start, decoder and
    training figures are required; the others are left out where r lacks them
    or holds None (a skipped section)."""
    lines = [f"Measured {r['date']} on {r['machine']} (`make bench`; medians of {r['repeats']} alternating runs).", ""]
    if set(r.get("sections_run", SECTIONS)) != set(SECTIONS):
        lines += [f"This run measured {', '.join(r['sections_run'])} (`make bench BENCH_ARGS=--sections=...`); "
                  "the other figures are from the run before it.", ""]
    lines += _cold_start(r["cold_start"], r.get("cold_repeats", r["repeats"]))
    lines += _decoder(r["decoder"])
    lines += _training(r["training"], r.get("recipe"))
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
    e = r.get("evaluate")
    if e:
        lines += ["", f"**Evaluation** at k=1000: {e['images_per_s']:.1f} images/s, so the full 10,000-image test "
                  f"set takes {e['full_test_set_s'] / 60:.1f} min "
                  f"({e['ratio_to_15_min_budget']:.2f}x the 15-minute budget)."]
    if r.get("folders"):
        lines += _folders(r["folders"])
    if r.get("score"):
        lines += _score(r["score"])
    if r.get("time_to_quality"):
        lines += _time_to_quality(r["time_to_quality"])
    if r.get("colour"):
        lines += _colour(r["colour"])
    return "\n".join(lines) + "\n"


def _folders(f: dict) -> list[str]:
    d, t, m = f["decode"], f["training"], f["memory"]
    lines = ["", f"**Image folders** (benchmarks/folders.py): the first decode of {d['jpegs']:,} camera-sized JPEGs "
                 f"(1024x768) into 64x64 took {d['first_decode_s']:.1f} s on {d['cores']} cores, "
                 f"**{d['ratio_first_over_loop']:.2f}x** a one-process Pillow loop ({d['one_process_s']:.1f} s); "
                 f"the cached start {d['cached_start_s'] * 1000:.0f} ms, **{d['ratio_cached_over_first']:.3f}x** the "
                 f"first. One epoch on {t['images']:,} 64x64 RGB images: {t['memory_mapped_images_per_s']:.0f} "
                 f"images/s from the memory-mapped cache against {t['in_memory_images_per_s']:.0f} from an "
                 f"in-memory array (**{t['ratio_mapped_over_memory']:.2f}x**)."]
    for run in (m if isinstance(m, list) else [m]):
        lines.append(f"A whole `vaegen train --epochs 1 {run.get('model_args', '')}` on {run['images']:,} 64x64 RGB PNGs "
                     f"({run['uint8_mib']:.0f} MiB as uint8) peaked at **{run['peak_anon_mib']:.0f} MiB** of "
                     f"private memory ({run['seconds']:.0f} s).")
    return lines


def _colour(c: dict) -> list[str]:
    """vaegen's default colour recipe against the anchor (benchmarks/anchor.py)."""
    ours, theirs = c["vaegen"], c["anchor"]
    lines = ["", f"**Colour** (benchmarks/anchor.py): on the {c['dataset']} folder, vaegen's default colour command "
                 f"(`{ours['recipe']}`, {c['seconds'] / 60:.1f} min in all) against PyTorch-VAE's VanillaVAE recipe "
                 f"trained for as long ({theirs['epochs']:.1f} epochs), both judged by the folder's judge on "
                 f"{c['images']} images a row (Frechet distance, lower is better):", "",
             "| images | vaegen | anchor | vaegen / anchor |", "|---|---|---|---|"]
    for row, value in ours["frechet_distance"].items():
        other = theirs["frechet_distance"].get(row)
        ratio = c["fd_ratio"].get(row, float("nan"))
        lines.append(f"| {row} | {value:.2f} | {other:.2f} | " +
                     ("(the floor) |" if row == "real held-out" else f"**{ratio:.2f}x** |"))
    lines += ["", f"Training throughput: {ours['images_per_s']:.0f} against {theirs['images_per_s']:.0f} images/s "
                  f"(**{c['throughput_ratio']:.2f}x**)."]
    if theirs.get("prior_components"):
        fits = ", ".join(f"{k} components {v:.2f}" for k, v in theirs["prior_components"].items())
        lines.append(f"The anchor's fitted-prior row is the better of its mixtures ({fits}).")
    return lines


def _score(s: dict) -> list[str]:
    lines = ["", f"**Scoring** at the default k={s['k']} (`vaegen score`, OOD score {s['score']}), beside "
             f"`vaegen evaluate` at the same k on the same test images (images/s):", "",
             "| model | images | score | evaluate | score / evaluate |", "|---|---|---|---|---|"]
    for name, m in s["models"].items():
        lines.append(f"| {name} | {m['images']} | {m['score_images_per_s']:.1f} | {m['evaluate_images_per_s']:.1f} | "
                     f"{m['ratio_score_over_evaluate']:.2f}x |")
    return lines


def _cold_start(c: dict, repeats: int) -> list[str]:
    lines = [f"**Cold start**, `vaegen sample -n 64 -o grid.png` (medians of {repeats} alternating runs):", "",
             "| program | wall time | peak RSS |", "|---|---|---|"]
    for name in ("vaegen sample", "API script", "bare ORT script", "torch script"):
        if name in c:
            lines.append(f"| {name} | {c[name]['wall_s']:.3f} s | {c[name]['peak_rss_mib']:.0f} MiB |")
    lines += ["", f"vaegen / bare script: **{c['ratio_vaegen_over_bare']:.2f}x** the time"]
    if "ratio_api_over_cli" in c:
        lines[-1] += f"; the API script (`load_model().sample(64)`, `save_grid`) / vaegen: **{c['ratio_api_over_cli']:.2f}x**"
    if "ratio_torch_over_vaegen" in c:
        lines[-1] += f"; torch script / vaegen: **{c['ratio_torch_over_vaegen']:.1f}x** slower"
    return lines


def _decoder(d: dict) -> list[str]:
    lines = ["", f"**Decoder throughput** (images/s; sgemm ceiling {d['sgemm_gflops']:.1f} GFLOP/s, "
             f"decoder {d['decoder_mflops_per_image']:.2f} MFLOP/image):", "",
             "| batch | ONNX Runtime | torch eager | ORT / torch | ORT share of ceiling |", "|---|---|---|---|---|"]
    for batch, row in d["batches"].items():
        lines.append(f"| {batch} | {row['ort_images_per_s']:,.0f} | {row['torch_images_per_s']:,.0f} | "
                     f"{row['ratio_ort_over_torch']:.2f}x | {row['ort_fraction_of_ceiling']:.0%} |")
    return lines


def _training(t: dict, recipe: dict | None) -> list[str]:
    """The training table, and `make weights`' minutes at its rates when both stages' rows are there."""
    lines = ["", "**Training** (seconds per 60,000-image epoch; the model's step alone, batch 128 unless named):", "",
             "| recipe | s/epoch | images/s | vs classic |", "|---|---|---|---|"]
    for name, row in t.items():
        lines.append(f"| {name} | {row['s_per_epoch']:.1f} | {row['images_per_s']:,.0f} | {row['ratio_to_classic']:.2f}x |")
    if recipe and len(recipe["stage_epochs"]) == 2:
        (first, second), k = recipe["stage_epochs"], recipe["iw_samples"]
        second_row = stage2_row(k, recipe.get("iw_estimator", "iwae"))
        if STAGE1_ROW in t and second_row in t:
            minutes = (first * t[STAGE1_ROW]["s_per_epoch"] + second * t[second_row]["s_per_epoch"]) / 60
            lines += ["", f"`make weights` ({first} epochs, then {second} at k={k}) at these rates: "
                          f"**{minutes:.0f} min** of training."]
    return lines


def _time_to_quality(ttq: dict) -> list[str]:
    lines = ["", "**Time to quality**: whole commands (training, export, prior fit; `vaegen train` rows fit "
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
    return lines + ["", "![time to quality](time_to_quality.png)"]


def ttq_chart(ttq: dict, path: Path) -> None:
    """ttq: the report's time_to_quality dict; the chart is saved as `path` (PNG)."""
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
