"""The command-line interface: click commands that parse, call and report.

Errors raised by vaegen become one line `Error: ...` with exit code 1 (2 for
usage errors). Set VAEGEN_DEBUG=1 to let tracebacks through. torch is imported
only inside `train` and `export`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from vaegen import __version__
from vaegen.errors import VaegenError


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_in_one_line(exc: click.UsageError) -> click.UsageError:
    """click prints a usage error as four lines (usage, hint, blank, error);
    vaegen prints one, `Error: ...`, with the hint at its end."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        return exc  # a bare `vaegen` prints the help, as it should
    where = exc.ctx.command_path if exc.ctx is not None else "vaegen"
    return click.UsageError(f"{_one_line(exc.format_message())} (see '{where} --help')")


class VaegenGroup(click.Group):
    """Builds a command only when it is run or listed, so `vaegen sample`
    does not pay for defining every other command's options at start-up
    (click runs inspect.cleandoc on each help text: ~24 ms for all of them).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._factories: dict = {}

    def lazy_command(self, name: str):
        def register(factory):
            self._factories[name] = factory
            return factory
        return register

    def list_commands(self, ctx):
        return sorted({*self.commands, *self._factories})

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in self._factories:
            self.add_command(self._factories[cmd_name](), cmd_name)
        return self.commands.get(cmd_name)

    """Maps vaegen's errors to one-line messages and exit codes."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _usage_in_one_line(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage_in_one_line(exc) from None
        except VaegenError as exc:
            if os.environ.get("VAEGEN_DEBUG"):
                raise
            raise click.ClickException(_one_line(str(exc))) from None
        except MemoryError:
            if os.environ.get("VAEGEN_DEBUG"):
                raise
            raise click.ClickException("Out of memory; ask for less (a smaller -n, --steps or --limit).") from None


@click.group(cls=VaegenGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="vaegen")
def cli():
    """Train, ship and use variational autoencoders from a terminal.

    `vaegen train` trains a VAE in PyTorch and exports it to ONNX; every
    other command runs the ONNX files with ONNX Runtime, without torch.

    \b
    Example:
        vaegen sample -n 64 -o grid.png
    """


def _echo_err(text: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(text, err=True)


# ---------------------------------------------------------------- train


class _ClickReporter:
    """Progress bar per epoch and a summary line per epoch, on stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def epoch_start(self, epoch, epochs, steps):
        if self.quiet:
            return
        self.bar = click.progressbar(
            length=steps, label=f"epoch {epoch}/{epochs}", file=sys.stderr, width=24,
            item_show_func=lambda s: s, show_eta=True,
        )
        self.bar.__enter__()

    def step(self, stats):
        if self.bar is not None:
            self.bar.update(1, "loss {loss:.2f} recon {recon:.2f} kl {kl:.2f} {images_per_s:.0f} img/s".format(**stats))

    def epoch_end(self, m):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        _echo_err(
            f"epoch {m['epoch']}: train {m['train_loss']:.2f}  test -ELBO {m['test_neg_elbo']:.2f} "
            f"(recon {m['test_recon']:.2f}, KL {m['test_kl']:.2f})  {m['seconds']:.1f} s, "
            f"{m['images_per_s']:.0f} img/s",
            self.quiet,
        )

    def message(self, text):
        _echo_err(text, self.quiet)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _require_torch(command: str) -> None:
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


def _command_line(ctx: click.Context) -> str:
    """The command as a user would retype it: the options that differ from their defaults."""
    words = ["vaegen", ctx.info_name or "train"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None or value == param.default:
            continue
        if param.is_flag:
            if value:
                words.append(param.opts[0])
            elif param.secondary_opts:
                words.append(param.secondary_opts[0])
        else:
            words += [param.opts[0], str(value)]
    import shlex

    return shlex.join(words)


@cli.lazy_command("train")
def _make_train() -> click.Command:
    @click.command()
    @click.option("--dataset", default="mnist", help="mnist, fashion-mnist, or a folder of PNG/JPEG images.")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Where the IDX files are (or go). Default: $VAEGEN_DATA_DIR, else ~/.cache/vaegen/<dataset>.")
    @click.option("--arch", type=click.Choice(["conv", "mlp"]), default="conv", help="Encoder and decoder architecture.")
    @click.option("--latent-dim", type=click.IntRange(min=1), default=32, help="Number of latent dimensions.")
    @click.option("--hidden", type=click.IntRange(min=1), default=512, help="Width of the dense layers.")
    @click.option("--decoder-layers", type=click.IntRange(min=1), default=2,
                  help="Hidden layers of the mlp decoder (the last one 2x --hidden wide).")
    @click.option("--image-size", type=click.IntRange(min=4), default=28, help="Side of the square images (image folders).")
    @click.option("--channels", type=click.Choice(["1", "3"]), default="1", help="1 for grayscale, 3 for RGB (image folders).")
    @click.option("--epochs", type=click.IntRange(min=1), default=10, help="Epochs to train (the total, with --resume).")
    @click.option("--batch-size", type=click.IntRange(min=1), default=128, help="Images per optimisation step.")
    @click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, help="Adam learning rate.")
    @click.option("--lr-schedule", type=click.Choice(["cosine", "constant"]), default="cosine",
                  help="cosine decays to lr/100 over the run. With --resume, a new --lr or --lr-schedule "
                       "starts a new stage: its schedule runs from the resumed epoch to --epochs.")
    @click.option("--beta", type=click.FloatRange(min=0), default=1.0, help="Weight of the KL term.")
    @click.option("--kl-warmup", type=click.FloatRange(min=0), default=0.0,
                  help="Epochs over which the KL weight ramps up from 0.")
    @click.option("--binarize/--no-binarize", default=None,
                  help="Dynamic binarization (a fresh Bernoulli draw each time an image is seen). "
                       "[default: on for MNIST-style datasets]")
    @click.option("--iw-samples", type=click.IntRange(min=1), default=1,
                  help="Samples per image; >1 trains on the importance-weighted bound.")
    @click.option("--iw-estimator", type=click.Choice(["iwae", "dreg"]), default="iwae",
                  help="The encoder's gradient of that bound: iwae (Burda et al.), or dreg, the doubly "
                       "reparameterized one (Tucker et al. 2018), whose signal does not fade as --iw-samples grows.")
    @click.option("--seed", type=int, default=0, help="Random seed (initialisation, shuffling, noise).")
    @click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                  help="auto: CUDA when torch sees a GPU.")
    @click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
                  help="bf16 runs the forward pass in bfloat16 autocast (CUDA only).")
    @click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch. [default: torch's choice]")
    @click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder. [default: runs/<dataset>]")
    @click.option("--resume", is_flag=True,
                  help="Continue the run in --out up to --epochs, with its saved settings; options given now win.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress output.")
    def train(dataset, data_dir, arch, latent_dim, hidden, decoder_layers, image_size, channels, epochs, batch_size, lr,
              lr_schedule, beta, kl_warmup, binarize, iw_samples, iw_estimator, seed, device, precision, threads, out, resume,
              quiet):
        """Train a VAE with PyTorch and export it as an ONNX model bundle.

        Each epoch writes a checkpoint, metrics.jsonl and a sample grid in the
        run folder; the bundle goes to <out>/model, ready for `vaegen sample`.

        Under torchrun (`torchrun --nproc-per-node N -m vaegen train ...`) it
        trains with DistributedDataParallel: --batch-size is the global batch,
        split evenly over the processes, and rank 0 alone writes files.

        \b
        Example:
            vaegen train --epochs 20
            vaegen train --arch mlp --latent-dim 2 --out runs/mnist-2d
            vaegen train --resume --epochs 40 --out runs/mnist
        """
        _require_torch("train")
        from vaegen.training.loop import Interrupted, TrainConfig
        from vaegen.training.loop import train as run_training
        from vaegen.training.model import ModelConfig

        ctx = click.get_current_context()
        given = {name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
        name = Path(dataset).name if dataset not in ("mnist", "fashion-mnist") else dataset
        out = out or Path("runs") / name
        size = 28 if dataset in ("mnist", "fashion-mnist") else image_size
        try:
            model_cfg = ModelConfig(arch=arch, channels=int(channels), height=size, width=size, latent_dim=latent_dim,
                                    hidden=hidden, decoder_layers=decoder_layers)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        cfg = TrainConfig(
            dataset=dataset, data_dir=str(data_dir) if data_dir else None, epochs=epochs, batch_size=batch_size,
            lr=lr, lr_schedule=lr_schedule, beta=beta, kl_warmup=kl_warmup, binarize=binarize,
            iw_samples=iw_samples, iw_estimator=iw_estimator, seed=seed, device=device, precision=precision, threads=threads,
            command=_command_line(ctx),
        )
        # With --resume, options given now override the saved ones; the model's own shape cannot change.
        overrides = given & {"arch", "latent_dim", "hidden", "decoder_layers", "image_size", "channels", "dataset",
                             "batch_size", "lr", "lr_schedule", "beta", "kl_warmup", "binarize", "iw_samples", "iw_estimator",
                             "precision"}
        reporter = _ClickReporter(quiet)
        try:
            run_training(cfg, model_cfg, out, resume=resume, overrides=overrides, reporter=reporter)
        except Interrupted as exc:
            reporter.close()
            raise click.ClickException(
                f"Interrupted; the checkpoint of epoch {exc.epoch_done} is kept in {exc.out}. "
                f"Continue with: vaegen train --resume --epochs {epochs} --out {exc.out}"
            ) from None
        finally:
            reporter.close()
        if int(os.environ.get("RANK", "0")) != 0:
            return  # under torchrun, rank 0 exports
        from vaegen.training.export import export_run

        bundle = export_run(out)
        _echo_err(f"Model bundle written to {bundle}", quiet)
        _echo_err(f"Next: vaegen sample --model {bundle} -n 64 -o grid.png", quiet)
    return train


# ---------------------------------------------------------------- shared options


def model_options(f):
    """--model, --provider, --threads and --verbose, shared by the light commands."""
    f = click.option("--verbose", is_flag=True, help="Show ONNX Runtime's own log lines.")(f)
    f = click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads for ONNX Runtime. [default: all cores]")(f)
    f = click.option("--provider", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
                     help="Execution provider; auto means CUDA when it really runs, else CPU.")(f)
    f = click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
                     help="Model bundle folder. [default: $VAEGEN_MODEL, else the shipped weights/mnist]")(f)
    return f


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress output on stderr.")(f)


def _open_model(model_dir, provider, threads, verbose):
    from vaegen.bundle import load_bundle
    from vaegen.runtime import Model, set_verbose

    set_verbose(verbose)
    return Model(load_bundle(model_dir), provider=provider, threads=threads)


def _check_output(path: Path, suffixes: tuple[str, ...], option: str = "-o") -> Path:
    if path.suffix.lower() not in suffixes:
        raise click.UsageError(f"{option} {path}: the file name must end in {' or '.join(suffixes)}.")
    if path.is_dir():
        raise click.UsageError(f"{option} {path} is a folder; give a file name.")
    if path.parent.exists() and not path.parent.is_dir():
        raise VaegenError(f"Output folder {path.parent} is a file, not a folder.")
    if not path.parent.is_dir():
        raise VaegenError(f"Output folder {path.parent} does not exist; create it first.")
    if not os.access(path.parent, os.W_OK):
        raise VaegenError(f"Cannot write in {path.parent}: permission denied.")
    return path


def _check_out_dir(path: Path) -> Path:
    """Check that --out-dir can be written; _write_each creates it, so a failed command leaves no empty folder."""
    if path.exists() and not path.is_dir():
        raise click.UsageError(f"--out-dir {path} is a file, not a folder.")
    if not path.exists() and path.parent.exists() and not path.parent.is_dir():
        raise VaegenError(f"Cannot create {path}: {path.parent} is a file, not a folder.")
    if not path.exists() and not path.parent.is_dir():
        raise VaegenError(f"Cannot create {path}: its parent folder does not exist.")
    where = path if path.exists() else path.parent
    if not os.access(where, os.W_OK):
        raise VaegenError(f"Cannot write in {where}: permission denied.")
    return path


def _check_grid(image_shape, n: int, nrow: int, scale: int, what: str, out_dir_hint: bool = False) -> None:
    """Refuse a picture too large to hold in memory before any work is done."""
    from vaegen.images import MAX_GRID_PIXELS, grid_size

    width, height = grid_size(n, image_shape, nrow)
    if width * height * scale * scale > MAX_GRID_PIXELS:
        raise click.UsageError(
            f"{what} needs {width * scale}x{height * scale} pixels, more than the limit of {MAX_GRID_PIXELS:,}; "
            f"ask for fewer images{' or write one PNG per image with --out-dir' if out_dir_hint else ''}."
        )


def _emit(data: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2))
    else:
        for line in lines:
            click.echo(line)


class _NoBar:
    """The progress bar when there is none to show (click's hidden bar still
    imports its terminal machinery, a few ms of every quick command)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None: ...


def _progress(total: int, label: str, quiet: bool):
    if quiet:
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True, width=30)


def _write_each(images, out_dir: Path, names: list[str], scale: int) -> list[str]:
    from vaegen.images import save_png, to_pil

    out_dir.mkdir(exist_ok=True)
    written = []
    for image, name in zip(images, names, strict=True):
        target = out_dir / name
        save_png(to_pil(image), target, scale=scale)
        written.append(str(target))
    return written


def _read_images(model, paths):
    import numpy as np

    from vaegen.images import prepare_image

    shape = model.bundle.image_shape
    return np.stack([prepare_image(p, image_shape=shape, preprocessing=model.bundle.preprocessing) for p in paths])


# ---------------------------------------------------------------- sample


@cli.lazy_command("sample")
def _make_sample() -> click.Command:
    @click.command()
    @click.option("-n", "--num", "n", type=click.IntRange(min=1), default=64, help="Number of images to draw.")
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("samples.png"), help="Grid PNG to write.")
    @click.option("--out-dir", type=click.Path(path_type=Path), default=None,
                  help="Write one PNG per image in this folder instead of a grid.")
    @click.option("--seed", type=int, default=0, help="Seed of the prior draws; the same seed gives the same PNG.")
    @click.option("--temperature", type=click.FloatRange(min=0), default=1.0, help="Scale of the prior's standard deviation.")
    @click.option("--nrow", type=click.IntRange(min=1), default=None, help="Images per grid row. [default: a square grid]")
    @click.option("--scale", type=click.IntRange(1, 16), default=1, help="Enlarge each pixel this many times.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
    @model_options
    @quiet_option
    def sample(n, output, out_dir, seed, temperature, nrow, scale, as_json, model_dir, provider, threads, verbose, quiet):
        """Draw new images from the prior: z ~ N(0, I), decoded to pixel means.

        \b
        Example:
            vaegen sample -n 64 -o grid.png
            vaegen sample -n 16 --temperature 0.7 --seed 3 -o cool.png
            vaegen sample -n 1000 --out-dir digits/
        """
        import math

        from vaegen.images import GridWriter, save_png
        from vaegen.latent import sample_prior

        if out_dir is None:
            _check_output(output, (".png",))
        else:
            _check_out_dir(out_dir)
        model = _open_model(model_dir, provider, threads, verbose)
        nrow = nrow or math.ceil(math.sqrt(n))
        if out_dir is None:
            _check_grid(model.bundle.image_shape, n, nrow, scale, f"-n {n}", out_dir_hint=True)
        z = sample_prior(n, model.bundle.latent_dim, seed=seed, temperature=temperature)
        grid = GridWriter(n, model.bundle.image_shape, nrow=nrow) if out_dir is None else None
        done = 0
        with _progress(n, "sampling", quiet or n < 5000) as bar:
            for batch in model.decode_batches(z):
                if grid is not None:
                    grid.add(batch)
                else:
                    _write_each(batch, out_dir, [f"sample_{i:06d}.png" for i in range(done, done + len(batch))], scale)
                done += len(batch)
                bar.update(len(batch))
        target = out_dir if out_dir is not None else output
        if grid is not None:
            save_png(grid.image(), output, scale=scale)
        _emit({"output": str(target), "n": n, "seed": seed, "temperature": temperature,
               "provider": model.active_provider, "model": str(model.bundle.path)},
              as_json, [] if quiet else [f"Wrote {n} samples to {target}"])
    return sample


# ---------------------------------------------------------------- reconstruct


@cli.lazy_command("reconstruct")
def _make_reconstruct() -> click.Command:
    @click.command()
    @click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("reconstructions.png"),
                  help="Grid PNG: the inputs as the model saw them, above their reconstructions.")
    @click.option("--out-dir", type=click.Path(path_type=Path), default=None,
                  help="Write each reconstruction alone, under its input's name, in this folder.")
    @click.option("--nrow", type=click.IntRange(min=1), default=8, help="Images per grid row.")
    @click.option("--scale", type=click.IntRange(1, 16), default=2, help="Enlarge each pixel this many times.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
    @model_options
    @quiet_option
    def reconstruct(images, output, out_dir, nrow, scale, as_json, model_dir, provider, threads, verbose, quiet):
        """Pass images through the encoder and decoder: x -> mu -> decoder mean.

        Any PNG or JPEG works; MNIST models see it the MNIST way (grayscale, ink
        made bright, cropped, fitted to 20x20 and centred by mass in 28x28).

        \b
        Example:
            vaegen reconstruct my_digit.png photo.jpg -o recon.png
            vaegen reconstruct scans/*.png --out-dir recon/
        """
        import numpy as np

        from vaegen.images import make_grid, save_png

        if out_dir is None:
            _check_output(output, (".png",))
        else:
            _check_out_dir(out_dir)
        model = _open_model(model_dir, provider, threads, verbose)
        x = _read_images(model, images)
        mu, _ = model.encode(x)
        recon = model.decode(mu)
        if out_dir is not None:
            names = [f"{Path(p).stem}.png" for p in images]
            if len(set(names)) != len(names):
                raise click.UsageError("Two inputs share a file name; --out-dir needs distinct names.")
            target = out_dir
            _write_each(recon, out_dir, names, scale)
        else:
            target = output
            rows = []
            for start in range(0, len(x), nrow):
                chunk_x, chunk_r = x[start : start + nrow], recon[start : start + nrow]
                pad = nrow - len(chunk_x)
                if pad and len(x) > nrow:
                    blank = np.zeros((pad, *chunk_x.shape[1:]), np.float32)
                    chunk_x, chunk_r = np.concatenate([chunk_x, blank]), np.concatenate([chunk_r, blank])
                rows += [chunk_x, chunk_r]
            save_png(make_grid(np.concatenate(rows), nrow=min(nrow, len(x))), output, scale=scale)
        _emit({"output": str(target), "images": [str(p) for p in images], "provider": model.active_provider},
              as_json, [] if quiet else [f"Wrote {len(images)} reconstructions to {target}"])
    return reconstruct


# ---------------------------------------------------------------- interpolate


@cli.lazy_command("interpolate")
def _make_interpolate() -> click.Command:
    @click.command()
    @click.argument("image_a", type=click.Path(path_type=Path))
    @click.argument("image_b", type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
                  help="PNG strip or GIF to write. [default: interpolation.png, or .gif with --gif]")
    @click.option("--steps", type=click.IntRange(min=2), default=10, help="Decoded frames, both ends included.")
    @click.option("--method", type=click.Choice(["slerp", "lerp"]), default="slerp",
                  help="slerp follows the prior's typical shell; lerp is a straight line.")
    @click.option("--gif", is_flag=True, help="Write an animated GIF that goes there and back.")
    @click.option("--scale", type=click.IntRange(1, 16), default=2, help="Enlarge each pixel this many times.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
    @model_options
    @quiet_option
    def interpolate(image_a, image_b, output, steps, method, gif, scale, as_json, model_dir, provider, threads, verbose,
                    quiet):
        """Walk through latent space from one image to another.

        The strip shows A as the model saw it, then decode(mu_A) ... decode(mu_B),
        then B. The output's name is printed on stdout.

        \b
        Example:
            vaegen interpolate three.png eight.png
            vaegen interpolate a.png b.png --steps 16 --gif -o walk.gif
        """
        import numpy as np

        from vaegen.images import make_grid, save_gif, save_png, to_pil
        from vaegen.latent import lerp, slerp

        suffix = ".gif" if gif else ".png"
        output = output or Path(f"interpolation{suffix}")
        _check_output(output, (suffix,))
        model = _open_model(model_dir, provider, threads, verbose)
        if gif:
            _check_grid(model.bundle.image_shape, 2 * steps - 2, 1, scale * 2, f"--steps {steps}")
        else:
            _check_grid(model.bundle.image_shape, steps + 2, steps + 2, scale, f"--steps {steps}")
        x = _read_images(model, [image_a, image_b])
        mu, _ = model.encode(x)
        path = (slerp if method == "slerp" else lerp)(mu[0], mu[1], steps)
        frames = model.decode(path)
        if gif:
            loop = np.concatenate([frames, frames[-2:0:-1]])
            save_gif([to_pil(f) for f in loop], output, duration_ms=90, scale=scale * 2)
        else:
            save_png(make_grid(np.concatenate([x[:1], frames, x[1:]]), nrow=steps + 2), output, scale=scale)
        _emit({"output": str(output), "steps": steps, "method": method, "provider": model.active_provider},
              as_json, [str(output)])
    return interpolate


# ---------------------------------------------------------------- encode / decode


@cli.lazy_command("encode")
def _make_encode() -> click.Command:
    @click.command()
    @click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
                  help="Also save the latent means as .npy ([N, D] float32) or .json.")
    @click.option("--json", "as_json", is_flag=True, help="Print the latents as JSON on stdout.")
    @model_options
    def encode(images, output, as_json, model_dir, provider, threads, verbose):
        """Print the latent mean (and log-variance) of each image.

        \b
        Example:
            vaegen encode digit.png --json
            vaegen encode a.png b.png -o latents.npy && vaegen decode latents.npy
        """
        import json

        from vaegen.latent_io import save_latents

        if output is not None:
            _check_output(output, (".npy", ".json"))
        model = _open_model(model_dir, provider, threads, verbose)
        mu, logvar = model.encode(_read_images(model, images))
        if output is not None:
            save_latents(output, mu)
        records = [{"image": str(p), "mu": m.tolist(), "logvar": lv.tolist()}
                   for p, m, lv in zip(images, mu, logvar, strict=True)]
        if as_json:
            click.echo(json.dumps(records))
        else:
            for p, m in zip(images, mu, strict=True):
                click.echo(f"{p}\t" + " ".join(f"{v:.4f}" for v in m))
    return encode


@cli.lazy_command("decode")
def _make_decode() -> click.Command:
    @click.command()
    @click.argument("latents", type=click.Path(path_type=Path))
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("decoded.png"), help="Grid PNG to write.")
    @click.option("--out-dir", type=click.Path(path_type=Path), default=None, help="Write one PNG per latent in this folder.")
    @click.option("--nrow", type=click.IntRange(min=1), default=None, help="Images per grid row. [default: a square grid]")
    @click.option("--scale", type=click.IntRange(1, 16), default=2, help="Enlarge each pixel this many times.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
    @model_options
    @quiet_option
    def decode(latents, output, out_dir, nrow, scale, as_json, model_dir, provider, threads, verbose, quiet):
        """Decode latent vectors from a .npy file ([N, D] or [D]) or a JSON file
        (a list of vectors, or `vaegen encode --json` output).

        \b
        Example:
            vaegen decode latents.npy -o decoded.png
        """
        import math

        from vaegen.images import make_grid, save_png
        from vaegen.latent_io import load_latents

        if out_dir is None:
            _check_output(output, (".png",))
        else:
            _check_out_dir(out_dir)
        model = _open_model(model_dir, provider, threads, verbose)
        z = load_latents(latents, model.bundle.latent_dim)
        nrow = nrow or math.ceil(math.sqrt(len(z)))
        if out_dir is None:
            _check_grid(model.bundle.image_shape, len(z), nrow, scale, f"{latents} ({len(z)} latents)", out_dir_hint=True)
        images = model.decode(z)
        if out_dir is not None:
            target = out_dir
            _write_each(images, out_dir, [f"decoded_{i:06d}.png" for i in range(len(images))], scale)
        else:
            target = output
            save_png(make_grid(images, nrow=nrow), output, scale=scale)
        _emit({"output": str(target), "n": len(z), "provider": model.active_provider}, as_json,
              [] if quiet else [f"Wrote {len(z)} decoded images to {target}"])
    return decode


# ---------------------------------------------------------------- traverse


@cli.lazy_command("traverse")
def _make_traverse() -> click.Command:
    @click.command()
    @click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("traversal.png"), help="Grid PNG to write.")
    @click.option("--image", type=click.Path(path_type=Path), default=None,
                  help="Start from this image's latent mean. [default: the prior's mean, z = 0]")
    @click.option("--dims", type=str, default=None,
                  help="Comma-separated latent dimensions to vary. [default: all, most active first, at most 16]")
    @click.option("--steps", type=click.IntRange(min=2), default=11, help="Values per dimension (grid side for a 2-D latent).")
    @click.option("--span", type=click.FloatRange(min=0, min_open=True), default=3.0, help="Vary each value over [-span, span].")
    @click.option("--scale", type=click.IntRange(1, 16), default=2, help="Enlarge each pixel this many times.")
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
    @model_options
    @quiet_option
    def traverse(output, image, dims, steps, span, scale, as_json, model_dir, provider, threads, verbose, quiet):
        """Vary each latent dimension in turn, one row per dimension; for a 2-D
        latent, draw the learned manifold (Kingma & Welling, figure 4).

        \b
        Example:
            vaegen traverse -o traversal.png
            vaegen traverse --image digit.png --dims 0,3,5 --steps 9
        """
        import numpy as np

        from vaegen.images import make_grid, save_png
        from vaegen.latent import manifold_2d, traversal

        _check_output(output, (".png",))
        model = _open_model(model_dir, provider, threads, verbose)
        d = model.bundle.latent_dim
        if d == 2 and dims is None and image is None:
            _check_grid(model.bundle.image_shape, steps * steps, steps, scale, f"--steps {steps}")
            z = manifold_2d(steps)
            chosen = [0, 1]
        else:
            base = model.encode(_read_images(model, [image]))[0][0] if image is not None else np.zeros(d, np.float32)
            if dims is not None:
                try:
                    chosen = [int(v) for v in dims.split(",") if v.strip()]
                except ValueError:
                    raise click.BadParameter(f"{dims!r} is not a comma-separated list of integers.",
                                             param_hint="--dims") from None
                bad = [v for v in chosen if not 0 <= v < d]
                if bad or not chosen:
                    raise click.BadParameter(f"dimensions must lie in 0..{d - 1}, got {dims}.", param_hint="--dims")
            else:
                chosen = _active_dims(model, d)
            _check_grid(model.bundle.image_shape, len(chosen) * steps, steps, scale, f"--steps {steps}")
            z = traversal(base, steps, span=span, dims=chosen)
        save_png(make_grid(model.decode(z), nrow=steps), output, scale=scale)
        _emit({"output": str(output), "dims": chosen, "steps": steps, "span": span}, as_json,
              [] if quiet else [f"Wrote a traversal of dimensions {', '.join(map(str, chosen))} to {output}"])
    return traverse


def _active_dims(model, d: int, limit: int = 16) -> list[int]:
    """Dimensions ordered by how much decoding changes along them (most first)."""
    import numpy as np

    probes = np.zeros((2 * d, d), np.float32)
    for i in range(d):
        probes[2 * i, i], probes[2 * i + 1, i] = -2.0, 2.0
    out = model.decode(probes).reshape(d, 2, -1)
    change = np.abs(out[:, 0] - out[:, 1]).sum(axis=1)
    return sorted(np.argsort(-change)[: min(limit, d)].tolist(), key=lambda i: -change[i])


# ---------------------------------------------------------------- info


@cli.lazy_command("info")
def _make_info() -> click.Command:
    @click.command()
    @click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
    @model_options
    def info(as_json, model_dir, provider, threads, verbose):
        """Describe the model bundle and the execution providers that really run.

        \b
        Example:
            vaegen info
            vaegen info --model runs/mnist --json
        """
        from vaegen.runtime import provider_report

        model = _open_model(model_dir, provider, threads, verbose)
        model.encoder, model.decoder  # noqa: B018 (load and check both graphs: info vouches for the whole bundle)
        meta = model.bundle.meta
        report = provider_report()
        report["active"] = model.active_provider
        data = {"model": str(model.bundle.path), "bundle": meta, "providers": report}
        # Descriptive fields are not checked when a bundle loads; a wrong type shows as '?'.
        arch = meta.get("architecture") if isinstance(meta.get("architecture"), dict) else {}
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        lines = [
            f"model        {model.bundle.path}",
            f"dataset      {meta.get('dataset', '?')}",
            f"architecture {arch.get('arch', '?')}, latent_dim {meta['latent_dim']}, "
            f"image {'x'.join(map(str, meta['image_shape']))}",
            f"likelihood   {meta.get('likelihood', '?')}, preprocessing {meta.get('preprocessing', '?')}",
        ]
        for key, value in metrics.items():
            lines.append(f"metric       {key} = {value:.2f}" if isinstance(value, float) else f"metric       {key} = {value}")
        lines += [
            f"onnxruntime  {report['onnxruntime']}",
            f"installed    {', '.join(report['installed'])}",
            f"usable       {', '.join(report['usable'])}",
            f"active       {report['active']}",
        ]
        _emit(data, as_json, lines)
    return info


# ---------------------------------------------------------------- evaluate


@cli.lazy_command("evaluate")
def _make_evaluate() -> click.Command:
    @click.command()
    @click.option("--dataset", default="mnist", help="mnist, fashion-mnist, or a folder of PNG/JPEG images.")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Where the IDX files are. [default: $VAEGEN_DATA_DIR, else ~/.cache/vaegen/<dataset>]")
    @click.option("--split", type=click.Choice(["test", "train"]), default="test", help="Which split to score.")
    @click.option("--k", "k", type=click.IntRange(min=1), default=1000, help="Importance samples per image.")
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Score only the first N images. [default: all]")
    @click.option("--seed", type=int, default=0, help="Seed of the importance samples.")
    @click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
    @model_options
    @quiet_option
    def evaluate(dataset, data_dir, split, k, limit, seed, as_json, model_dir, provider, threads, verbose, quiet):
        """Score a model on held-out data: negative ELBO, importance-weighted NLL
        (Burda et al. 2015) and active units, in nats per image.

        The images are binarized once with a fixed seed (stochastic binarization).

        \b
        Example:
            vaegen evaluate --limit 500 --k 100
            vaegen evaluate --json > metrics.json
        """
        from vaegen.data import binarize, load_dataset
        from vaegen.metrics import evaluate as run_evaluation

        model = _open_model(model_dir, provider, threads, verbose)
        c, h, w = model.bundle.image_shape
        data = load_dataset(dataset, split, data_dir, channels=c, size=(h, w))
        if data.images.shape[1:] != tuple(model.bundle.image_shape):
            raise VaegenError(f"{dataset} images are {data.images.shape[1:]}, the model takes {model.bundle.image_shape}.")
        images = data.images[:limit] if limit else data.images
        x = binarize(images, seed=0)
        with _progress(len(x), f"evaluating k={k}", quiet) as bar:
            result = run_evaluation(model, x, k=k, seed=seed, progress=bar.update)
        result.update({"dataset": dataset, "split": split, "model": str(model.bundle.path), "provider": model.active_provider})
        _emit(result, as_json, [
            f"images        {result['images']} ({dataset} {split}, binarized with seed 0)",
            f"NLL (k={k})    {result['nll']:.2f} nats",
            f"-ELBO         {result['neg_elbo']:.2f} nats (reconstruction {result['recon']:.2f} + KL {result['kl']:.2f})",
            f"active units  {result['active_units']} of {result['latent_dim']}",
            f"speed         {result['images_per_s']:.1f} images/s ({result['seconds']:.1f} s)",
        ])
    return evaluate


# ---------------------------------------------------------------- export


@cli.lazy_command("export")
def _make_export() -> click.Command:
    @click.command()
    @click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Bundle folder to write.")
    @click.option("--fp16", is_flag=True, help="Half-precision decoder (for GPUs), checked at a looser stated tolerance.")
    @quiet_option
    def export(checkpoint, output, fp16, quiet):
        """Export a training checkpoint to a verified ONNX model bundle.

        The bundle is built aside and moved into place only after the parity
        check against torch passes; an old bundle there is swapped out whole.

        \b
        Example:
            vaegen export runs/mnist/checkpoint.pt -o my-model
        """
        _require_torch("export")
        from vaegen.training.export import export_checkpoint

        if output.exists() and not output.is_dir():
            raise click.UsageError(f"-o {output} is a file; give a folder for the bundle.")
        bundle = export_checkpoint(checkpoint, output, fp16=fp16)
        _echo_err(f"Model bundle written to {bundle}", quiet)
        _echo_err(f"Next: vaegen sample --model {bundle} -n 64 -o grid.png", quiet)
    return export


def main() -> None:
    cli(prog_name="vaegen")
