"""`vaegen train`: parses the options, calls the library's train
(vaegen.training.pipeline, which imports torch: it is imported inside), and
draws its progress on stderr."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vaegen.archs import ARCHS
from vaegen.choices import CHANNELS, DEVICES, IW_ESTIMATORS, LR_SCHEDULES, PRECISIONS
from vaegen.cli import options
from vaegen.likelihoods import LIKELIHOODS
from vaegen.recipes import COLOUR, COMMON, default_note, recipe


class ClickReporter:
    """The loop's reporter: a progress bar per epoch and a summary line per epoch, on stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.download = options.DataProgress("loading data", quiet)
        self.scoring = options.DataProgress("scoring held-out images", quiet)

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
        self.close()
        options.echo_err(
            f"epoch {m['epoch']}: train {m['train_loss']:.2f}  test -ELBO {m['test_neg_elbo']:.2f} "
            f"(recon {m['test_recon']:.2f}, KL {m['test_kl']:.2f})  {m['seconds']:.1f} s, "
            f"{m['images_per_s']:.0f} img/s",
            self.quiet,
        )

    def message(self, text):
        self.scoring.close()  # the held-out images' bar ends before the line that reports the fit
        options.echo_err(text, self.quiet)

    def close(self):
        self.download.close()
        self.scoring.close()
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def command_line(ctx: click.Context) -> str:
    """The command as a user would retype it: the options that differ from
    their defaults. It goes into vaegen.json and the model card, so it names
    no folder of this machine: --data-dir is left out (where the data lies is
    not part of the recipe), and an absolute --out or dataset folder is shown
    by its own name."""
    from pathlib import PurePath

    words = ["vaegen", ctx.info_name or "train"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None or value == param.default or param.name == "data_dir":
            continue
        if param.is_flag:
            if value:
                words.append(param.opts[0])
            elif param.secondary_opts:
                words.append(param.secondary_opts[0])
        else:
            if param.name in ("out", "dataset") and PurePath(str(value)).is_absolute():
                value = PurePath(str(value)).name
            words += [param.opts[0], str(value)]
    import shlex

    return shlex.join(words)


def recipe_help(f):
    """Fill the command's help with the recipes' own numbers (vaegen.recipes), so that it copies none."""
    mnist, gpu = recipe("mnist"), recipe("fashion-mnist", gpu=True)
    h, d, pixels = mnist["hidden"], mnist["latent_dim"], COMMON["image_size"] ** 2
    decoder = [d] + [h] * (mnist["decoder_layers"] - 1) + [2 * h, pixels]  # the mlp's layers (vaegen.training.model)
    f.__doc__ = f.__doc__.format(mnist=mnist, gpu=gpu, common=COMMON, colour=COLOUR, encoder=f"{pixels}-{2 * h}-{h}",
                                 decoder="-".join(map(str, decoder)))
    return f


@click.command()
@options.data_options("mnist")
@click.option("--arch", type=click.Choice(ARCHS), default=None,
              help="mlp: dense layers, the most model per minute on a CPU. conv: strided convolutions, "
                   "a little better per epoch but several times the time an epoch on a CPU, where PyTorch's "
                   "convolution backward pass is slow (docs/training.md). resnet: residual convolutions by "
                   "levels with GroupNorm and SiLU, for colour and larger images (any power-of-two side from 8). "
                   + default_note("arch"))
@click.option("--latent-dim", type=click.IntRange(min=1), default=None,
              help="Number of latent dimensions. " + default_note("latent_dim"))
@click.option("--hidden", type=click.IntRange(min=1), default=None,
              help="Width of the dense layers (the mlp's outer layers are twice this). " + default_note("hidden"))
@click.option("--decoder-layers", type=click.IntRange(min=1), default=None,
              help="Hidden layers of the mlp decoder (the last one 2x --hidden wide). " + default_note("decoder_layers"))
@click.option("--conv-channels", type=click.IntRange(min=1), default=None,
              help="conv: channels at half resolution (twice this at quarter resolution). "
                   + default_note("conv_channels"))
@click.option("--conv-blocks", type=click.IntRange(min=0), default=None,
              help="conv: 3x3 convolutions added at each resolution of the encoder and decoder (deeper, slower). "
                   + default_note("conv_blocks"))
@click.option("--res-channels", default=None,
              help="resnet: channels at each level, from half resolution down to a 4x4 map, comma-separated "
                   "(the last repeats for larger images). " + default_note("res_channels"))
@click.option("--res-blocks", type=click.IntRange(min=0), default=None,
              help="resnet: residual blocks at each level of the encoder and the decoder. " + default_note("res_blocks"))
@click.option("--likelihood", type=click.Choice(tuple(LIKELIHOODS)), default=None,
              help="p(x|z): bernoulli, for binarized pixels; logistic, a discretized logistic over the 256 levels "
                   "of each 8-bit value (Salimans et al. 2017); logistic-shared, the same with one scale per image "
                   "and channel (sharper pictures, more bits/dim); logistic-dual, the location trained as "
                   "logistic-shared's and scored with a per-value scale. [default: bernoulli for mnist "
                   "(binarized), logistic-dual for folders in colour, logistic otherwise]")
@click.option("--image-size", type=click.IntRange(min=4), default=COMMON["image_size"],
              help="Side of the square images (image folders). [default: 64 for a folder in colour "
                   "(--channels 3), 28 otherwise]")
@click.option("--channels", type=click.Choice([str(c) for c in CHANNELS]), default=str(COMMON["channels"]),
              help="1 for grayscale, 3 for RGB (image folders).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs to train: the run's total. --resume without it finishes the run's own total. "
                   + default_note("epochs"))
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per optimisation step. " + default_note("batch_size"))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate (the peak of the schedule). " + default_note("lr"))
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=COMMON["lr_schedule"],
              help="cosine decays to lr/100 over the run. With --resume, a new --lr or --lr-schedule "
                   "starts a new stage: its schedule runs from the resumed epoch to --epochs.")
@click.option("--beta", type=click.FloatRange(min=0), default=None,
              help="Weight of the KL term. Below 1, the latent codes keep more of each image; the fitted prior "
                   "that samples are drawn from then matters more. " + default_note("beta"))
@click.option("--kl-warmup", type=click.FloatRange(min=0), default=None,
              help="Epochs over which the KL weight ramps up from 0 (lets the decoder learn before the "
                   "KL term prunes latent units). " + default_note("kl_warmup"))
@click.option("--binarize/--no-binarize", default=None,
              help="Dynamic binarization (a fresh Bernoulli draw each time an image is seen), with the bernoulli "
                   "likelihood. [default: on for mnist only]")
@click.option("--iw-samples", type=click.IntRange(min=1), default=COMMON["iw_samples"],
              help="Samples per image; >1 trains on the importance-weighted bound.")
@click.option("--iw-estimator", type=click.Choice(IW_ESTIMATORS), default=COMMON["iw_estimator"],
              help="The encoder's gradient of that bound: iwae (Burda et al.), or dreg, the doubly "
                   "reparameterized one (Tucker et al. 2018), whose signal does not fade as --iw-samples grows.")
@click.option("--seed", type=int, default=COMMON["seed"], help="Random seed (initialisation, shuffling, noise).")
@click.option("--device", type=click.Choice(DEVICES), default=COMMON["device"],
              help="auto: CUDA when torch sees a GPU. On CUDA, a dataset with a GPU recipe (fashion-mnist) trains it.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=COMMON["precision"],
              help="bf16 runs the forward pass in bfloat16 autocast (CUDA only).")
@click.option("--threads", type=click.IntRange(min=1), default=COMMON["threads"],
              help="CPU threads for torch. [default: torch's choice]")
@click.option("--flip/--no-flip", default=COMMON["flip"], show_default=True,
              help="Mirror each training image left to right with probability 1/2 (augmentation; it mirrors "
                   "text and flags, hence off).")
@click.option("--background", type=click.IntRange(0, 255), default=COMMON["background"], show_default=True,
              help="The grey level (0-255) under transparent pixels of a folder's images; the bundle records it, "
                   "so the light commands prepare your images the same way.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder. [default: runs/<dataset>]")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out up to --epochs, with its saved settings; options given now win.")
@click.option("--fit-prior/--no-fit-prior", default=True,
              help="After export, fit the latent prior that `vaegen sample` draws from (see `vaegen fit-prior`).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@recipe_help
def train(**p):
    """Train a VAE with PyTorch and export it as an ONNX model bundle.

    Each dataset has a default recipe, the best model per minute measured on
    a CPU (docs/training.md). MNIST's: an {mnist[arch]} (encoder {encoder},
    {mnist[latent_dim]}-d latent, decoder {decoder}), {mnist[epochs]} epochs at
    batch {mnist[batch_size]}, Adam {mnist[lr]:g} on a {common[lr_schedule]}
    schedule, KL warm-up over {mnist[kl_warmup]:g} epochs; on 2 CPU cores about
    3 minutes (export and prior fit included) for about 88 nats. MNIST is
    binarized (a Bernoulli likelihood); Fashion-MNIST and image folders are
    modelled in their 256 levels (a discretized logistic), scored in bits/dim.
    On a GPU, Fashion-MNIST's recipe is the shipped model's: a {gpu[arch]}
    ({gpu[conv_channels]} channels, --conv-blocks {gpu[conv_blocks]},
    {gpu[latent_dim]}-d latent), {gpu[epochs]} epochs at KL weight
    {gpu[beta]:g}, 1.8 minutes of epochs on one H200. The others run there as
    they are. A folder in colour (--channels 3) takes the colour recipe, a
    {colour[arch]} at {colour[image_size]}x{colour[image_size]} for {colour[epochs]} epochs: 25 min for 7,562 emoji on 2 cores.

    Each epoch writes a checkpoint, metrics.jsonl and a sample grid in the
    run folder; the bundle goes to <out>/model, ready for `vaegen sample`.

    Under torchrun (`torchrun --nproc-per-node N -m vaegen train ...`) it trains
    with DDP: --batch-size is the global batch, rank 0 alone writes files.

    \b
    Example:
        vaegen train
        vaegen train --dataset photos/ --channels 3
        vaegen train --latent-dim 2 --out runs/mnist-2d
        vaegen train --resume --epochs 40 --out runs/mnist
    """
    options.require_torch("train")
    if p["fit_prior"]:
        options.require_sklearn("train")
    from vaegen.training.loop import Interrupted
    from vaegen.training.pipeline import MODEL_SETTINGS, RUN_SETTINGS
    from vaegen.training.pipeline import train as train_model

    # Only the options given are passed: one not given takes the recipe, or on --resume the run's own value.
    settings = {name: p[name] for name in MODEL_SETTINGS + RUN_SETTINGS if options.given_any(name)}
    if "channels" in settings:
        settings["channels"] = int(settings["channels"])
    dataset = p["dataset"] if options.given_any("dataset") else None
    reporter = ClickReporter(p["quiet"])
    try:
        model = train_model(dataset, p["out"], resume=p["resume"], fit_prior=p["fit_prior"], data_dir=p["data_dir"],
                            progress=reporter, command=command_line(click.get_current_context()), **settings)
    except Interrupted as exc:
        reporter.close()
        raise click.ClickException(
            f"Interrupted; the checkpoint of epoch {exc.epoch_done} is kept in {exc.out}. "
            f"Continue with: vaegen train --resume --out {exc.out}"
        ) from None
    finally:
        reporter.close()
    if model is None:
        return  # under torchrun, rank 0 exports and reports
    bundle = model.bundle.path
    options.echo_err(f"Model bundle written to {bundle}", p["quiet"])
    options.echo_err(f"Next: vaegen sample --model {bundle} -n 64 -o grid.png", p["quiet"])
