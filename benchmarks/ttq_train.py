"""A `vaegen train` command run whole, with its time-to-quality curve.

    python benchmarks/ttq_train.py RESULT.json [--data-dir D] -- TRAIN-OPTIONS...

Runs the real command (training, export, prior fit) in this process, and
after each epoch's checkpoint measures the test NLL (ttq_nll) with the clock
stopped. RESULT.json gets the points (seconds, nll), the seconds of the whole
command and the seconds its evaluations took (not counted).
"""

from __future__ import annotations

from ttq_nll import Clock  # first: the clock starts before torch is imported

clock = Clock()

import json  # noqa: E402
import sys  # noqa: E402


def main() -> None:
    result, rest = sys.argv[1], sys.argv[2:]
    data_dir = None
    if rest[:1] == ["--data-dir"]:
        data_dir, rest = rest[1], rest[2:]
    train_args = rest[1:] if rest[:1] == ["--"] else rest

    from ttq_nll import iw_nll, test_images

    import vaegen.training.loop as loop

    points, x = [], []

    def measure(run, epoch, metrics):
        seconds = clock.now()
        with clock.pause():
            if not x:
                x.append(test_images(data_dir))
            run.model.eval()
            nll = iw_nll(run.model.encode, run.model.decode, x[0])
            run.model.train()
            points.append({"epoch": epoch, "seconds": seconds, "nll": nll})

    loop.epoch_hooks.append(measure)
    from vaegen.cli import cli

    args = ["train", *train_args] + (["--data-dir", data_dir] if data_dir else [])
    code = 0
    try:
        cli.main(args, prog_name="vaegen", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code or 0
    whole = clock.now()
    with open(result, "w") as f:
        json.dump({"points": points, "whole_s": whole, "eval_s": clock.paused, "exit": code}, f)
    sys.exit(code)


if __name__ == "__main__":
    main()
