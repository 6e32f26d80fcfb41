"""Training img/s of colour_sweep.py's configs on this machine's CPU (its CONFIGS' cpu_img_s).

The dev machine is shared, so the configs take turns (`--steps` steps each, `--rounds` rounds) and
each is reported as its median speed relative to the anchor's in the same round, times the
anchor's unloaded speed (~240 img/s on 2 cores: issue 29's 7 epochs of 6,806 images in 198 s, and
242 measured here in a quiet moment). With --threads 1 the speed is taken from CPU time, which time
spent descheduled does not inflate; measured here it agreed within ~10% with 2-thread wall speeds
taken in a quiet moment, and was stable to ~2% between rounds.

  .venv/bin/python measure_cpu.py --threads 1 --configs anchor,base,mix5,wide
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from colour_sweep import CONFIGS, time_steps, training_step  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="anchor,base,mix5,narrow,wide,deep,d64,d256,wide-mix-b0.1,mix10")
    p.add_argument("--steps", type=int, default=3, help="steps per config per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--anchor-img-s", type=float, default=240.0)
    args = p.parse_args()
    names = args.configs.split(",")
    torch.set_num_threads(args.threads)
    dev = torch.device("cpu")
    steps_of = {n: training_step(CONFIGS[n], dev) for n in names}
    for step in steps_of.values():
        step(), step()  # warm-up
    rates = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names:  # by CPU time on one thread, by wall time otherwise
            rates[n].append(time_steps(steps_of[n], args.steps, CONFIGS[n].batch_size, dev)[args.threads == 1])
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in rates.items()), flush=True)
    for n in names:
        line = f"{n:16s} median {np.median(rates[n]):6.1f} img/s"
        if "anchor" in rates:
            ratio = np.median(np.array(rates[n]) / np.array(rates["anchor"]))
            line += f"  vs anchor {ratio:.3f}  unloaded 2-core estimate {ratio * args.anchor_img_s:6.1f} img/s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
