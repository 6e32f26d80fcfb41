"""vaegen: train, ship and use variational autoencoders from a terminal.

This package's top level imports nothing heavy: torch lives in vaegen.training
alone, and the light commands run on ONNX Runtime.
"""

__version__ = "0.1.0"
