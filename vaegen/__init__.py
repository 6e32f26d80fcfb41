"""vaegen: train, ship and use variational autoencoders, from Python and a terminal.

    import vaegen
    model = vaegen.load_model()             # the shipped MNIST model, on ONNX Runtime
    images = model.sample(64, seed=0)       # float32 [64, 1, 28, 28] in [0, 1]
    vaegen.save_grid(images, "grid.png")
    model = vaegen.train("photos/", epochs=1)  # a whole training run (needs the train extra: torch)
    vaegen.train_judge("photos/", "judge/")    # a classifier of photos/'s subfolders, for evaluate --samples

The public names are loaded on first use, so `import vaegen` (and every CLI
command's start-up) imports nothing heavy. torch lives in vaegen.training
alone, loaded by `vaegen.train`; everything else runs on ONNX Runtime and numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Model": "vaegen.api",
    "load_model": "vaegen.api",
    "save_grid": "vaegen.api",
    "train": "vaegen.training.pipeline",
    "train_judge": "vaegen.training.judge",
    "load_bundle": "vaegen.bundle.read",
    "Bundle": "vaegen.bundle.read",
    "VaegenError": "vaegen.errors",
    "ArgumentError": "vaegen.errors",
    "BundleError": "vaegen.errors",
    "DataError": "vaegen.errors",
    "ImageError": "vaegen.errors",
    "LatentError": "vaegen.errors",
    "OutputError": "vaegen.errors",
    "ProviderError": "vaegen.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # for type checkers and editors; never run
    from vaegen.api import Model, load_model, save_grid  # noqa: F401
    from vaegen.bundle.read import Bundle, load_bundle  # noqa: F401
    from vaegen.errors import (  # noqa: F401
        ArgumentError,
        BundleError,
        DataError,
        ImageError,
        LatentError,
        OutputError,
        ProviderError,
        VaegenError,
    )
    from vaegen.training.judge import train_judge  # noqa: F401
    from vaegen.training.pipeline import train  # noqa: F401


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vaegen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
