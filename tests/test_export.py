"""Export (vaegen.training.export and `vaegen export`): the bundle contract,
the parity check, and atomic replacement. Needs torch and onnx."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from vaegen import fileio  # noqa: E402
from vaegen.api import Model  # noqa: E402
from vaegen.bundle.read import load_bundle, sha256_file  # noqa: E402
from vaegen.cli import cli  # noqa: E402
from vaegen.errors import ExportError  # noqa: E402
from vaegen.training import export as export_module  # noqa: E402
from vaegen.training.export import RANDOM_OPS, export_bundle, verify_parity  # noqa: E402
from vaegen.training.model import VAE, ModelConfig  # noqa: E402


def tiny_model(arch="mlp", seed=0) -> VAE:
    torch.manual_seed(seed)
    return VAE(ModelConfig(arch=arch, latent_dim=3, hidden=16, **({"conv_channels": 4} if arch == "conv" else {}))).eval()


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_bundle_follows_the_contract(tmp_path, arch):
    model = tiny_model(arch)
    path = export_bundle(model, tmp_path / "b", dataset="mnist")
    meta = json.loads((path / "vaegen.json").read_text())
    for name in ("encoder.onnx", "decoder.onnx"):
        assert meta["files"][name]["sha256"] == sha256_file(path / name)
        graph = onnx.load(str(path / name))
        props = {p.key: p.value for p in graph.metadata_props}
        assert json.loads(props["vaegen"])["latent_dim"] == 3
        assert props["vaegen.model_id"] == meta["model_id"]
        assert not {n.op_type for n in graph.graph.node} & RANDOM_OPS
    assert (path / "README.md").read_text().startswith("# vaegen model")
    assert meta["image_shape"] == [1, 28, 28] and meta["preprocessing"] == "mnist"
    # The batch axis is dynamic: a batch size the export never saw runs.
    runtime = Model(load_bundle(path), provider="cpu")
    mu, logvar = runtime.encode(np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32))
    assert mu.shape == logvar.shape == (5, 3)
    assert runtime.decode(mu).shape == (5, 1, 28, 28)
    with torch.inference_mode():
        expected = torch.sigmoid(model.decode(torch.from_numpy(mu))).numpy()
    np.testing.assert_allclose(runtime.decode(mu), expected, atol=1e-5)


@pytest.mark.parametrize("blocks", [1, 2])
def test_a_deeper_conv_exports_its_blocks_and_matches_torch(tmp_path, blocks):
    """--conv-blocks adds 3x3 layers at each resolution (the shipped
    Fashion-MNIST model has one); the graphs hold them and agree with torch."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="conv", latent_dim=3, hidden=16, conv_channels=4, conv_blocks=blocks, likelihood="logistic")
    model = VAE(cfg).eval()
    path = export_bundle(model, tmp_path / "b", dataset="fashion-mnist")
    ops = {name: [n.op_type for n in onnx.load(str(path / name)).graph.node] for name in ("encoder.onnx", "decoder.onnx")}
    assert ops["encoder.onnx"].count("Conv") == 2 + 2 * blocks
    assert ops["decoder.onnx"].count("Conv") == 3 * blocks and ops["decoder.onnx"].count("ConvTranspose") == 2
    runtime = Model(load_bundle(path), provider="cpu")
    z = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    with torch.inference_mode():
        expected = model.image(model.decode(torch.from_numpy(z))).numpy()
    np.testing.assert_allclose(runtime.decode(z), expected, atol=1e-5)


def test_the_plain_conv_keeps_its_layer_layout():
    """Without blocks the conv is the layout older conv checkpoints and
    bundles were saved in, module for module."""
    keys = [k for k in VAE(ModelConfig(arch="conv")).state_dict() if k.endswith("weight")]
    assert keys == ["encoder.0.weight", "encoder.2.weight", "encoder.5.weight", "encoder.7.weight",
                    "decoder.0.weight", "decoder.2.weight", "decoder.5.weight", "decoder.7.weight"]
    assert ModelConfig.from_dict({"arch": "conv", "hidden": 16}).conv_blocks == 0  # a config saved before blocks
    with pytest.raises(ValueError, match="conv arch only"):
        ModelConfig(arch="mlp", conv_blocks=1)
    with pytest.raises(ValueError, match="negative"):
        ModelConfig(arch="conv", conv_blocks=-1)


def test_parity_catches_a_corrupted_graph(tmp_path):
    model = tiny_model()
    path = export_bundle(model, tmp_path / "b")
    graph = onnx.load(str(path / "decoder.onnx"))
    weights = next(i for i in graph.graph.initializer if len(i.dims) == 2)
    array = onnx.numpy_helper.to_array(weights).copy()
    array[0, 0] += 0.01
    weights.CopyFrom(onnx.numpy_helper.from_array(array, weights.name))
    onnx.save(graph, str(path / "decoder.onnx"))
    with pytest.raises(ExportError, match="Parity check failed: (logits|probs) differs from torch"):
        verify_parity(model, path / "encoder.onnx", path / "decoder.onnx")


def test_parity_failure_leaves_no_bundle_and_keeps_the_old_one(tmp_path, monkeypatch):
    old = export_bundle(tiny_model(seed=1), tmp_path / "b")
    old_meta = (old / "vaegen.json").read_text()
    real_export = export_module.export_graph

    def corrupting(module, example, path, input_name, outputs):
        real_export(module, example, path, input_name, outputs)
        if input_name == "image":
            graph = onnx.load(str(path))
            bias = next(i for i in graph.graph.initializer if len(i.dims) == 1)
            array = onnx.numpy_helper.to_array(bias).copy() + 0.5
            bias.CopyFrom(onnx.numpy_helper.from_array(array, bias.name))
            onnx.save(graph, str(path))

    monkeypatch.setattr(export_module, "export_graph", corrupting)
    with pytest.raises(ExportError, match="no bundle was written"):
        export_bundle(tiny_model(seed=2), tmp_path / "b")
    assert (tmp_path / "b" / "vaegen.json").read_text() == old_meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folder left
    with pytest.raises(ExportError):
        export_bundle(tiny_model(seed=2), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_export_replaces_an_old_bundle_whole(tmp_path):
    export_bundle(tiny_model(seed=1), tmp_path / "b")
    first = json.loads((tmp_path / "b" / "vaegen.json").read_text())["model_id"]
    export_bundle(tiny_model(seed=2), tmp_path / "b")
    second = load_bundle(tmp_path / "b").model_id
    assert first != second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_export_command_from_checkpoint(tmp_path, tiny_bundle):
    checkpoint = tiny_bundle.parent / "checkpoint.pt"
    out = tmp_path / "exported"
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_bundle(out).model_id == load_bundle(tiny_bundle).model_id
    assert f"vaegen sample --model {out}" in result.stderr


def test_export_refuses_foreign_pickles_and_garbage(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": 1, "model": Evil()}, protocol=2))
    result = CliRunner().invoke(cli, ["export", str(evil), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "holds objects vaegen did not write; refusing to unpickle it" in result.stderr
    assert "pwned" not in result.output
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    result = CliRunner().invoke(cli, ["export", str(garbage), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "is not a readable vaegen checkpoint" in result.stderr
    assert not (tmp_path / "out").exists()


def test_export_clears_build_folders_a_killed_export_left(tmp_path):
    import os
    import time

    stale = tmp_path / ".b.tmp-killed"
    stale.mkdir()
    (stale / "encoder.onnx").write_bytes(b"half")
    old = time.time() - fileio.STALE_BUILD_SECONDS - 60
    os.utime(stale, (old, old))
    fresh = tmp_path / ".b.tmp-running"  # another export may be building right now: left alone
    fresh.mkdir()
    export_bundle(tiny_model(), tmp_path / "b")
    assert not stale.exists()
    assert fresh.exists()


def test_model_card_gives_each_stage_and_a_steady_training_time(tmp_path, tiny_bundle):
    """A two-stage run (a fine-tuning stage resumed with a new --lr) shows both
    commands, and a wall time that one stalled epoch cannot inflate."""
    import torch

    from vaegen.training.checkpoint import load_checkpoint
    from vaegen.training.export import export_checkpoint

    state = load_checkpoint(tiny_bundle.parent / "checkpoint.pt")
    epoch = dict(state["history"][-1])
    state["history"] = [{**epoch, "seconds": 10.0}] * 3 + [{**epoch, "seconds": 30.0}] * 2 + [{**epoch, "seconds": 3000.0}]
    state["train_config"].update(schedule_start=3, command="vaegen train STAGE-1\nvaegen train --resume STAGE-2")
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(state, checkpoint)
    card = (export_checkpoint(checkpoint, tmp_path / "model") / "README.md").read_text()
    assert "```\nvaegen train STAGE-1\nvaegen train --resume STAGE-2\n```" in card
    # 3 x 10 s + 3 x 30 s (the stalled 3000 s epoch counts at the stage's median) = 2 min
    assert "- wall time: 51.5 min of training epochs as measured; 2 min at each stage's median epoch time (3, 3 epochs)" in card
    assert "- schedule_start: 3" in card
    # The layers (the tiny bundle's mlp: hidden 32, the default four decoder layers) and the IW estimator are named.
    assert "- architecture: arch mlp, hidden 32, decoder_layers 4" in card
    assert f"- iw_estimator: {state['train_config']['iw_estimator']}" in card
