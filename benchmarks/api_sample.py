"""The cold-start benchmark's API contender: `vaegen sample -n 64 -o grid.png`
done through the Python API instead of the CLI (same model, seed and prior)."""

import sys

import vaegen

model, out = sys.argv[1], sys.argv[2]
vaegen.save_grid(vaegen.load_model(model).sample(64, seed=0), out, nrow=8)
