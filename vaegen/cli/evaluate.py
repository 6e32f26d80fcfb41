"""`vaegen evaluate`: a model's likelihood on held-out data, or (--samples) the
quality of its samples as a judge classifier sees them."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import SPLITS
from vaegen.cli import options


def _sample_report(model, dataset, source, split, n, seed, judge_path, quiet, as_json) -> None:
    """--samples: Frechet distance, confident share, inception score and label agreement, per prior.
    `source` is (--data-dir, --skip-bad)."""
    data_dir, skip_bad = source
    from vaegen.evaluation.judges import compare_priors, judging_data, load_judge

    judge = load_judge(judge_path, dataset=dataset, provider=model.provider, threads=model.threads)
    with options.DataProgress(f"loading {dataset}", quiet) as loading:
        real = judging_data(model, judge, dataset, data_dir, split=split, progress=loading, skip_bad=skip_bad)
    options.echo_err(f"judging {n} images from each prior and {min(n, len(real['real_images']))} real ones ...", quiet)
    rows = compare_priors(model, judge, n=n, seed=seed, **real)
    lines = [f"sample quality by the judge ({judge.meta.get('dataset', '?')} classifier), "
             f"against {len(real['reference_images'])} real {dataset} training images it never saw:",
             f"{'':26s} {'Frechet':>8s} {'confident':>9s} {'IS':>6s} {'label agreement':>15s}"]
    for name, row in rows.items():
        agreement = f"{row['label_agreement']:.1%}" if "label_agreement" in row else "-"
        lines.append(f"{name:26s} {row['frechet_distance']:8.2f} {row['confident_share']:9.1%} "
                     f"{row['inception_score']:6.2f} {agreement:>15s}")
        if "class_agreement" in row:
            worst = min(row["class_agreement"], key=row["class_agreement"].get)
            lines.append(f"{'':26s} worst class: {worst} {row['class_agreement'][worst]:.1%}")
    options.emit({"model": str(model.bundle.path), "samples": n, "seed": seed, "dataset": dataset, "split": split,
                  "judge": judge.meta.get("model_id"), "quality": rows}, as_json, lines)


def _ood_report(model, dataset, data_dir, split, sets, k, limit, seed, quiet, as_json) -> None:
    """--ood: AUROC, AUPRC and FPR at 95% TPR of each score, held-out images against each set."""
    from vaegen.data.load import load_for_model
    from vaegen.evaluation.detection import ood_images, ood_report

    with options.DataProgress(f"loading {dataset}", quiet) as loading:
        data = load_for_model(dataset, split, data_dir, model.image_shape, progress=loading)
        held_out = data.images[:limit] if limit else data.images[:]
        chosen = {name: ood_images(name, model, held_out, data_dir=data_dir, limit=limit, seed=seed, progress=loading)
                  for name in sets}
    total = len(held_out) + sum(len(images) for images in chosen.values())
    with options.progress(total, f"scoring k={k}", quiet) as bar:
        report = ood_report(model, held_out, chosen, k=k, seed=seed, progress=bar.update)
    report.update({"model": str(model.bundle.path), "dataset": dataset, "split": split})
    lines = [f"in-distribution: {report['in']['images']} {dataset} {split} images, "
             f"{report['in']['mean_bits_per_dim']:.4f} bits/dim (k={k}, seed {seed})",
             f"{'set':22s} {'images':>6s} {'bits/dim':>8s}  {'score':18s} {'AUROC':>6s} {'AUPRC':>6s} {'FPR95':>6s}"]
    for name, row in report["sets"].items():
        first = f"{name[:22]:22s} {row['images']:6d} {row['mean_bits_per_dim']:8.4f}"
        for i, (score, figures) in enumerate(row["scores"].items()):
            lines.append(f"{first if i == 0 else '':38s}  {score:18s} {figures['auroc']:6.3f} {figures['auprc']:6.3f} "
                         f"{figures['fpr_at_95_tpr']:6.3f}")
    if model.calibration is None:
        lines.append(f"(scores that need a calibration are left out: add one with `vaegen fit-prior {model.bundle.path}`)")
    options.emit(report, as_json, lines)


@click.command()
@options.data_options()
@click.option("--split", type=click.Choice(SPLITS), default="test",
              help="Which split to score: the held-out images (a named dataset's test split, every 10th image of "
                   "the model's own folder; a folder it never saw is scored whole), or the training ones.")
@click.option("--k", "k", type=click.IntRange(min=1), default=1000, help="Importance samples per image.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N images. [default: all]")
@click.option("--samples", type=click.IntRange(min=2), default=None,
              help="Instead of the likelihood, judge N generated images from each prior (and N real ones): "
                   "Frechet distance, confident share, inception score, label agreement.")
@click.option("--judge", "judge_path", type=click.Path(path_type=Path), default=None,
              help="Judge classifier folder for --samples. [default: $VAEGEN_JUDGE, else the shipped judge of "
                   "the dataset, weights/judges/<dataset>]")
@click.option("--ood", "ood_sets", multiple=True, metavar="DATASET_OR_FOLDER",
              help="Instead of the likelihood, tell the held-out images from this set: AUROC, AUPRC and the "
                   "false-positive rate at 95% true-positive rate of raw bits/dim and each OOD score. A named "
                   "dataset (its test split), a folder, or upside-down / noise (made from the held-out images); "
                   "repeat for more sets. --k then defaults to the bundle's calibration's.")
@click.option("--seed", type=int, default=0,
              help="Seed of the importance samples (or of the generated images, or of --ood noise).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@options.model_options
@options.quiet_option
def evaluate(dataset, data_dir, skip_bad, split, k, limit, samples, judge_path, ood_sets, seed, as_json, model_dir,
             provider, threads, verbose, quiet):
    """Score a model on held-out data: negative ELBO, importance-weighted NLL
    (Burda et al. 2015) and active units, in nats per image, and the NLL in
    bits per dimension.

    The likelihood is the model's: for a Bernoulli model the images are
    binarized once with a fixed seed; a logistic model scores their 256
    levels as they are (bits/dim is then the unit papers give for 8-bit images).

    With --ood SET it measures out-of-distribution detection instead: the
    held-out images (in) against SET (out), scored as `vaegen score` scores
    them (docs/ood.md).

    With --samples N it scores what the model draws instead, as a small
    classifier of the dataset (its judge, shipped in weights/judges) sees it:
    the Frechet distance of the judge's features to real training images it
    never saw (lower is better), the share of images it labels with p >= 0.9,
    the inception score, and for class-conditional draws the share given the
    asked class. Real held-out images give the floor, and reconstructions of
    them (decoded posterior means) the decoder's limit.

    \b
    Example:
        vaegen evaluate --limit 500 --k 100
        vaegen evaluate --json > metrics.json
        vaegen evaluate --samples 10000
        vaegen evaluate --model fashion-mnist --ood mnist --ood upside-down --limit 1000
    """
    from vaegen.data.load import model_dataset, model_split

    if samples is not None and ood_sets:
        raise click.UsageError("--ood and --samples each make their own report; choose one.")
    model = options.open_model(model_dir, provider, threads, verbose)
    dataset = model_dataset(dataset, model.bundle.dataset)
    if samples is not None:
        return _sample_report(model, dataset, (data_dir, skip_bad), split, samples, seed, judge_path, quiet, as_json)
    split = model_split(dataset, split, model.bundle.meta)  # a folder the model never saw is scored whole
    if ood_sets:
        from vaegen.evaluation.scores import DEFAULT_K

        calibrated_k = model.calibration.k if model.calibration is not None else DEFAULT_K
        k = k if options.given_any("k") else calibrated_k
        return _ood_report(model, dataset, data_dir, split, ood_sets, k, limit, seed, quiet, as_json)
    _likelihood_report(model, dataset, split, (data_dir, skip_bad), k, limit, seed, quiet, as_json)


def _likelihood_report(model, dataset, split, source, k, limit, seed, quiet, as_json) -> None:
    """The default report: -ELBO, the IW NLL and active units on `dataset`'s `split`; `source` is (--data-dir, --skip-bad)."""
    from vaegen.data.load import evaluation_images
    from vaegen.data.sets import FolderOptions
    from vaegen.evaluation.metrics import evaluate as run_evaluation
    from vaegen.likelihoods import get_likelihood

    data_dir, skip_bad = source
    likelihood = model.bundle.likelihood
    with options.DataProgress(f"loading {dataset}", quiet) as loading:
        x = evaluation_images(dataset, split, data_dir, model.image_shape, likelihood=likelihood, limit=limit,
                              progress=loading, options=FolderOptions(skip_bad, model.bundle.background))
    with options.progress(len(x), f"evaluating k={k}", quiet) as bar:
        result = run_evaluation(model, x, k=k, seed=seed, progress=bar.update)
    result.update({"dataset": dataset, "split": split, "model": str(model.bundle.path), "provider": model.active_provider})
    options.emit(result, as_json, [
        f"images        {result['images']} ({dataset} {split}, {get_likelihood(likelihood).scored_as})",
        f"NLL (k={k})    {result['nll']:.2f} nats, {result['nll_bits_per_dim']:.4f} bits/dim",
        f"-ELBO         {result['neg_elbo']:.2f} nats (reconstruction {result['recon']:.2f} + KL {result['kl']:.2f})",
        f"active units  {result['active_units']} of {result['latent_dim']}",
        f"speed         {result['images_per_s']:.1f} images/s ({result['seconds']:.1f} s)",
    ])
