"""`vaegen fit-prior`: fit the latent prior of an existing bundle (needs scikit-learn)."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.choices import COVARIANCES, PRIOR_CODES
from vaegen.cli import options
from vaegen.recipes import COLOUR_PRIOR, PRIOR


@click.command("fit-prior")
@click.argument("model_dir", metavar="MODEL", type=click.Path(exists=True, file_okay=False, path_type=Path))
@options.data_options()
@click.option("--components", type=click.IntRange(min=1), default=None,
              help="Mixture components over all codes, at most one per latent dimension's worth of codes. "
                   f"[default: {PRIOR['components']}; {COLOUR_PRIOR['components']} for a colour model]")
@click.option("--class-components", type=click.IntRange(min=1), default=None,
              help=f"Components of each class's mixture (data with labels). [default: {PRIOR['class_components']}]")
@click.option("--max-codes", type=click.IntRange(min=2), default=None,
              help=f"Fit the overall mixture on at most N codes, drawn at random. [default: {PRIOR['max_codes']}]")
@click.option("--class-max-codes", type=click.IntRange(min=2), default=None,
              help=f"Fit each class's mixture on at most N of its codes. [default: {PRIOR['class_max_codes']}]")
@click.option("--purity", type=click.FloatRange(min=0, max=1), default=None,
              help="Refit each class's mixture without the codes their own class explains with "
                   f"p(class | z) below this (0: one pass). [default: {PRIOR['purity']}]")
@click.option("--covariance", type=click.Choice(COVARIANCES), default=None,
              help=f"Covariance of each component. [default: {PRIOR['covariance_type']}]")
@click.option("--codes", type=click.Choice(PRIOR_CODES), default=None,
              help=f"Fit the posterior means mu(x), or one draw z ~ q(z|x) per image. [default: {PRIOR['codes']}]")
@click.option("--limit", type=click.IntRange(min=2), default=None, help="Fit on the first N training images. [default: all]")
@click.option("--seed", type=int, default=PRIOR["seed"], help="Seed of the binarization, the draws and EM's start.")
@options.json_option
@options.quiet_option
def fit_prior(model_dir, dataset, data_dir, skip_bad, components, class_components, max_codes, class_max_codes, purity,
              covariance, codes, limit, seed, as_json, quiet):
    """Fit a Gaussian mixture to a bundle's encoded training set, and one per
    class when the data has labels: `vaegen sample` then draws from it
    (sharper digits than N(0, I)), and `--label` draws one class.

    \b
    Example:
        vaegen fit-prior runs/mnist
        vaegen fit-prior my-model --dataset fashion-mnist --components 20
    """
    options.require_sklearn("fit-prior")
    from vaegen.api import load_model

    model = load_model(model_dir, provider="cpu")
    chosen = {"components": components, "class_components": class_components, "max_codes": max_codes,
              "class_max_codes": class_max_codes, "purity": purity, "covariance_type": covariance,
              "codes": codes, "limit": limit, "seed": seed}
    facts = options.fit_and_install(model, dataset, data_dir, {k: v for k, v in chosen.items() if v is not None}, quiet,
                                    skip_bad)
    options.emit({"model": str(model.bundle.path), "prior": facts}, as_json,
         [] if quiet else [f"Fitted a {facts['components']}-component prior"
                           f"{' with ' + str(len(facts['classes'])) + ' classes' if facts['classes'] else ''}"
                           f" into {model.bundle.path} in {facts['fit_seconds']} s"])
