"""Everything that needs torch: the model, its objective, the training loop, the ONNX export, and the
library's `train` that runs them all.

One job per module:
    pipeline.py     train(): a whole run (recipe, resume, loop, export, prior fit); vaegen.train
    config.py       TrainConfig and the resume policy (what a --resume may change)
    architectures/  the registered architectures (mlp, conv): each one's settings, encoder and decoder
    model.py        the VAE and its ModelConfig; the two ONNX graphs' modules
    objective.py    negative ELBO, the importance-weighted bound, DReG; the held-out ELBO
    checkpoint.py   the checkpoint format: save, load (weights_only), rebuild the model
    distributed.py  the device and the torchrun job (DDP)
    loop.py         the epoch loop and what it writes after each epoch
    samples.py      the prior-sample grid of each epoch
    judge.py        the sample-quality judge: its network, training and export (tools/train_judge.py runs it)
    export.py       the verified ONNX bundle, built aside and moved into place whole

Only this package imports torch; the CLI imports it inside `train` and `export`, and
`vaegen.train` on first use.
Nothing here imports the CLI or click.
"""
