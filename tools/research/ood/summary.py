"""The headline table: one row per candidate default (each paired across the
two likelihood families), AUROC on every OOD set of both models, with 95%
bootstrap intervals on the three issue-28 targets.

    python summary.py --k 100             # markdown on stdout
    python summary.py --k 100 --json summary_k100.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from analyze import COMBOS, REN_TAGS, TYPICAL
from common import OOD_SETS, SET_LABEL, auroc
from scores import add_derived, load_scores

GMM = "-log p_GMM(mu)"
# candidate: (score on the logistic fashion-mnist model, score on the Bernoulli mnist model)
CANDIDATES = {
    "raw bits/dim": ("raw bpd", "raw bpd"),
    "IC, PNG of the 8-bit image (issue 28's)": ("IC png8", "IC png8raw"),
    "IC, PNG of what the model codes": ("IC png8", "IC png1"),
    "IC, WebP-lossless / JBIG-style coder": ("IC webp8", "IC jbig1"),
    "LR vs fitted local coder (mu=0.2)": ("LR loco_mu20", "LR ctx16_mu20"),
    "LR vs fitted local coder (clean)": ("LR loco", "LR ctx16"),
    "LR vs Ren VAE background (mu=0.2)": ("LR ren-fashion-mnist", "LR ren-mnist"),
    "latent: -log p_GMM(mu)": (GMM, GMM),
    "typicality |bpd - mean|": ("typ |raw bpd|", "typ |raw bpd|"),
    "typicality |IC - mean| (PNG / JBIG)": ("typ |IC png8|", "typ |IC jbig1|"),
    "pct(IC PNG) + pct(GMM)": (f"pct(IC png8) + pct({GMM})", f"pct(IC png1) + pct({GMM})"),
    "pct(IC WebP / JBIG) + pct(GMM)": (f"pct(IC webp8) + pct({GMM})", f"pct(IC jbig1) + pct({GMM})"),
    "pct(LR local mu=0.2) + pct(GMM)": (f"pct(LR loco_mu20) + pct({GMM})", f"pct(LR ctx16_mu20) + pct({GMM})"),
    "z(IC WebP / JBIG) + z(GMM)": (f"z(IC webp8) + z({GMM})", f"z(IC jbig1) + z({GMM})"),
    "**z(LR local mu=0.2) + z(GMM)** (recommended)": (f"z(LR loco_mu20) + z({GMM})", f"z(LR ctx16_mu20) + z({GMM})"),
}
TARGETS = (("fashion-mnist", "other", 0.98), ("fashion-mnist", "vflip", 0.90), ("mnist", "other", 0.99))


def bootstrap_auroc(a, b, reps=1000, seed=0):
    rng = np.random.default_rng(seed)
    vals = [auroc(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]) for _ in range(reps)]
    return np.quantile(vals, [0.025, 0.975])


def all_scores(k: int) -> dict:
    out = {}
    for model in ("fashion-mnist", "mnist"):
        s = load_scores(model, k, REN_TAGS[model])
        names = set(s["in"])
        add_derived(s, typical=tuple(t for t in TYPICAL if t in names),
                    combos=tuple(c for c in COMBOS if c[0] in names and c[1] in names))
        out[model] = s
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--json")
    args = ap.parse_args()
    sc = all_scores(args.k)
    cols = [(m, s) for m in ("fashion-mnist", "mnist") for s in OOD_SETS]
    print(f"AUROC at k = {args.k}; [95% bootstrap interval] on the issue's three targets; "
          "in = first 1,000 test images of the model's dataset\n")
    print("| candidate (logistic model / Bernoulli model) | "
          + " | ".join(f"{'F' if m == 'fashion-mnist' else 'M'}: {SET_LABEL[m][s]}" for m, s in cols)
          + " | meets all 3 targets |")
    print("|---|" + "---|" * (len(cols) + 1))
    result = {}
    for label, (f_score, m_score) in CANDIDATES.items():
        cells, ok = [], True
        result[label] = {}
        for m, s in cols:
            name = f_score if m == "fashion-mnist" else m_score
            if name not in sc[m]["in"] or s not in sc[m]:
                cells.append("")
                continue
            a, b = sc[m]["in"][name], sc[m][s][name]
            v = auroc(a, b)
            cell = f"{v:.3f}"
            target = [t for (tm, ts, t) in TARGETS if tm == m and ts == s]
            if target:
                lo, hi = bootstrap_auroc(a, b)
                cell = f"**{v:.3f}** [{lo:.3f}, {hi:.3f}]" if v >= target[0] else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                ok &= v >= target[0]
                result[label][f"{m}/{s}/ci"] = [float(lo), float(hi)]
            result[label][f"{m}/{s}"] = v
            cells.append(cell)
        result[label]["meets_targets"] = bool(ok)
        print(f"| {label} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"k": args.k, "candidates": CANDIDATES, "auroc": result}, f, indent=1)


if __name__ == "__main__":
    main()
