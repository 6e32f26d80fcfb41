"""The anchor's fitted prior at several component counts: the weights
benchmarks/anchor.py saved (runs/bench-anchor*/anchor.pt) encode the
folder's training split, vaegen's mixture fit (fit_mixture, the counts as
asked) draws as many codes as held-out images, and the folder's judge scores
them as `vaegen evaluate --samples` does. Prints "K FD" per count.

    python tools/research/anchor_priors.py runs/bench-anchor2/anchor.pt --dataset ../shared/data/emoji \
        --model runs/colour-dual/model --components 20,50,100,200
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # this checkout's vaegen, and the anchor

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    from anchor_vae import VanillaVAE, to_model, to_u8

    from vaegen.api import load_model
    from vaegen.data.load import split_for_training
    from vaegen.data.sets import FolderOptions
    from vaegen.evaluation.judges import folder_judge, judging_data, load_judge, reference_statistics, sample_quality
    from vaegen.latent.fit import fit_mixture

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True, help="a vaegen bundle of the folder: its held-out split and judge")
    parser.add_argument("--components", default="20,50,100,200")
    parser.add_argument("--background", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, held = split_for_training(args.dataset, channels=3, size=(64, 64),
                                     options=FolderOptions(background=args.background))
    anchor = VanillaVAE(3, 64)
    anchor.load_state_dict(torch.load(args.weights))
    anchor.eval()
    model = load_model(args.model, provider="cpu", threads=1)
    judge = load_judge(folder_judge(args.dataset), provider="cpu", threads=1)
    reference = reference_statistics(judge, judging_data(model, judge, args.dataset)["reference_images"])
    images, n = np.asarray(train.images), len(held)
    with torch.inference_mode():
        codes = torch.cat([anchor.encode(to_model(images[i : i + 256]))[0] for i in range(0, len(images), 256)])
        for k in (int(x) for x in args.components.split(",")):
            mixture = fit_mixture(codes.double().numpy(), k, "full", 0)
            z = torch.from_numpy(mixture.sample(n, np.random.default_rng(0)))
            drawn = np.concatenate([to_u8(anchor.decode(z[i : i + 256])) for i in range(0, n, 256)])
            print(k, round(sample_quality(judge, drawn, reference)["frechet_distance"], 2), flush=True)


if __name__ == "__main__":
    main()
