"""What the commands share: model options, --json/--quiet, output files as a
click.ParamType, progress bars and reporting, and the checks and steps the
torch commands (train, export, fit-prior) share. Command modules share code
through this module, never through each other. click lives in vaegen/cli/
alone; the work itself is done by vaegen.api and the modules it calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vaegen.choices import PROVIDERS
from vaegen.errors import VaegenError

# The options every command that runs a model takes.


def model_options(f):
    """--model, --provider, --threads and --verbose, shared by the light commands."""
    f = click.option("--verbose", is_flag=True, help="Show ONNX Runtime's own log lines.")(f)
    f = click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads for ONNX Runtime. [default: all cores]")(f)
    f = click.option("--provider", type=click.Choice(PROVIDERS), default="auto",
                     help="Execution provider; auto means CUDA when it really runs, else CPU.")(f)
    f = click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
                     help="Model bundle folder, or a shipped model's name: mnist, fashion-mnist. "
                          "[default: $VAEGEN_MODEL, else mnist]")(f)
    return f


def data_options(dataset_default: str | None = None,
                 what: str = "mnist, fashion-mnist, or a folder of images (PNG, JPEG, WebP, BMP, TIFF, GIF)."):
    """--dataset, --data-dir and --skip-bad; a None default means the bundle's own dataset."""
    def decorate(f):
        f = click.option("--skip-bad", is_flag=True,
                         help="Leave out the files of an image folder that cannot be read as images, naming them; "
                              "without it, any such file stops the command before it starts, every one named.")(f)
        f = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                         help="The folder of the dataset's IDX files, tried first. [default: found in "
                              "$VAEGEN_DATA_DIR, ~/.cache/vaegen/<dataset>, /usr/share/datasets/<dataset>; "
                              "downloaded to the first when missing]")(f)
        default_note = "" if dataset_default else " [default: the bundle's training dataset]"
        return click.option("--dataset", default=dataset_default, help=what + default_note)(f)
    return decorate


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress output on stderr.")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")(f)


def light_options(f):
    """--json, the model options and --quiet: what every light command that writes pictures takes."""
    return json_option(model_options(quiet_option(f)))


def scale_option(default: int):
    return click.option("--scale", type=click.IntRange(1, 16), default=default, help="Enlarge each pixel this many times.")


class OutputFile(click.ParamType):
    """A file to write, by its extension: an image (.png, .jpg, .jpeg, .webp,
    .gif; the format follows the name) unless other `suffixes` are given.
    An unknown extension is a usage error at once. Whether its folder can be
    written is checked (by fileio.check_file_target) when the command is
    about to use it."""

    name = "file"

    def __init__(self, *suffixes: str):
        self.suffixes = suffixes or None  # None: the image formats of vaegen.images, read when first needed

    def convert(self, value, param, ctx):
        path = value if isinstance(value, Path) else Path(value)
        return check_suffix(path, self.suffixes, param.opts[0] if param is not None else "-o", ctx)


def check_suffix(path: Path, suffixes: tuple[str, ...] | None = None, option: str = "-o", ctx=None) -> Path:
    """`path` when its extension is one of `suffixes` (None: an image format),
    else a usage error that lists them, naming the option."""
    from vaegen.errors import ArgumentError
    from vaegen.fileio import check_suffix as check_known_suffix

    try:
        if suffixes is None:
            from vaegen.images import image_format

            image_format(path)
        else:
            check_known_suffix(path, suffixes)
    except ArgumentError as exc:
        raise click.UsageError(f"{option} {exc}", ctx) from None
    return path


def open_model(model_dir, provider: str, threads: int | None, verbose: bool):
    from vaegen.api import load_model

    return load_model(model_dir, provider=provider, threads=threads, verbose=verbose)


def echo_err(text: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(text, err=True)


def wrote(count: int, noun: str, target, detail: str = "") -> str:
    """The line every writer prints: `Wrote 1 sample to x.png`, `Wrote 64 samples to x.png`."""
    return f"Wrote {count} {noun}{'' if count == 1 else 's'}{detail} to {target}"


def emit(data: dict, as_json: bool, lines: list[str]) -> None:
    """JSON on stdout for scripts, else the human lines."""
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2))
    else:
        for line in lines:
            click.echo(line)


# User images: every one is checked before anything is written.


def skip_bad_option(f):
    return click.option("--skip-bad", is_flag=True,
                        help="Leave out the images that cannot be used, each named on stderr, and write the rest; "
                             "fail only when none can be used. [default: any unusable image fails the command, "
                             "and nothing is written]")(f)


def read_inputs(model, paths, skip_bad: bool):
    """The user's images as the model sees them (a vaegen.api.ImageBatch).
    Every file is tried first: an unusable one fails the command, naming
    every such file, before anything is written; with --skip-bad each is
    named on stderr and left out."""
    from vaegen.errors import ImageError

    try:
        batch = model.load_images(paths, skip_bad=skip_bad)
    except ImageError as exc:
        usable = len(paths) - len(exc.refused)
        if skip_bad or not exc.refused or usable < 1:
            raise
        # The group prints it as every vaegen error: one line, exit 1 (a traceback under VAEGEN_DEBUG).
        raise ImageError(f"{exc} Nothing was written; --skip-bad writes the other {usable}.",
                         refused=exc.refused, argument=exc.argument) from exc
    for _, why in batch.skipped:
        click.echo(f"Skipped: {why}", err=True)
    return batch


class _NoBar:
    """The progress bar when there is none to show (click's hidden bar still
    imports its terminal machinery, a few ms of every quick command)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None: ...


def progress(total: int, label: str, quiet: bool):
    """A progress bar on stderr, or nothing with --quiet."""
    if quiet:
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True, width=30)


def check_grid(image_shape, n: int, nrow: int, scale: int, what: str, out_dir_hint: bool = False) -> None:
    """Refuse a picture too large to hold in memory before any work is done."""
    from vaegen.images import MAX_GRID_PIXELS, grid_size

    width, height = grid_size(n, image_shape, nrow)
    if width * height * scale * scale > MAX_GRID_PIXELS:
        raise click.UsageError(
            f"{what} needs {width * scale}x{height * scale} pixels, more than the limit of {MAX_GRID_PIXELS:,}; "
            f"ask for fewer images{' or write one PNG per image with --out-dir' if out_dir_hint else ''}."
        )


def check_targets(output: Path | None, out_dir: Path | None) -> None:
    """Check the output that will be written (a grid file or an --out-dir) before the work starts."""
    from vaegen.fileio import check_file_target, check_folder_target

    if out_dir is not None:
        check_folder_target(out_dir, "--out-dir", parents=False)
    elif output is not None:
        check_file_target(output, "-o")


def given_any(*names: str) -> bool:
    """Did the command line (or an environment variable) set any of these options?"""
    ctx = click.get_current_context()
    defaults = (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP, None)
    return any(ctx.get_parameter_source(name) not in defaults for name in names)


class DataProgress:
    """vaegen.data.sets.Progress, the loaders' progress callback, (done, total), as one bar per file on
    stderr: a download in bytes, or an image folder in files."""

    def __init__(self, label: str, quiet: bool):
        self.label, self.quiet = label, quiet
        self.bar = None
        self.done = 0

    def __call__(self, done: int, total: int | None) -> None:
        if self.quiet or not total:
            return
        if self.bar is None or done < self.done:  # the next file
            self.close()
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_eta=True, width=30)
            self.bar.__enter__()
            self.done = 0
        self.bar.update(done - self.done)
        self.done = done

    def __enter__(self) -> DataProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


# ---------------------------------------------------------------- what the torch commands share


def require_torch(command: str) -> None:
    """The train extra is optional: say how to get it instead of a traceback.
    (find_spec looks for the packages without importing them.)"""
    import importlib.util

    missing = []
    for name in ("torch", "onnx"):
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    if missing:
        raise VaegenError(
            f"vaegen {command} needs torch and onnx ({', '.join(missing)} missing): pip install 'vaegen[train]'"
        )


def require_sklearn(command: str) -> None:
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise VaegenError(f"vaegen {command} needs scikit-learn to fit the prior: pip install 'vaegen[train]'")


def fit_and_install(model, dataset: str | None, data_dir, settings: dict, quiet: bool, skip_bad: bool = False) -> dict:
    """vaegen.latent.fit.fit_bundle_prior with a progress bar for the data; the prior's facts."""
    from vaegen.latent.fit import fit_bundle_prior

    with DataProgress("loading the training set", quiet) as loading, \
            DataProgress("scoring held-out images", quiet) as scoring:
        return fit_bundle_prior(model, dataset, data_dir, settings, progress=loading, scoring=scoring,
                                skip_bad=skip_bad).facts
