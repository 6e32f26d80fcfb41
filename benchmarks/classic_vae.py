"""The classic recipe, the yardstick of `make bench`'s time-to-quality table:
the VAE of pytorch/examples (MLP 784-400-20, ReLU, Bernoulli decoder, batch
128, Adam 1e-3, 10 epochs), each epoch a pass over the training set and one
over the test set, as that example runs it.

    python benchmarks/classic_vae.py RESULT.json [--data-dir D] [--epochs 10]

Written for this benchmark, and kind to the classic: the images sit in one
tensor (no DataLoader), and they are dynamically binarized as vaegen's are,
so both are scored on the same binarized test images. RESULT.json as
ttq_train.py writes it.
"""

from __future__ import annotations

from ttq_nll import Clock  # first: the clock starts before torch is imported

clock = Clock()

import argparse  # noqa: E402
import json  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Classic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def encode(self, x):
        h = torch.relu(self.fc1(x.reshape(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return self.fc4(torch.relu(self.fc3(z)))

    def loss(self, x, gen):
        mu, logvar = self.encode(x)
        z = mu + torch.randn(mu.shape, generator=gen) * torch.exp(0.5 * logvar)
        recon = nn.functional.binary_cross_entropy_with_logits(self.decode(z), x.reshape(-1, 784), reduction="sum")
        return recon - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()

    from ttq_nll import iw_nll, test_images

    from vaegen.data.load import load_dataset

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    train = torch.from_numpy(load_dataset("mnist", "train", args.data_dir).images)
    test = torch.from_numpy(load_dataset("mnist", "test", args.data_dir).images)
    model = Classic()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    points, x_eval = [], []
    for epoch in range(1, args.epochs + 1):
        model.train()
        for idx in torch.randperm(len(train), generator=gen).split(128):
            x = torch.bernoulli(train[idx].float() / 255.0, generator=gen)
            loss = model.loss(x, gen) / len(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():  # the example's test pass
            test_loss = sum(model.loss(torch.bernoulli(test[i:i + 1000].float() / 255.0, generator=gen), gen).item()
                            for i in range(0, len(test), 1000)) / len(test)
        seconds = clock.now()
        with clock.pause():
            if not x_eval:
                x_eval.append(test_images(args.data_dir))
            points.append({"epoch": epoch, "seconds": seconds, "test_loss": test_loss,
                           "nll": iw_nll(model.encode, model.decode, x_eval[0])})
    with open(args.result, "w") as f:
        json.dump({"points": points, "whole_s": clock.now(), "eval_s": clock.paused, "exit": 0}, f)


if __name__ == "__main__":
    main()
