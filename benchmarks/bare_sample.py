"""Baseline A of the cold-start benchmark: the least a program can do to
draw 64 digits from the shipped decoder (onnxruntime + numpy + Pillow only)."""

import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

model, out = sys.argv[1], sys.argv[2]
session = ort.InferenceSession(f"{model}/decoder.onnx", providers=["CPUExecutionProvider"])
dim = session.get_inputs()[0].shape[1]
z = np.random.default_rng(0).standard_normal((64, dim), dtype=np.float32)
probs = session.run(["probs"], {"z": z})[0]  # (64, 1, 28, 28)
tiles = np.pad(probs[:, 0], ((0, 0), (2, 0), (2, 0)), constant_values=0.5)  # 30x30 tiles
grid = tiles.reshape(8, 8, 30, 30).transpose(0, 2, 1, 3).reshape(240, 240)
grid = np.pad(grid, ((0, 2), (0, 2)), constant_values=0.5)
Image.fromarray(np.round(grid * 255).astype(np.uint8), mode="L").save(out)
