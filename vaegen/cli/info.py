"""`vaegen info`: the model bundle, the execution providers that really run
(and why CUDA does not), and where datasets are looked for."""

from __future__ import annotations

import click

from vaegen.cli import options


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
@options.model_options
def info(as_json, model_dir, provider, threads, verbose):
    """Describe the model bundle, the execution providers that really run
    (and why CUDA cannot, when it cannot), and the folders each dataset is
    looked for in, in order.

    \b
    Example:
        vaegen info
        vaegen info --model runs/mnist --json
    """
    from vaegen.data.named import DATASETS, data_dirs

    model = options.open_model(model_dir, provider, threads, verbose)
    data = model.describe()
    data["data_dirs"] = {name: [str(folder) for folder in data_dirs(name)] for name in DATASETS}
    lines = [f"model        {data['model']}", *_bundle_lines(data["bundle"]), *_provider_lines(data["providers"])]
    lines += [f"data         {name}: {', '.join(folders)}" for name, folders in data["data_dirs"].items()]
    options.emit(data, as_json, lines)


def _bundle_lines(meta: dict) -> list[str]:
    # Descriptive fields are not checked when a bundle loads; a wrong type shows as '?'.
    arch = meta.get("architecture") if isinstance(meta.get("architecture"), dict) else {}
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    lines = [
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
    calibration = meta.get("calibration") if isinstance(meta.get("calibration"), dict) else None
    if calibration is not None:
        lines.append(f"calibration  {calibration.get('images', '?')} held-out images, k={calibration.get('k', '?')}, "
                     f"for `vaegen score`'s percentiles and flags")
    else:
        lines.append("calibration  none: `vaegen score` gives no percentiles (see `vaegen fit-prior`)")
    for key, value in metrics.items():
        lines.append(f"metric       {key} = {value:.2f}" if isinstance(value, float) else f"metric       {key} = {value}")
    return lines


def _provider_lines(report: dict) -> list[str]:
    lines = [
        f"onnxruntime  {report['onnxruntime']}",
        f"installed    {', '.join(report['installed'])}",
        f"usable       {', '.join(report['usable'])}",
        f"active       {report['active']}",
    ]
    if report.get("cuda_problem"):
        lines.append(f"cuda         cannot run: {report['cuda_problem']}")
    return lines
