"""The answerability trade-off as an SVG for the README: unanswerable questions refused against answerable ones
refused, as the reader's threshold moves (its calibration articles, through the engine: models/answerability/
config.json), with the chosen threshold and the target region marked.

    python benchmarks/plot_tradeoff.py [--out docs/answerability-tradeoff.svg]

No plotting library: the figure is a few SVG elements written by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
W, H, PAD = 560, 380, 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "answerability-tradeoff.svg")
    ap.add_argument("--chosen", type=float, default=0.2, help="the threshold in use (QA_ANSWERABILITY_BELOW)")
    args = ap.parse_args()
    config = json.loads((ROOT / "models" / "answerability" / "config.json").read_text(encoding="utf-8"))
    curve = sorted(config["trade_off"], key=lambda p: p["threshold"])

    def x(v: float) -> float:
        return PAD + v * (W - 2 * PAD)

    def y(v: float) -> float:
        return H - PAD - v * (H - 2 * PAD)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<rect x="{x(0)}" y="{y(1)}" width="{x(0.10) - x(0)}" height="{y(0.40) - y(1)}" fill="#d9f2dd"/>',
           f'<text x="{x(0) + 4}" y="{y(1) + 14}" fill="#0b5a1e">target: ≥ 40 % refused at ≤ 10 % false</text>']
    for v in (0, 0.2, 0.4, 0.6, 0.8, 1.0):
        out.append(f'<line x1="{x(0)}" y1="{y(v)}" x2="{x(1)}" y2="{y(v)}" stroke="#e0e0e0"/>')
        out.append(f'<line x1="{x(v)}" y1="{y(0)}" x2="{x(v)}" y2="{y(1)}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{x(0) - 8}" y="{y(v) + 4}" text-anchor="end">{int(v * 100)}%</text>')
        out.append(f'<text x="{x(v)}" y="{y(0) + 16}" text-anchor="middle">{int(v * 100)}%</text>')
    out.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" stroke-dasharray="4 4"/>')
    points = " ".join(f"{x(p['false_abstentions']):.1f},{y(p['refused_unanswerable']):.1f}" for p in curve)
    out.append(f'<polyline points="{points}" fill="none" stroke="#1f5fbf" stroke-width="2"/>')
    for p in curve:
        out.append(f'<circle cx="{x(p["false_abstentions"]):.1f}" cy="{y(p["refused_unanswerable"]):.1f}" r="2.5" fill="#1f5fbf"/>')
    chosen = min(curve, key=lambda p: abs(p["threshold"] - args.chosen))
    cx, cy = x(chosen["false_abstentions"]), y(chosen["refused_unanswerable"])
    out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="none" stroke="#b3400a" stroke-width="2"/>')
    out.append(f'<text x="{cx + 10:.1f}" y="{cy - 8:.1f}" fill="#b3400a">threshold {chosen["threshold"]:.2f} in use</text>')
    out.append(f'<text x="{W / 2}" y="{H - 14}" text-anchor="middle">answerable questions refused (false abstentions)</text>')
    out.append(f'<text x="16" y="{H / 2}" text-anchor="middle" transform="rotate(-90 16 {H / 2})">'
               'unanswerable questions refused</text>')
    out.append(f'<text x="{W / 2}" y="20" text-anchor="middle" font-weight="bold">The reader\'s trade-off on its '
               'calibration articles (SQuAD 2.0 half A, never trained on)</text>')
    out.append("</svg>")
    args.out.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
