"""The first stage's inverted file on real embeddings: recall@10 against exact search when the rows are the SQuAD
v1.1 dev sentence vectors (real model; the cache `benchmarks/archive.py --fill` writes) and the queries SQuAD
questions, the lists made by the same rule as in a segment (qa.segments.train_ivf, 2·√n lists), and the same
share of lists read as IVF_PROBES reads of the 10,000-article archive's 675 (and 2×, 4× that).

    python benchmarks/archive.py --articles 10 --fill --no-app      # once: writes the sentence-vector cache
    python benchmarks/ivf_recall.py [--cache .bench/archive/sentence-vectors-1.npy]

A check of how pessimistic the synthetic archive is (its passages are means of unrelated sentences), not a
measurement at the archive's size: 10,176 rows here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=str(ROOT / ".bench" / "archive" / "sentence-vectors-1.npy"))
    ap.add_argument("--questions", type=int, default=220)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import archive as bench

    from qa.onnx_backend import OnnxEmbedder, find_export
    from qa.segments import IVF_PROBES, InvertedFile, train_ivf

    x = np.load(args.cache).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    arrays = train_ivf(lambda: [x], len(x), x.shape[1])
    ivf = InvertedFile(arrays["centroids"], arrays["lists"], arrays["members"])
    questions = [qa["question"] for art in json.loads(bench.SQUAD.read_text(encoding="utf-8"))["data"]
                 for p in art["paragraphs"] for qa in p["qas"]]
    questions = random.Random(1).sample(questions, args.questions)
    embedder = OnnxEmbedder("all-MiniLM-L6-v2", find_export(ROOT / "index", "all-MiniLM-L6-v2"))
    q = np.concatenate([embedder.encode(questions[i : i + 64]).vectors for i in range(0, len(questions), 64)])
    lists = len(ivf.centroids)
    print(f"{len(x):,} rows, {lists} lists, {len(q)} questions")
    for times in (1, 2, 4):
        probes = max(1, round(times * IVF_PROBES / 675 * lists))
        found = 0
        for v in q:
            exact = np.argsort(-(x @ v))[:10]
            cand = np.sort(ivf.candidates(v, probes))
            found += len(set(exact.tolist()) & set(cand[np.argsort(-(x[cand] @ v))[:10]].tolist()))
        print(f"| {probes} of {lists} ({probes / lists:.1%}) | {found / (10 * len(q)):.4f} |")


if __name__ == "__main__":
    main()
