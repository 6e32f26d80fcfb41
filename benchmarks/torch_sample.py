"""Baseline B of the cold-start benchmark: the same 64 digits the torch way:
import torch, load the checkpoint, decode, write the PNG."""

import sys

import numpy as np
import torch
from PIL import Image

from vaegen.training.model import VAE, ModelConfig

checkpoint, out = sys.argv[1], sys.argv[2]
state = torch.load(checkpoint, map_location="cpu", weights_only=True)
model = VAE(ModelConfig.from_dict(state["model_config"]))
model.load_state_dict(state["model"])
model.eval()
gen = torch.Generator().manual_seed(0)
with torch.inference_mode():
    probs = torch.sigmoid(model.decode(torch.randn((64, model.cfg.latent_dim), generator=gen))).numpy()
tiles = np.pad(probs[:, 0], ((0, 0), (2, 0), (2, 0)), constant_values=0.5)
grid = tiles.reshape(8, 8, 30, 30).transpose(0, 2, 1, 3).reshape(240, 240)
grid = np.pad(grid, ((0, 2), (0, 2)), constant_values=0.5)
Image.fromarray(np.round(grid * 255).astype(np.uint8), mode="L").save(out)
