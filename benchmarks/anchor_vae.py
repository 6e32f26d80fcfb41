"""The anchor of `make bench`'s colour section: PyTorch-VAE's VanillaVAE as its
users run it on a folder of 64x64 colour images, written for this benchmark
from the recipe's description (issue 29), not from that project's code.

- Encoder: five 3x3 convolutions of stride 2 (32, 64, 128, 256, 512
  channels), each with BatchNorm and LeakyReLU; two dense layers to the
  mean and log-variance of a 128-d latent.
- Decoder: a dense layer to 512 x 2 x 2, then the mirror: transposed 3x3
  convolutions of stride 2 (512 to 32 channels) with BatchNorm and
  LeakyReLU, a last transposed convolution, BatchNorm, LeakyReLU, a 3x3
  convolution to the colour channels and Tanh.
- Loss: the mean squared error of the images in [-1, 1], plus 0.00025 times
  the KL (summed over the latent, averaged over the batch).
- Adam at 0.005, ExponentialLR 0.95 per epoch, batch 64, random left-right flips.

It trains on the folder's training split by vaegen's held-out rule, decoded
by vaegen (the same pixels, transparency on the same grey), for a wall-clock
budget, then writes what the judge scores: decoded held-out posterior means
(reconstructions), N(0, I) samples, and samples of a Gaussian mixture fitted
to its training codes by vaegen's own prior fit (vaegen's components for a
colour model, and the count vaegen's rule gives 128-d codes), each as many
as the held-out images; and the trained weights (.pt beside the .npz).

    python benchmarks/anchor_vae.py --dataset FOLDER --seconds 1500 --out anchor.npz [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's vaegen

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

HIDDEN = (32, 64, 128, 256, 512)
LATENT = 128
KL_WEIGHT = 0.00025
LR, GAMMA, BATCH = 0.005, 0.95, 64


class VanillaVAE(nn.Module):
    def __init__(self, channels: int = 3, side: int = 64):
        super().__init__()
        layers, c = [], channels
        for h in HIDDEN:
            layers += [nn.Conv2d(c, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()]
            c = h
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.grid = side // 2 ** len(HIDDEN)
        flat = HIDDEN[-1] * self.grid * self.grid
        self.fc_mu, self.fc_var = nn.Linear(flat, LATENT), nn.Linear(flat, LATENT)
        self.decoder_input = nn.Linear(LATENT, flat)
        rev, layers = HIDDEN[::-1], []
        for a, b in zip(rev[:-1], rev[1:], strict=True):
            layers += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(b),
                       nn.LeakyReLU()]
        layers += [nn.ConvTranspose2d(HIDDEN[0], HIDDEN[0], 3, stride=2, padding=1, output_padding=1),
                   nn.BatchNorm2d(HIDDEN[0]), nn.LeakyReLU(), nn.Conv2d(HIDDEN[0], channels, 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.decoder_input(z).reshape(-1, HIDDEN[-1], self.grid, self.grid))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        kl = torch.mean(-0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
        return F.mse_loss(self.decode(z), x) + KL_WEIGHT * kl


def to_model(images_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(images_u8, dtype=np.float32) / 127.5 - 1.0)


def to_u8(x: torch.Tensor) -> np.ndarray:
    return np.clip(np.round((x.numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)


def train_for(model: VanillaVAE, train_u8: np.ndarray, seconds: float, seed: int) -> dict:
    """Epochs of the recipe until `seconds` of wall clock have passed (the last one stops at the deadline)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=GAMMA)
    rng = np.random.default_rng(seed)
    start, seen, epochs, loss = time.perf_counter(), 0, 0.0, float("nan")
    model.train()
    while time.perf_counter() - start < seconds:
        order = rng.permutation(len(train_u8))
        steps = max(1, len(order) // BATCH)  # whole batches (a folder smaller than one: one batch of it)
        for step in range(steps):
            x = to_model(train_u8[np.sort(order[step * BATCH : (step + 1) * BATCH])])
            flip = torch.from_numpy(rng.random(len(x)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss_t = model.loss(x)
            optimizer.zero_grad(set_to_none=True)
            loss_t.backward()
            optimizer.step()
            loss = float(loss_t)
            seen += len(x)
            epochs += 1 / steps
            if time.perf_counter() - start >= seconds:
                break
        else:
            schedule.step()
    elapsed = time.perf_counter() - start
    return {"train_seconds": round(elapsed, 1), "epochs": round(epochs, 2), "images_seen": seen,
            "images_per_s": round(seen / elapsed, 1), "last_loss": round(loss, 5)}


@torch.inference_mode()
def pictures(model: VanillaVAE, train_u8: np.ndarray, held_u8: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Reconstructions of the held-out images, N(0, I) samples and fitted-mixture samples, uint8 [N, C, H, W]."""
    from vaegen.latent.fit import fit_mixture
    from vaegen.recipes import prior_defaults

    prior = prior_defaults(3)
    model.eval()
    encode = lambda images: torch.cat([model.encode(to_model(images[i : i + 256]))[0]  # noqa: E731
                                       for i in range(0, len(images), 256)])
    decode = lambda z: np.concatenate([to_u8(model.decode(z[i : i + 256])) for i in range(0, len(z), 256)])  # noqa: E731
    n = len(held_u8)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    codes = encode(train_u8[np.sort(rng.permutation(len(train_u8))[: prior["max_codes"]])]).double().numpy()
    images = {"reconstructions": decode(encode(held_u8)), "standard": decode(torch.randn((n, LATENT), generator=gen))}
    # vaegen's count for a colour model, and the count its rule of one component per latent dimension's worth of
    # codes would give these 128-d codes: the bench takes the anchor's better of the two.
    for k in sorted({prior["components"], max(1, min(prior["components"], len(codes) // LATENT))}):
        mixture = fit_mixture(codes, k, prior["covariance_type"], seed)
        images[f"fitted_{k}"] = decode(torch.from_numpy(mixture.sample(n, np.random.default_rng(seed))))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a folder of images")
    parser.add_argument("--seconds", type=float, required=True, help="wall-clock training budget")
    parser.add_argument("--out", type=Path, required=True, help="result .npz (a .json beside it)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--background", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from vaegen.data.load import split_for_training
    from vaegen.data.sets import FolderOptions

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, held = split_for_training(args.dataset, channels=3, size=(args.image_size, args.image_size),
                                     options=FolderOptions(background=args.background))
    train_u8, held_u8 = np.asarray(train.images), np.asarray(held.images)
    model = VanillaVAE(3, args.image_size)
    facts = train_for(model, train_u8, args.seconds, args.seed)
    images = pictures(model, train_u8, held_u8, args.seed)
    facts.update(parameters=sum(p.numel() for p in model.parameters()), threads=args.threads,
                 train_images=len(train_u8), held_out_images=len(held_u8))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **images)
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))  # to judge other priors of the same training
    args.out.with_suffix(".json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
