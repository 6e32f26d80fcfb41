"""The architecture registry (vaegen.training.architectures) and ModelConfig:
lookups, each architecture's settings through the saved forms (the flat dict
of checkpoints and bundles, old and new), the named output layer, and an
architecture registered by a test alone that trains and exports.

These tests need torch (the train extra).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import train_tiny

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from vaegen.archs import ARCH_SETTINGS, ARCHS  # noqa: E402
from vaegen.errors import ArgumentError  # noqa: E402
from vaegen.training.architectures import ARCHITECTURES, Architecture, Layers, Settings, get_architecture  # noqa: E402
from vaegen.training.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from vaegen.training.model import VAE, ModelConfig  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
SHARED = ("arch", "channels", "height", "width", "latent_dim", "likelihood")


def test_an_architecture_is_found_by_name_and_an_unknown_one_names_the_known():
    assert get_architecture("conv") is ARCHITECTURES["conv"]
    with pytest.raises(ArgumentError, match=r"^unknown arch 'vit'; choose one of mlp, conv, resnet$"):
        get_architecture("vit")
    with pytest.raises(ArgumentError, match="unknown arch 'vit'"):
        ModelConfig(arch="vit")


def test_the_light_sides_list_is_the_registry():
    """vaegen.archs (read without torch: --arch, the model card) names each
    registered architecture and its settings, in their order."""
    assert ARCHS == tuple(ARCHITECTURES)
    for name, architecture in ARCHITECTURES.items():
        assert architecture.name == name
        assert ARCH_SETTINGS[name] == tuple(architecture.Settings.defaults()), name


@pytest.mark.parametrize("arch, settings", [("mlp", {"hidden": 8, "decoder_layers": 3}),
                                            ("conv", {"hidden": 8, "conv_channels": 4, "conv_blocks": 2})])
def test_settings_round_trip_through_the_saved_dict(arch, settings):
    cfg = ModelConfig(arch=arch, channels=3, height=8, width=12, latent_dim=2, likelihood="logistic", **settings)
    assert cfg.settings == ARCHITECTURES[arch].Settings(**settings)
    saved = cfg.to_dict()
    assert saved == {"arch": arch, "channels": 3, "height": 8, "width": 12, "latent_dim": 2, "likelihood": "logistic",
                     **settings}  # the architecture's own settings only
    assert ModelConfig.from_dict(json.loads(json.dumps(saved))) == cfg
    assert ModelConfig(**saved) == cfg  # the flat form builds it too, as the train options do
    assert cfg.settings.to_dict() == settings and type(cfg.settings).from_dict(saved) == cfg.settings


@pytest.mark.parametrize("model", ["mnist", "fashion-mnist"])
def test_a_shipped_bundles_flat_dict_rebuilds_its_model_module_for_module(model):
    """The shipped bundles hold every architecture's settings in one flat
    dict (the conv its 'decoder_layers 2'): they rebuild the same modules, and
    save again as their architecture's own settings."""
    old = json.loads((WEIGHTS / model / "vaegen.json").read_text())["architecture"]
    cfg = ModelConfig.from_dict(old)
    assert set(cfg.to_dict()) == {*SHARED, *ARCH_SETTINGS[old["arch"]]}
    assert {k: v for k, v in cfg.to_dict().items() if k in old} == {k: old[k] for k in cfg.to_dict() if k in old}
    shapes = lambda c: [(k, v.shape) for k, v in VAE(c).state_dict().items()]  # noqa: E731
    assert shapes(cfg) == shapes(ModelConfig.from_dict(cfg.to_dict()))


def test_an_old_flat_checkpoint_loads(tmp_path):
    """A checkpoint whose model_config is the flat dict of every setting (the conv's decoder_layers among them)."""
    from vaegen.training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint

    old = {"arch": "conv", "channels": 1, "height": 28, "width": 28, "latent_dim": 3, "hidden": 16, "conv_channels": 4,
           "conv_blocks": 1, "decoder_layers": 2, "likelihood": "logistic"}
    torch.manual_seed(0)
    model = VAE(ModelConfig.from_dict(old))
    save_checkpoint(tmp_path / "c.pt", {"format": CHECKPOINT_FORMAT, "model_config": old, "model": model.state_dict()})
    loaded = model_from_checkpoint(load_checkpoint(tmp_path / "c.pt"))
    assert loaded.cfg.conv_blocks == 1 and "decoder_layers" not in loaded.cfg.to_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_the_flat_form_refuses_another_architectures_setting_and_reads_its_default():
    with pytest.raises(ValueError, match="^--conv-channels applies to the conv arch only$"):
        ModelConfig(arch="mlp", conv_channels=8)
    with pytest.raises(ValueError, match="^--decoder-layers applies to the mlp arch only$"):
        ModelConfig(arch="conv", decoder_layers=3)
    with pytest.raises(TypeError, match="unknown settings: depth"):
        ModelConfig(depth=3)
    with pytest.raises(TypeError, match="not both"):
        ModelConfig(arch="conv", settings=ARCHITECTURES["mlp"].Settings())
    with pytest.raises(ValueError, match="divisible by 4"):
        ModelConfig(arch="conv", height=30)
    cfg = ModelConfig(arch="mlp", conv_channels=32, conv_blocks=0, decoder_layers=None)  # as the CLI passes them
    assert (cfg.decoder_layers, cfg.conv_channels, cfg.conv_blocks) == (4, 32, 0)  # the conv's defaults, read flat
    with pytest.raises(AttributeError):
        cfg.depth  # noqa: B018


@pytest.mark.parametrize("arch, blocks", [("mlp", 0), ("conv", 0), ("conv", 1)])
def test_the_decoder_names_its_output_layer(arch, blocks):
    model = VAE(ModelConfig(arch=arch, latent_dim=2, hidden=8, **({"conv_channels": 4, "conv_blocks": blocks}
                                                                   if arch == "conv" else {})))
    output = model.decoder.output
    assert output is model.decoder[-1]
    assert not any(".output." in k for k in model.state_dict())  # a name, not a second registration
    twin = copy.deepcopy(model).half()
    assert twin.decoder.output is twin.decoder[-1] and twin.decoder.output.weight.dtype == torch.float16
    mean = torch.full((1, 28, 28), 0.25)
    model.init_output_bias(mean)
    with torch.no_grad():
        output.weight.zero_()  # the output is then its bias alone
    torch.testing.assert_close(model.image(model.decode(torch.zeros(1, 2)))[0], mean, atol=1e-6, rtol=0)


@dataclass(frozen=True)
class ToySettings(Settings):
    toy_width: int = 6


class Toy(Architecture):
    """A toy: one dense layer each way. Registered by the tests alone, to
    show that an architecture needs no other file."""

    name = "toy"
    Settings = ToySettings

    @classmethod
    def encoder(cls, cfg):
        width = cfg.settings.toy_width
        return nn.Sequential(nn.Flatten(), nn.Linear(cfg.pixels, width), nn.ELU(), nn.Linear(width, 2 * cfg.latent_dim))

    @classmethod
    def decoder(cls, cfg):
        output = nn.Linear(cfg.latent_dim, cfg.outputs_per_value * cfg.pixels)
        return Layers(output, nn.Unflatten(1, (cfg.outputs_per_value * cfg.channels, cfg.height, cfg.width)),
                      output=output)

    @classmethod
    def output_bias(cls, start):
        return start.reshape(-1)


def test_an_architecture_registered_alone_trains_exports_and_rebuilds(tmp_path, monkeypatch):
    from vaegen.api import load_model

    monkeypatch.setitem(ARCHITECTURES, "toy", Toy)
    with pytest.raises(ValueError, match="--toy-width applies to the toy arch only"):
        ModelConfig(arch="mlp", toy_width=3)
    bundle = train_tiny(tmp_path, ModelConfig(arch="toy", latent_dim=2, toy_width=5))
    meta = json.loads((bundle / "vaegen.json").read_text())
    assert meta["architecture"] == {"arch": "toy", "channels": 1, "height": 28, "width": 28, "latent_dim": 2,
                                    "likelihood": "bernoulli", "toy_width": 5}
    assert "- architecture: arch toy" in (bundle / "README.md").read_text()
    model = model_from_checkpoint(load_checkpoint(tmp_path / "run" / "checkpoint.pt"))
    assert model.cfg.settings == ToySettings(toy_width=5) and model.encoder[1].out_features == 5
    assert load_model(bundle, provider="cpu", threads=1).sample(3, seed=0).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("side, expected", [(8, [32]), (32, [32, 64, 128]), (64, [32, 64, 128, 256]),
                                            (128, [32, 64, 128, 256, 256])])
def test_the_resnet_has_a_level_per_halving_down_to_a_4x4_map(side, expected):
    from vaegen.training.architectures.resnet import RES_GRID, levels
    from vaegen.training.model import VAE, ModelConfig

    cfg = ModelConfig(arch="resnet", channels=3, height=side, width=side, latent_dim=8, likelihood="logistic")
    assert levels(cfg) == expected
    model = VAE(cfg).eval()
    with torch.no_grad():
        mu, _ = model.encode(torch.rand(2, 3, side, side))
        params = model.decode(mu)
    assert mu.shape == (2, 8) and params.shape == (2, 6, side, side)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.decoder.modules())  # no checkerboard
    assert RES_GRID == 4


@pytest.mark.parametrize("side", [12, 24, 4])
def test_the_resnet_refuses_a_side_that_is_not_a_power_of_two_from_8(side):
    from vaegen.training.model import ModelConfig

    with pytest.raises(ValueError, match="power of two"):
        ModelConfig(arch="resnet", channels=3, height=side, width=side, likelihood="logistic")


def test_a_resnet_trains_exports_with_parity_and_samples_in_colour(tmp_path):
    import numpy as np
    from PIL import Image

    import vaegen

    rng = np.random.default_rng(0)
    for i in range(40):
        (tmp_path / "icons" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "icons" / f"c{i % 2}" / f"{i}.png")
    model = vaegen.train(tmp_path / "icons", tmp_path / "run", arch="resnet", image_size=16, channels=3, latent_dim=4,
                         res_channels="8,16", epochs=1, batch_size=8, threads=1, fit_prior=False)
    meta = model.bundle.meta
    assert meta["architecture"]["res_channels"] == "8,16" and max(meta["parity_max_abs_diff"].values()) < 1e-4
    assert model.sample(3, seed=0).shape == (3, 3, 16, 16)


def test_a_resnet_run_keeps_its_own_settings_on_resume(tmp_path):
    """The resume policy knows every architecture's settings from vaegen.archs: a resnet's channels may be
    repeated but not changed, and a resume without them rebuilds the run's own model."""
    import numpy as np
    from PIL import Image

    import vaegen
    from vaegen.errors import TrainingError

    rng = np.random.default_rng(1)
    for i in range(40):
        (tmp_path / "icons" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "icons" / "a" / f"{i}.png")
    common = dict(arch="resnet", image_size=8, channels=3, latent_dim=2, batch_size=8, threads=1, fit_prior=False)
    vaegen.train(tmp_path / "icons", tmp_path / "run", res_channels="4", epochs=1, **common)
    with pytest.raises(TrainingError, match="--res-channels cannot change when resuming"):
        vaegen.train(tmp_path / "icons", tmp_path / "run", resume=True, res_channels="8", epochs=2, **common)
    model = vaegen.train(None, tmp_path / "run", resume=True, epochs=2, threads=1, fit_prior=False)
    assert model.bundle.meta["architecture"]["res_channels"] == "4"
