"""`vaegen train`: the one command that needs torch (it is imported inside)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from vaegen.cli import options
from vaegen.recipes import default_note

# With --resume, these options given now override the saved ones (the resume
# policy in vaegen.training.config decides which may change); an option not
# given keeps the run's own value. --epochs, not given, is the run's own total.
OVERRIDABLE = {"arch", "latent_dim", "hidden", "decoder_layers", "conv_channels", "conv_blocks", "image_size",
               "channels", "dataset", "likelihood", "batch_size", "lr", "lr_schedule", "beta", "kl_warmup", "binarize",
               "iw_samples", "iw_estimator", "precision"}


class ClickReporter:
    """The loop's reporter: a progress bar per epoch and a summary line per epoch, on stderr."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.download = options.DataProgress("loading data", quiet)

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
        options.echo_err(text, self.quiet)

    def close(self):
        self.download.close()
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


def _configs(ctx: click.Context, p: dict):
    """TrainConfig and ModelConfig from the parsed options; an option not
    given takes the dataset's recipe (vaegen.recipes)."""
    from vaegen.data.load import likelihood_for
    from vaegen.data.named import DATASETS
    from vaegen.errors import ArgumentError
    from vaegen.recipes import recipe
    from vaegen.training.config import TrainConfig
    from vaegen.training.distributed import cuda_chosen
    from vaegen.training.model import ModelConfig

    settings = recipe(p["dataset"], gpu=cuda_chosen(p["device"]))
    # A GPU recipe is for its own arch: another arch, or the mlp's --decoder-layers, takes the CPU recipe.
    asked = p["arch"] or ("mlp" if p["decoder_layers"] is not None else None)
    if asked is not None and asked != settings["arch"]:
        settings = recipe(p["dataset"])
    gpu_recipe = settings != recipe(p["dataset"])
    if (p["arch"] or settings["arch"]) != "mlp":
        settings["decoder_layers"] = None  # the recipes' decoder depth is the mlp's
    p = {**p, **{k: settings[k] for k in settings if p.get(k) is None}}
    size = 28 if p["dataset"] in DATASETS else p["image_size"]
    try:
        likelihood = likelihood_for(p["dataset"], p["binarize"], p["likelihood"])
        model_cfg = ModelConfig(arch=p["arch"], channels=int(p["channels"]), height=size, width=size,
                                latent_dim=p["latent_dim"], hidden=p["hidden"], decoder_layers=p["decoder_layers"],
                                conv_channels=p["conv_channels"], conv_blocks=p["conv_blocks"], likelihood=likelihood)
    except (ValueError, ArgumentError) as exc:
        raise click.UsageError(str(exc)) from None
    p["binarize"] = likelihood == "bernoulli"
    keys = ("dataset", "epochs", "batch_size", "lr", "lr_schedule", "beta", "kl_warmup", "binarize", "iw_samples",
            "iw_estimator", "seed", "device", "precision", "threads")
    # The command as recorded must make this model anywhere: on a CPU, "auto" would take the CPU recipe.
    command = command_line(ctx) + (" --device cuda" if gpu_recipe and p["device"] == "auto" else "")
    cfg = TrainConfig(**{key: p[key] for key in keys}, data_dir=str(p["data_dir"]) if p["data_dir"] else None,
                      command=command)
    return cfg, model_cfg


def _saved_settings(out: Path) -> dict:
    """The run in `out` as options ({} where there is none; train says so):
    its total epochs (`--resume` without --epochs finishes it) and its
    model's shape, so that neither today's recipe nor this machine's device
    can build another model before the resume check."""
    from vaegen.training.checkpoint import CHECKPOINT, load_checkpoint
    from vaegen.training.config import TrainConfig

    if not (out / CHECKPOINT).is_file():
        return {}
    state = load_checkpoint(out / CHECKPOINT)
    shape = ("arch", "latent_dim", "hidden", "decoder_layers", "conv_channels", "conv_blocks")
    return {"epochs": TrainConfig.from_dict(state["train_config"]).epochs,
            **{k: state["model_config"][k] for k in shape if k in state["model_config"]}}


def _fit_prior(out: Path, bundle: Path, quiet: bool) -> None:
    """The end of every run: the fitted prior, on the run's own data and seed
    (as the checkpoint has them: a resumed run keeps its --data-dir)."""
    from vaegen.api import load_model
    from vaegen.training.checkpoint import CHECKPOINT, load_checkpoint
    from vaegen.training.config import TrainConfig

    options.require_sklearn("train")
    cfg = TrainConfig.from_dict(load_checkpoint(out / CHECKPOINT)["train_config"])
    facts = options.fit_and_install(load_model(bundle, provider="cpu", threads=cfg.threads), cfg.dataset, cfg.data_dir,
                            {"seed": cfg.seed}, quiet)
    options.echo_err(f"Fitted a {facts['components']}-component prior in {facts['fit_seconds']} s", quiet)


@click.command()
@options.data_options("mnist")
@click.option("--arch", type=click.Choice(["mlp", "conv"]), default=None,
              help="mlp: dense layers, the most model per minute on a CPU. conv: strided convolutions, "
                   "a little better per epoch but several times the time an epoch on a CPU, where PyTorch's "
                   "convolution backward pass is slow (docs/training.md). " + default_note("arch"))
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
@click.option("--likelihood", type=click.Choice(["bernoulli", "logistic"]), default=None,
              help="p(x|z): bernoulli, for binarized pixels; logistic, a discretized logistic over the 256 levels "
                   "of each 8-bit value (Salimans et al. 2017). [default: bernoulli for mnist (binarized), "
                   "logistic for fashion-mnist and image folders]")
@click.option("--image-size", type=click.IntRange(min=4), default=28, help="Side of the square images (image folders).")
@click.option("--channels", type=click.Choice(["1", "3"]), default="1", help="1 for grayscale, 3 for RGB (image folders).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs to train: the run's total. --resume without it finishes the run's own total. "
                   + default_note("epochs"))
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per optimisation step. " + default_note("batch_size"))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam learning rate (the peak of the schedule). " + default_note("lr"))
@click.option("--lr-schedule", type=click.Choice(["cosine", "constant"]), default="cosine",
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
@click.option("--iw-samples", type=click.IntRange(min=1), default=1,
              help="Samples per image; >1 trains on the importance-weighted bound.")
@click.option("--iw-estimator", type=click.Choice(["iwae", "dreg"]), default="iwae",
              help="The encoder's gradient of that bound: iwae (Burda et al.), or dreg, the doubly "
                   "reparameterized one (Tucker et al. 2018), whose signal does not fade as --iw-samples grows.")
@click.option("--seed", type=int, default=0, help="Random seed (initialisation, shuffling, noise).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="auto: CUDA when torch sees a GPU. On CUDA, a dataset with a GPU recipe (fashion-mnist) trains it.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
              help="bf16 runs the forward pass in bfloat16 autocast (CUDA only).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch. [default: torch's choice]")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder. [default: runs/<dataset>]")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out up to --epochs, with its saved settings; options given now win.")
@click.option("--fit-prior/--no-fit-prior", default=True,
              help="After export, fit the latent prior that `vaegen sample` draws from (see `vaegen fit-prior`).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def train(**p):
    """Train a VAE with PyTorch and export it as an ONNX model bundle.

    Each dataset has a default recipe, the best model per minute measured on
    a CPU (docs/training.md). MNIST's: an mlp (encoder 784-512-256, 32-d
    latent, decoder 32-256-256-256-512-784), 26 epochs at batch 256, Adam
    3e-3 on a cosine schedule, KL warm-up over 2 epochs; on 2 CPU cores about
    3 minutes (export and prior fit included) for about 88 nats. MNIST is
    binarized (a Bernoulli likelihood); Fashion-MNIST and image folders are
    modelled in their 256 levels (a discretized logistic), scored in bits/dim.
    On a GPU, Fashion-MNIST's recipe is the shipped model's: a conv (64
    channels, one 3x3 block a resolution, 64-d latent), 50 epochs at KL
    weight 0.05, 1.8 minutes of epochs on one H200. The others run there as
    they are.

    Each epoch writes a checkpoint, metrics.jsonl and a sample grid in the
    run folder; the bundle goes to <out>/model, ready for `vaegen sample`.

    Under torchrun (`torchrun --nproc-per-node N -m vaegen train ...`) it
    trains with DistributedDataParallel: --batch-size is the global batch,
    split evenly over the processes, and rank 0 alone writes files.

    \b
    Example:
        vaegen train
        vaegen train --dataset fashion-mnist
        vaegen train --latent-dim 2 --out runs/mnist-2d
        vaegen train --resume --epochs 40 --out runs/mnist
    """
    options.require_torch("train")
    from vaegen.training.loop import Interrupted
    from vaegen.training.loop import train as run_training

    ctx = click.get_current_context()
    given = {name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    dataset, quiet = p["dataset"], p["quiet"]
    out = p["out"] or Path("runs") / Path(dataset).name
    if p["resume"]:
        p = {**p, **{k: v for k, v in _saved_settings(out).items() if p.get(k) is None}}
    cfg, model_cfg = _configs(ctx, p)
    reporter = ClickReporter(quiet)
    try:
        run_training(cfg, model_cfg, out, resume=p["resume"], overrides=given & OVERRIDABLE, reporter=reporter)
    except Interrupted as exc:
        reporter.close()
        raise click.ClickException(
            f"Interrupted; the checkpoint of epoch {exc.epoch_done} is kept in {exc.out}. "
            f"Continue with: vaegen train --resume --out {exc.out}"
        ) from None
    finally:
        reporter.close()
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 exports
    from vaegen.training.export import export_run

    bundle = export_run(out)
    if p["fit_prior"]:
        _fit_prior(out, bundle, quiet)
    options.echo_err(f"Model bundle written to {bundle}", quiet)
    options.echo_err(f"Next: vaegen sample --model {bundle} -n 64 -o grid.png", quiet)
