"""Detection tables: AUROC / AUPRC / FPR at 95% TPR of every candidate score,
in-distribution = the model's first 1,000 test images, against each OOD set.

    python analyze.py                       # markdown tables on stdout, for both models, k = 100
    python analyze.py --k 300 --model mnist
    python analyze.py --json results.json   # every figure, machine-readable
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from common import MODELS, OOD_SETS, SET_LABEL, detection
from scores import add_derived, load_scores

REN_TAGS = {"fashion-mnist": ("ren-fashion-mnist",), "mnist": ("ren-mnist",)}
TYPICAL = ("raw bpd", "IC png8", "IC webp8", "IC png1", "IC jbig1", "LR loco_mu20", "LR ctx16_mu20", "-log p_GMM(mu)")
GMM = "-log p_GMM(mu)"
COMBOS = tuple((a, GMM) for a in ("raw bpd", "IC png8", "IC webp8", "IC png1", "IC jbig1", "LR loco", "LR loco_mu20",
                                  "LR ctx16", "LR ctx16_mu20")) + (("LR loco_mu20", "IC webp8"), ("LR ctx16_mu20", "IC jbig1"))


def table(model: str, k: int) -> tuple[str, dict]:
    scores = load_scores(model, k, REN_TAGS[model])
    names = [n for n in scores["in"]]
    typ = tuple(t for t in TYPICAL if t in names)
    combos = tuple(c for c in COMBOS if c[0] in names and c[1] in names)
    add_derived(scores, typical=typ, combos=combos)
    names = list(scores["in"])
    sets = [s for s in OOD_SETS if s in scores]
    results = {}
    lines = [f"### weights/{model}, k = {k}: AUROC / AUPRC / FPR95 (in = first 1,000 test images)", "",
             "| score | " + " | ".join(SET_LABEL[model][s] for s in sets) + " | flagged in-dist at cal p99 |",
             "|---|" + "---|" * (len(sets) + 1)]
    for name in names:
        row = []
        results[name] = {}
        for s in sets:
            d = detection(scores["in"][name], scores[s][name])
            results[name][s] = d
            row.append(f"{d['auroc']:.3f} / {d['auprc']:.3f} / {d['fpr95']:.3f}")
        cal = scores["cal"][name]
        flagged = float(np.mean(scores["in"][name] > np.quantile(cal, 0.99)))
        results[name]["flagged_in_at_cal_p99"] = flagged
        lines.append(f"| {name} | " + " | ".join(row) + f" | {100 * flagged:.1f}% |")
    means = ["", "mean of each term (bits/dim; GMM in nats):", "",
             "| set | raw bpd | " + " | ".join(n for n in names if n.startswith(("IC", "LR"))) + " |"]
    for s in ["in", "cal", *sets]:
        means.append(f"| {s} | {scores[s]['raw bpd'].mean():.3f} | "
                     + " | ".join(f"{scores[s][n].mean():.3f}" for n in names if n.startswith(("IC", "LR"))) + " |")
    return "\n".join(lines + means), results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=MODELS, nargs="*", default=list(MODELS))
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--json")
    args = ap.parse_args()
    everything = {}
    for model in args.model:
        text, results = table(model, args.k)
        print(text + "\n")
        everything[model] = results
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"k": args.k, "results": everything}, f, indent=1)


if __name__ == "__main__":
    main()
