"""`vaegen export`: a training checkpoint to a verified ONNX model bundle (needs torch)."""

from __future__ import annotations

from pathlib import Path

import click

from vaegen.cli import options


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Bundle folder to write.")
@click.option("--fp16", is_flag=True, help="Half-precision decoder (for GPUs), checked at a looser stated tolerance.")
@options.quiet_option
def export(checkpoint, output, fp16, quiet):
    """Export a training checkpoint to a verified ONNX model bundle.

    The bundle is built aside and moved into place only after the parity
    check against torch passes; an old bundle there is swapped out whole.

    \b
    Example:
        vaegen export runs/mnist/checkpoint.pt -o my-model
    """
    options.require_torch("export")
    from vaegen.training.export import export_checkpoint

    if output.exists() and not output.is_dir():
        raise click.UsageError(f"-o {output} is a file; give a folder for the bundle.")
    bundle = export_checkpoint(checkpoint, output, fp16=fp16)
    options.echo_err(f"Model bundle written to {bundle}", quiet)
    options.echo_err(f"Next: vaegen sample --model {bundle} -n 64 -o grid.png", quiet)
