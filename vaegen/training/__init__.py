"""Everything that needs torch: the model, the training loop and the ONNX export.

Only this package imports torch; the CLI imports it inside `train` and `export`.
"""
