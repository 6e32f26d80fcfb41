"""A bundle's model card (its README.md), written from its vaegen.json alone.

One writer for every stage that changes a bundle: the export, the prior fit
(`vaegen fit-prior`, the end of `vaegen train`) and tools/ship.py each update
vaegen.json and then write the card anew from it, so the card never says
what the metadata does not. Standard library, and the likelihoods and
architectures as the light side knows them (vaegen.likelihoods, vaegen.archs), only.
"""

from __future__ import annotations

from vaegen.archs import ARCH_SETTINGS
from vaegen.likelihoods import LIKELIHOODS

PER_CLASS_PICTURE = "samples_per_class.png"
# The rows of a sample-quality table (vaegen.evaluation.judges.compare_priors), and the order the card shows them in.
REAL, RECONSTRUCTIONS, FITTED, PER_CLASS, STANDARD = (
    "real held-out", "reconstructions", "fitted prior", "fitted prior, per class", "standard prior")
ROWS = (REAL, RECONSTRUCTIONS, FITTED, PER_CLASS, STANDARD)
TRAINING_KEYS = ("dataset", "epochs", "batch_size", "lr", "lr_schedule", "schedule_start", "beta", "kl_warmup",
                 "binarize", "iw_samples", "iw_estimator", "seed", "flip", "background", "skipped_files")


def model_card(meta: dict) -> str:
    """The README.md of the bundle whose vaegen.json is `meta`."""
    arch, likelihood = meta["architecture"], LIKELIHOODS.get(meta.get("likelihood", "bernoulli"))
    lines = [
        f"# vaegen model: {meta['dataset']}, {arch['arch']} VAE, {meta['latent_dim']}-d latent",
        "",
        "![64 samples](samples.png)",
        "",
        f"A variational autoencoder with a {arch['arch']} encoder and decoder, a {meta['latent_dim']}-dimensional "
        f"Gaussian latent and {likelihood.description if likelihood else meta.get('likelihood')}, "
        f"for {'x'.join(map(str, meta['image_shape']))} images. Made by vaegen; run it with "
        "`vaegen sample --model <this folder>`.",
        "",
        *_training(meta),
        *_data_licence(meta.get("training", {})),
        *_metrics(meta.get("metrics", {}), bool(likelihood and likelihood.binarized)),
    ]
    if meta.get("prior"):
        lines += _prior(meta["prior"], meta["dataset"])
    if meta.get("calibration"):
        lines += _calibration(meta["calibration"], meta.get("ood"))
    if meta.get("map"):
        facts = meta["map"]
        lines += ["## Latent map", "", f"`vaegen map` and `vaegen serve` show the latent means of {facts['images']} "
                  f"held-out {facts['dataset']} images ({facts['method']} projection), kept in {facts['file']}: "
                  "they need no dataset.", ""]
    lines += [f"Bundle format {meta['format']}, vaegen {meta['vaegen_version']}, model id {meta['model_id']}.", ""]
    return "\n".join(lines)


def _training(meta: dict) -> list[str]:
    training, arch = meta.get("training", {}), meta["architecture"]
    lines = ["## How it was trained", ""]
    if training.get("command"):
        lines += ["```", training["command"], "```", ""]
    shape = ARCH_SETTINGS.get(arch["arch"], ())
    lines.append("- architecture: " + ", ".join(f"{k} {arch[k]}" for k in ("arch", *shape) if k in arch))
    lines += [f"- {k}: {training[k]}" for k in TRAINING_KEYS if k in training]
    lines += [f"- {k.replace('_', ' ')}: {training[k]}" for k in ("wall_time", "trained_on", "hardware", "evaluated_on")
              if k in training]
    return lines + [""]


def _data_licence(training: dict) -> list[str]:
    """Where the training images came from and their licences (a shipped model of others' designs names them)."""
    if not training.get("data_source") and not training.get("data_licences"):
        return []
    lines = ["## Training data and its licences", ""]
    if training.get("data_source"):
        lines += [training["data_source"], ""]
    lines += [f"- {line}" for line in training.get("data_licences", [])]
    return lines + [""]


def _metrics(metrics: dict, binarized: bool) -> list[str]:
    data = "binarized test images" if binarized else "8-bit test images"
    lines = [f"## Metrics (nats per image of the {data}; bits per dimension where named)", ""]
    if not metrics:
        return lines + ["No metrics recorded.", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) and "bits" in key else (
            f"{value:.2f}" if isinstance(value, float) else value)
        lines.append(f"| {key} | {shown} |")
    return lines + [""]


def _prior(facts: dict, dataset: str) -> list[str]:
    lines = [
        "## Fitted prior", "",
        f"`vaegen sample` draws from a Gaussian mixture of {facts['components']} components "
        f"({facts['covariance_type']} covariances) fitted to the {facts['fitted_on']}, not from N(0, I): "
        "prior draws then land where the decoder has learned to draw (`--prior standard` draws from N(0, I)).",
    ]
    if facts.get("classes"):
        lines += ["", f"One mixture of {facts['class_components']} components per class "
                  f"({', '.join(facts['classes'])}) gives `vaegen sample --label L` and `--per-label N`, "
                  + (f"each fitted twice, the second time without the codes its class explains with "
                     f"p(class | z) < {facts['purity']}; " if facts.get("purity") else "")
                  + "here a row per class:", "", f"![ten of each class]({PER_CLASS_PICTURE})"]
    lines += ["", f"Fitted in {facts['fit_seconds']} s (encoding {facts['encode_seconds']} s), seed {facts['seed']}.", ""]
    if facts.get("quality"):
        lines += ["### Sample quality", "", f"`{facts.get('quality_command', 'vaegen evaluate --samples N')}`: "
                  f"the judge is a small {dataset} classifier (weights/judges/{dataset}) that never saw the "
                  "reference images or the real held-out ones; lower Frechet distance is better, and the real "
                  "row is the floor.", "",
                  "| images | Frechet distance | confident (p >= 0.9) | inception score | label agreement |",
                  "|---|---|---|---|---|"]
        quality = facts["quality"]  # vaegen.json keeps keys sorted: the rows go floor first, as evaluate prints them
        order = [n for n in ROWS if n in quality] + [n for n in quality if n not in ROWS]
        for name, row in ((n, quality[n]) for n in order):
            agreement = f"{row['label_agreement']:.1%}" if "label_agreement" in row else "-"
            lines.append(f"| {name} | {row['frechet_distance']:.2f} | {row['confident_share']:.1%} | "
                         f"{row['inception_score']:.2f} | {agreement} |")
        lines.append("")
    return lines


def _calibration(facts: dict, ood: dict | None) -> list[str]:
    binarized = (f", binarized with seed {facts['binarized_with']}" if facts.get("binarized_with") is not None else "")
    lines = ["## Per-image scores", "",
             f"`vaegen score` gives each image its bits/dim (the importance-weighted bound, k={facts['k']}, seed "
             f"{facts['seed']}), out-of-distribution scores, and a score's percentile among {facts['images']} "
             f"held-out {facts.get('dataset', '')} images{binarized}, whose quantiles {facts['file']} keeps "
             f"({', '.join(facts['scores'])}; compressor {facts.get('compressor', 'unrecorded')}). An image above "
             "the 99th percentile is flagged."]
    if not ood:
        return lines + [""]
    unseen = ood.get("flagged_unseen_held_out")
    if unseen:
        lines[-1] += (f" Of the {unseen['images']} held-out images the calibration did not see, "
                      f"{unseen['share']:.1%} were flagged at the {unseen['flag_above']:g}th.")
    sets = list(ood["sets"])
    lines += ["", f"Out-of-distribution detection, `{ood['command']}`: AUROC / false-positive rate at 95% "
              f"true-positive rate, {ood['images']} held-out images against {ood['images']} of each set, "
              f"k={ood['k']}" + (f"; `{ood['default']}` is the default score." if ood.get("default") else "."), "",
              "| score | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for score in ood["sets"][sets[0]]:
        cells = [ood["sets"][name].get(score) for name in sets]
        lines.append(f"| {score} | " + " | ".join(f"{c['auroc']:.3f} / {c['fpr_at_95_tpr']:.3f}" if c else "-"
                                                  for c in cells) + " |")
    return lines + [""]
