"""`vaegen info`: the model bundle and the execution providers that really run."""

from __future__ import annotations

import click

from vaegen.cli import options


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
@options.model_options
def info(as_json, model_dir, provider, threads, verbose):
    """Describe the model bundle and the execution providers that really run.

    \b
    Example:
        vaegen info
        vaegen info --model runs/mnist --json
    """
    model = options.open_model(model_dir, provider, threads, verbose)
    data = model.describe()
    meta = data["bundle"]
    # Descriptive fields are not checked when a bundle loads; a wrong type shows as '?'.
    arch = meta.get("architecture") if isinstance(meta.get("architecture"), dict) else {}
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    lines = [
        f"model        {data['model']}",
        f"dataset      {meta.get('dataset', '?')}",
        f"architecture {arch.get('arch', '?')}, latent_dim {meta['latent_dim']}, "
        f"image {'x'.join(map(str, meta['image_shape']))}",
        f"likelihood   {meta.get('likelihood', '?')}, preprocessing {meta.get('preprocessing', '?')}",
    ]
    prior = meta.get("prior") if isinstance(meta.get("prior"), dict) else None
    if prior is not None:
        classes = f", classes {', '.join(map(str, prior['classes']))}" if prior.get("classes") else ""
        lines.append(f"prior        {prior.get('kind', '?')}, {prior.get('components', '?')} components "
                     f"({prior.get('covariance_type', '?')}){classes}")
    else:
        lines.append("prior        standard normal N(0, I) (no fitted prior; see `vaegen fit-prior`)")
    for key, value in metrics.items():
        lines.append(f"metric       {key} = {value:.2f}" if isinstance(value, float) else f"metric       {key} = {value}")
    report = data["providers"]
    lines += [
        f"onnxruntime  {report['onnxruntime']}",
        f"installed    {', '.join(report['installed'])}",
        f"usable       {', '.join(report['usable'])}",
        f"active       {report['active']}",
    ]
    options.emit(data, as_json, lines)
