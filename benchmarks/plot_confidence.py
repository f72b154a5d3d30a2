"""The confidence's two figures for docs/confidence.md, from `qa eval --json` outputs:

- the risk–coverage curve of each gold set (answering only at or above a confidence threshold: the share of
  answerable questions answered right, against the share of answered replies that are wrong), with the model's
  `answered` threshold marked;
- the reliability diagram (per confidence bin: how often the quoted sentence was right), pooled over the sets.

    qa eval eval/news-dev.jsonl --index .bench/news-dev/index --part held-out --json > /tmp/news-held-out.json
    python benchmarks/plot_confidence.py "news-dev held out=/tmp/news-held-out.json" "seed=/tmp/seed.json" ...

No plotting library: the figures are a few SVG elements written by hand, like benchmarks/plot_tradeoff.py's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
W, H, PAD = 560, 400, 60
COLOURS = ["#1f5fbf", "#b3400a", "#2e8b57", "#7b3fa0", "#8a6d00", "#555555"]


def _frame(title: str, xlabel: str, ylabel: str, x, y) -> list[str]:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">', f'<rect width="{W}" height="{H}" fill="white"/>']
    for v in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(f'<line x1="{x(0)}" y1="{y(v)}" x2="{x(1)}" y2="{y(v)}" stroke="#e0e0e0"/>')
        out.append(f'<line x1="{x(v)}" y1="{y(0)}" x2="{x(v)}" y2="{y(1)}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{x(0) - 8}" y="{y(v) + 4}" text-anchor="end">{v:.1f}</text>')
        out.append(f'<text x="{x(v)}" y="{y(0) + 16}" text-anchor="middle">{v:.1f}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 14}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="16" y="{H / 2}" text-anchor="middle" transform="rotate(-90 16 {H / 2})">{ylabel}</text>')
    out.append(f'<text x="{W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>')
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="NAME=FILE: a `qa eval --json` output")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "confidence" / "model.json")
    args = ap.parse_args()
    runs = []
    for spec in args.runs:
        name, _, file = spec.partition("=")
        runs.append((name, json.loads(Path(file).read_text(encoding="utf-8"))))
    answered = json.loads(args.model.read_text(encoding="utf-8"))["thresholds"]["answered"]

    def x(v: float) -> float:
        return PAD + v * (W - 2 * PAD)

    def y(v: float) -> float:
        return H - PAD - v * (H - 2 * PAD)

    out = _frame("Risk and coverage as the confidence threshold moves", "coverage (answerable questions answered right)",
                 "risk (answered replies that are wrong)", x, y)
    out.append(f'<line x1="{x(0)}" y1="{y(0.2)}" x2="{x(1)}" y2="{y(0.2)}" stroke="#b3400a" stroke-dasharray="4 4"/>')
    out.append(f'<text x="{x(1) - 4}" y="{y(0.2) - 6}" text-anchor="end" fill="#b3400a">risk 0.20 (precision 0.80)</text>')
    for i, (name, run) in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        curve = [p for p in run["risk_coverage"] if p["risk"] is not None]
        points = " ".join(f"{x(p['coverage']):.1f},{y(p['risk']):.1f}" for p in curve)
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        at = min(curve, key=lambda p: abs(p["threshold"] - answered))
        out.append(f'<circle cx="{x(at["coverage"]):.1f}" cy="{y(at["risk"]):.1f}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{x(0.02)}" y="{y(0.96) + 16 * i}" fill="{colour}">{name}</text>')
    out.append(f'<text x="{x(0.02)}" y="{y(0.96) + 16 * len(runs)}" fill="#333">dot: the `answered` threshold '
               f'({answered:.2f})</text>')
    out.append("</svg>")
    (args.out_dir / "confidence-risk-coverage.svg").write_text("\n".join(out) + "\n", encoding="utf-8")

    pooled: dict[int, list[float]] = {}
    for _name, run in runs:
        for b in run["reliability"]:
            k = round(b["bin"][0] * 10)
            n, conf, right = pooled.get(k, [0, 0.0, 0.0])
            pooled[k] = [n + b["n"], conf + b["mean_confidence"] * b["n"], right + b["right"] * b["n"]]
    out = _frame("Reliability: confidence against how often the quote was right", "confidence (mean of the bin)",
                 "quoted sentence right", x, y)
    out.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" stroke-dasharray="4 4"/>')
    for k in sorted(pooled):
        n, conf, right = pooled[k]
        cx, cy = x(conf / n), y(right / n)
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{3 + min(n, 200) ** 0.5 / 2:.1f}" fill="#1f5fbf" '
                   'fill-opacity="0.6"/>')
        out.append(f'<text x="{cx + 8:.1f}" y="{cy + 4:.1f}" fill="#333">{int(n)}</text>')
    out.append(f'<text x="{x(0.02)}" y="{y(0.96)}" fill="#333">pooled: {", ".join(n for n, _ in runs)}; '
               'labels: replies in the bin</text>')
    out.append("</svg>")
    (args.out_dir / "confidence-reliability.svg").write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {args.out_dir}/confidence-risk-coverage.svg and confidence-reliability.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
