"""AUROC of the leading scores as the number of importance samples k changes.

k = 0 is the deterministic proxy: -log p(x | z = mu) + KL(q || N(0, I)) (one
decode, no noise). Other k use the first k of the cached draws (seed 0's 100,
then seed 1's 200), so every k sees the same images and nested samples.

    python kscan.py                 # markdown table on stdout
    python kscan.py --json kscan.json
"""

from __future__ import annotations

import argparse
import json

from common import MODELS, SET_LABEL, auroc, percentile_of
from scores import load_scores

KS = (0, 1, 10, 30, 100, 300)
SHOW = {
    "fashion-mnist": ("other", "vflip", "hflip", "noise", "const", "black"),
    "mnist": ("other", "vflip", "hflip", "noise", "const", "black"),
}
SCORES = {
    "fashion-mnist": ("raw bpd", "IC png8", "IC webp8", "LR loco", "LR loco_mu20", "LR ren-fashion-mnist", "-log p_GMM(mu)",
                      "pct(IC png8) + pct(-log p_GMM(mu))", "pct(IC webp8) + pct(-log p_GMM(mu))",
                      "pct(LR loco_mu20) + pct(-log p_GMM(mu))"),
    "mnist": ("raw bpd", "IC png1", "IC jbig1", "LR ctx16", "LR ctx16_mu20", "LR ren-mnist", "-log p_GMM(mu)",
              "pct(IC png1) + pct(-log p_GMM(mu))", "pct(IC jbig1) + pct(-log p_GMM(mu))",
              "pct(LR ctx16_mu20) + pct(-log p_GMM(mu))"),
}


def scores_at(model: str, k: int) -> dict:
    from analyze import REN_TAGS

    s = load_scores(model, k, REN_TAGS[model])
    cal = s["cal"]
    for d in s.values():
        for combo in [c for c in SCORES[model] if c.startswith("pct(")]:
            a, b = combo[len("pct("):-1].split(") + pct(")
            if a in d and b in d:
                d[combo] = percentile_of(cal[a], d[a]) + percentile_of(cal[b], d[b])
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    out = {}
    for model in MODELS:
        per_k = {}
        for k in KS:
            try:
                per_k[k] = scores_at(model, k)
            except (KeyError, ValueError):
                continue
        print(f"### weights/{model}: AUROC by k (k = 0: recon at mu + KL, one decode)\n")
        sets = [s for s in SHOW[model] if all(s in per_k[k] for k in per_k)]
        print("| score | set | " + " | ".join(f"k={k}" for k in per_k) + " |")
        print("|---|---|" + "---|" * len(per_k))
        out[model] = {}
        for score in SCORES[model]:
            for s in sets:
                row = {}
                for k, sc in per_k.items():
                    if score in sc["in"] and s in sc and len(sc[s][score]):
                        row[k] = auroc(sc["in"][score], sc[s][score])
                if row:
                    out[model].setdefault(score, {})[s] = row
                    print(f"| {score} | {SET_LABEL[model][s]} | "
                          + " | ".join(f"{row[k]:.3f}" if k in row else "" for k in per_k) + " |")
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
