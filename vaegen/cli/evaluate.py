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
@click.option("--seed", type=int, default=0, help="Seed of the importance samples (or of the generated images).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@options.model_options
@options.quiet_option
def evaluate(dataset, data_dir, skip_bad, split, k, limit, samples, judge_path, seed, as_json, model_dir, provider,
             threads, verbose, quiet):
    """Score a model on held-out data: negative ELBO, importance-weighted NLL
    (Burda et al. 2015) and active units, in nats per image, and the NLL in
    bits per dimension.

    The likelihood is the model's: for a Bernoulli model the images are
    binarized once with a fixed seed; a logistic model scores their 256
    levels as they are (bits/dim is then the unit papers give for 8-bit images).

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
    """
    from vaegen.data.load import evaluation_images, model_split
    from vaegen.data.sets import FolderOptions
    from vaegen.evaluation.metrics import evaluate as run_evaluation
    from vaegen.likelihoods import get_likelihood

    model = options.open_model(model_dir, provider, threads, verbose)
    dataset = dataset or model.bundle.dataset
    if samples is not None:
        return _sample_report(model, dataset, (data_dir, skip_bad), split, samples, seed, judge_path, quiet, as_json)
    likelihood = model.bundle.likelihood
    split = model_split(dataset, split, model.bundle.meta)  # a folder the model never saw is scored whole
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
