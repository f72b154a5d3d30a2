"""Compare retrieval methods and weights on a gold set, from the engine's own candidate features
(one model call per question), and show the abstention trade-off.

    python benchmarks/tune_retrieval.py eval/seed.jsonl
    python benchmarks/tune_retrieval.py --squad ../shared/bench-data/squad-dev-v1.1.json --sample 2000 --seed 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qa.config import resolve_settings  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluation import load_gold, normalize, sample, squad_corpus  # noqa: E402
from qa.retrieval import maxsim  # noqa: E402


def collect(engine: Engine, golds):
    """Per question: candidate features, maxsim for every candidate, and which candidates are hits."""
    idx = engine.index
    texts = [normalize(c.text) for c in idx.chunks]
    out = []
    for g in golds:
        q = engine.query(g.question)
        c = engine.retriever.candidates_for(q)
        ms = np.array([maxsim(idx, q, int(r)) for r in c.rows])
        ms = np.where(np.isnan(ms), np.maximum(c.dense, c.sentence), ms)
        ev = [normalize(e) for e in g.evidence]
        hits = np.array([(g.article is None or idx.chunks[r].article_id == g.article) and any(e in texts[r] for e in ev) for r in c.rows])
        out.append((c, ms, hits, g.answer is not None))
    return out


def rrf(*scores):
    total = 0
    for x in scores:
        ranks = np.empty(len(x))
        ranks[np.argsort(-x, kind="stable")] = np.arange(len(x))
        total = total + 1 / (61 + ranks)
    return total


def hybrid(c, ms, w, a, rerank=20):
    first = w * np.maximum(c.dense, c.sentence) + (1 - w) * c.lexical
    top = np.argsort(-first, kind="stable")[:rerank]
    score = first - 10
    score[top] = a * ms[top] + (1 - a) * first[top]
    return score


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("gold", nargs="?")
    ap.add_argument("--squad")
    ap.add_argument("--sample", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--index")
    args = ap.parse_args()
    if args.squad:
        articles, golds = squad_corpus(args.squad)
        golds = sample(golds, args.sample, args.seed)
        engine = Engine.open(resolve_settings(index_dir=args.index or ".bench/squad-index"), articles=articles, sources=[args.squad])
    else:
        golds = load_gold(args.gold)
        engine = Engine.open(resolve_settings(index_dir=args.index))
    rows = collect(engine, golds)
    answerable = [r for r in rows if r[3]]

    def report(name, fn):
        ranks = []
        for c, ms, hits, _ in answerable:
            order = np.argsort(-fn(c, ms), kind="stable")[:5]
            ranks.append(next((i + 1 for i, j in enumerate(order) if hits[j]), None))
        n = len(ranks)
        h = [sum(r is not None and r <= k for r in ranks) / n for k in (1, 3, 5)]
        print(f"{name:<44} hit@1 {h[0]:.3f}  hit@3 {h[1]:.3f}  hit@5 {h[2]:.3f}")

    print(f"{len(answerable)} answerable questions")
    report("dense (passage)", lambda c, ms: c.dense)
    report("dense max(passage, sentence)", lambda c, ms: np.maximum(c.dense, c.sentence))
    report("bm25", lambda c, ms: c.lexical + 1e-6 * c.dense)
    report("rrf(dense, bm25)", lambda c, ms: rrf(c.dense, c.lexical))
    for w in (0.5, 0.6, 0.7):
        report(f"convex w={w}", lambda c, ms, w=w: w * np.maximum(c.dense, c.sentence) + (1 - w) * c.lexical)
    report("maxsim alone (all candidates)", lambda c, ms: ms)
    for w in (0.5, 0.6, 0.7):
        for a in (0.5, 0.6, 0.7, 0.8):
            report(f"hybrid w={w} a={a} (maxsim rerank of 20)", lambda c, ms, w=w, a=a: hybrid(c, ms, w, a))
    report("hybrid w=0.6 a=0.7 (maxsim rerank of 10)", lambda c, ms: hybrid(c, ms, 0.6, 0.7, rerank=10))

    if any(not g.answerable for g in golds):
        from dataclasses import replace

        print("\nabstention trade-off: the cosine threshold alone, and the full rule (threshold + names the")
        print("articles never mention + missing answer type), through Engine.ask")
        print("threshold  cosine only: kept / refused   full rule: kept / refused")
        best = [float(np.maximum(c.dense, c.sentence).max()) for c, *_ in rows]
        base = engine.settings
        for t in np.arange(0.14, 0.42, 0.02):
            kept = [b >= t for b, r in zip(best, rows) if r[3]]
            refused = [b < t for b, r in zip(best, rows) if not r[3]]
            engine.settings = replace(base, abstain_below=float(t))
            abst = [engine.ask(g.question).abstained for g in golds]
            fk = [not a for a, g in zip(abst, golds) if g.answerable]
            fr = [a for a, g in zip(abst, golds) if not g.answerable]
            print(f"  {t:.2f}       {np.mean(kept):.3f} / {np.mean(refused):.3f}            {np.mean(fk):.3f} / {np.mean(fr):.3f}")
        engine.settings = base

if __name__ == "__main__":
    main()
