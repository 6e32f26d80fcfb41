"""The Bernoulli likelihood: one probability per binarized pixel, the VAE
literature's MNIST benchmark (Burda et al. 2015). Its decoder outputs the
logits; its picture is their sigmoid.

Standard library at import; numpy and torch inside the halves that need them.
"""

from __future__ import annotations

from vaegen.likelihoods.base import EVAL_SEED, Likelihood


class Bernoulli(Likelihood):
    name = "bernoulli"
    parameters = ("logits",)
    binarized = True
    description = "a Bernoulli decoder over the binarized pixels"
    scored_as = f"binarized with seed {EVAL_SEED}"
    # A float16 decoder rounds every activation to 11 significant bits: its
    # logits are held to 0.05 and its probabilities to 0.01 of float32 torch.
    fp16_atol = {"logits": 5e-2, "probs": 1e-2}

    def prepare(self, images, seed=EVAL_SEED):
        return binarize(images, seed)

    def log_likelihood(self, logits, x):
        """log p(x|z) per row, summed over pixels: -softplus(-(2x-1) l), stable for any l.

        logits [K, P] float32, x [P] in {0, 1} -> [K] float64. Elementwise numpy
        only: a BLAS call here (logits @ x) wakes OpenBLAS's threads, which then
        spin against ONNX Runtime's and nearly doubled each decoder call.
        """
        import numpy as np

        t = logits * (1.0 - 2.0 * x).astype(np.float32)  # -(2x-1) l
        y = np.abs(t)
        np.negative(y, out=y)
        np.exp(y, out=y)
        np.log1p(y, out=y)  # log1p(exp(-|t|))
        y += np.maximum(t, 0, out=t)  # softplus(t)
        return -y.sum(axis=1, dtype=np.float64)

    def prepare_batch(self, images, gen):
        return binarize_batch(images, gen)

    def split(self, params, channels):
        return (params,)

    def picture(self, parameters):
        import torch

        return torch.sigmoid(parameters[0])

    def nll(self, params, x):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(dim=1)

    def output_bias(self, mean_image):
        """logit(mean), the mean kept off 0 and 1."""
        import torch

        p = mean_image.clamp(1e-3, 1 - 1e-3)
        return torch.log(p) - torch.log1p(-p)


def binarize(images, seed):
    """Stochastic binarization (Burda et al. 2015): each pixel is 1 with
    probability intensity/255, drawn once from a seeded generator. uint8 -> float32 0/1.

    `seed` is a number or a numpy Generator: a set binarized in chunks of
    whole images, in order, from one Generator gets the very bits it would get
    in one piece (the draws are taken in order), so memory can stay bounded.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    probs = images.astype(np.float32) / 255.0
    return (rng.random(images.shape, dtype=np.float32) < probs).astype(np.float32)


def binarize_batch(images, gen):
    """Dynamic binarization of uint8 images (a torch tensor): each pixel p becomes 1 with
    probability p/255 (to within 1/65536; 0 and 255 exactly), 0 otherwise, as float32.

    One 16-bit random number a pixel, drawn four to an int64: torch.bernoulli
    draws a float per pixel and took 11% of an mlp training step on a CPU;
    this takes a third of its time (benchmarks/profile_step.py).
    """
    import torch

    n = images.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), generator=gen, dtype=torch.int64, device=images.device)
    draws = words.view(torch.int16)[:n].view(images.shape).to(torch.int32) + 32768  # uniform on 0..65535
    return (draws * 255 < images.to(torch.int32) * 65536).to(torch.float32)  # u/65536 < p/255, in int32
