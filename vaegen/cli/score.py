"""`vaegen score`: each image's likelihood, its percentile among the model's
held-out images, and an out-of-distribution flag, as a table, JSON or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import SCORE_SORTS, SCORES
from vaegen.cli import options
from vaegen.recipes import SCORING

FIELDS = ("path", "bits_per_dim", "score", "ood_score", "percentile", "flagged")


def _ordered(records: list[dict], sort: str | None, reverse: bool, top: int | None) -> list[dict]:
    """The records by `sort` (numbers highest first, paths A to Z; unknown values last), then the first `top`."""
    if sort is not None:
        def key(record):
            value = record[sort]
            if sort == "path":
                return (False, value)
            return (value is None, -value if value is not None else 0.0)

        records = sorted(records, key=key)
    if reverse:
        records = records[::-1]
    return records[:top] if top else records


def _table(records: list[dict], score: str) -> list[str]:
    width = max(len(score), len("ood score"))
    lines = [f"{'bits/dim':>8s}  {score:>{width}s}  {'percentile':>10s}  {'flag':4s}  path"]
    for r in records:
        value = f"{r['ood_score']:{width}.4f}" if r["ood_score"] is not None else f"{'-':>{width}s}"
        pct = f"{r['percentile']:10.1f}" if r["percentile"] is not None else f"{'-':>10s}"
        flag = "-" if r["flagged"] is None else ("FLAG" if r["flagged"] else "")
        lines.append(f"{r['bits_per_dim']:8.4f}  {value}  {pct}  {flag:4s}  {r['path']}")
    return lines


def _csv(records: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: ("" if r[name] is None else r[name]) for name in FIELDS} for r in records)
    return out.getvalue()


def _notes(model, k: int | None, flag_above: float, records: list[dict]) -> list[str]:
    """The lines on stderr that say how the scores were made and how to read them."""
    from vaegen.likelihoods import EVAL_SEED, get_likelihood

    lines = []
    if get_likelihood(model.bundle.likelihood).binarized:
        lines.append(f"Each image was binarized with the evaluation seed ({EVAL_SEED}), in the order given, "
                     "as `vaegen evaluate` binarizes held-out images.")
    calibration = model.calibration
    if calibration is None:
        return lines
    facts = calibration.facts
    flagged = sum(bool(r["flagged"]) for r in records)
    lines.append(f"Flagged {flagged} of {len(records)}: above the {flag_above:g}th percentile of {facts['images']} "
                 f"held-out {facts.get('dataset', '')} images, scored at k={calibration.k}.")
    if k is not None and k != calibration.k:
        lines.append(f"Note: --k {k} is not the calibration's k={calibration.k}: the bound, and with it the "
                     "percentiles, shift with k.")
    from vaegen.evaluation.scores import compressor_version

    here = compressor_version(get_likelihood(model.bundle.likelihood).binarized)
    if facts.get("compressor") and facts["compressor"] != here:
        lines.append(f"Note: the calibration's compressor was {facts['compressor']}, this one is {here}: "
                     "input-complexity may shift a little; `vaegen fit-prior` calibrates again here.")
    return lines


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--score", "using", type=click.Choice(SCORES), default=SCORING["score"],
              help="The out-of-distribution score (docs/ood.md says which wins where).")
@click.option("--flag-above", type=click.FloatRange(0, 100), default=SCORING["flag_above"],
              help="Flag an image whose score is above this percentile of the held-out images'.")
@click.option("--sort", type=click.Choice(SCORE_SORTS), default=None,
              help="Order the rows by this field: numbers highest first, paths A to Z. [default: as given]")
@click.option("--reverse", is_flag=True, help="Reverse the order (with --sort ood_score: the most typical first).")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the first N rows. [default: all]")
@click.option("--k", "k", type=click.IntRange(min=1), default=None,
              help=f"Importance samples per image. [default: the bundle's calibration's, else {SCORING['k']}]")
@click.option("--seed", type=int, default=0, help="Seed of the importance samples.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout, one object per image.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout, a row per image.")
@options.skip_bad_option
@options.model_options
@options.quiet_option
def score(images, using, flag_above, sort, reverse, top, k, seed, as_json, as_csv, skip_bad, model_dir, provider,
          threads, verbose, quiet):
    """Score images: how likely each is under the model (bits per dimension,
    by the importance-weighted bound), and how unlike its training data.

    Each image gets its bits/dim, an out-of-distribution score (higher = less
    like the training data), that score's percentile among the model's
    held-out images, and a flag above --flag-above. Raw bits/dim misleads on
    its own: a Fashion-MNIST model finds handwritten digits more likely than
    clothes; the default score corrects for how simple an image is.
    Folders are read whole (every image file under them, sorted). Every image
    is checked first: one that cannot be used fails the command, naming each
    such image, and nothing is printed (or, with --skip-bad, it is left out).

    \b
    Example:
        vaegen score photos/ --sort ood_score --top 10
        vaegen score --model fashion-mnist shirts/ --json > scores.json
        vaegen score scans/*.png --skip-bad --csv --flag-above 95
    """
    from vaegen.data.folders import image_files
    from vaegen.evaluation.scores import DEFAULT_K

    if as_json and as_csv:
        raise click.UsageError("--json and --csv each print the whole result; choose one.")
    model = options.open_model(model_dir, provider, threads, verbose)
    batch = options.read_inputs(model, image_files(images), skip_bad)
    k_used = k or (model.calibration.k if model.calibration is not None else DEFAULT_K)
    with options.progress(len(batch.paths), f"scoring k={k_used}", quiet) as bar:
        records = model.score(batch.images, k=k_used, seed=seed, flag_above=flag_above, using=using,
                              paths=batch.paths, progress=bar.update)
    notes = [] if quiet else _notes(model, k, flag_above, records)
    shown = _ordered(records, sort, reverse, top)
    if as_json:
        import json

        click.echo(json.dumps(shown, indent=2))
    elif as_csv:
        click.echo(_csv(shown), nl=False)
    else:
        for line in _table(shown, using):
            click.echo(line)
    if model.calibration is None:  # said even with --quiet: the missing columns need a reason
        path = model.bundle.path
        notes.append(f"{path} has no calibration, so no percentiles or flags: add one with `vaegen fit-prior {path}`.")
    for line in notes:
        click.echo(line, err=True)
