"""The first stage's HNSW graph against exact search: recall@10 and time a question, on two sets of rows and the
same 220 SQuAD v1.1 dev questions encoded by the real model, the graph made and searched as a segment does
(qa.segments.write_graph, Graph.search) at several efSearch:

- real: the 10,176 SQuAD v1.1 dev sentence vectors (the real model; the cache `benchmarks/archive.py --fill`
  writes);
- synthetic: as many rows as the benchmark's 10,000-article archive (113,753), each the normalised mean of 5 of
  those sentence vectors drawn at random (seed 1): passages with no topical clusters, the hard case for an
  approximate index, as the archive benchmark's filled passages are.

    python benchmarks/archive.py --articles 10 --fill --no-app      # once: writes the sentence-vector cache
    python benchmarks/graph_recall.py [--cache .bench/archive/sentence-vectors-1.npy] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=str(ROOT / ".bench" / "archive" / "sentence-vectors-1.npy"))
    ap.add_argument("--questions", type=int, default=220)
    ap.add_argument("--rows", type=int, default=113_753, help="rows of the synthetic set")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    import faiss
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    import archive as bench

    import qa.segments as segments
    from qa.onnx_backend import OnnxEmbedder, find_export

    x = np.load(args.cache).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picks = np.random.default_rng(1).integers(0, len(x), size=(args.rows, 5))
    synthetic = x[picks].mean(axis=1)
    synthetic = (synthetic / np.linalg.norm(synthetic, axis=1, keepdims=True)).astype(np.float32)
    questions = [qa["question"] for art in json.loads(bench.SQUAD.read_text(encoding="utf-8"))["data"]
                 for p in art["paragraphs"] for qa in p["qas"]]
    questions = random.Random(1).sample(questions, args.questions)
    embedder = OnnxEmbedder("all-MiniLM-L6-v2", find_export(ROOT / "index", "all-MiniLM-L6-v2"))
    q = np.concatenate([embedder.encode(questions[i : i + 64]).vectors for i in range(0, len(questions), 64)])
    out = {"questions": len(q), "M": segments.GRAPH_M, "ef_construction": segments.GRAPH_EF_CONSTRUCTION, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in (("real", x), ("synthetic", synthetic)):
            path = Path(tmp) / f"{name}.faiss"
            t = time.perf_counter()
            segments.write_graph(path, [rows], len(rows), rows.shape[1])
            built = time.perf_counter() - t
            graph = segments.Graph(path, len(rows), rows.shape[1])
            faiss.omp_set_num_threads(1)
            exact_t, exact = [], []
            for v in q:
                t = time.perf_counter()
                exact.append(np.argsort(-(rows @ v))[:10])
                exact_t.append(time.perf_counter() - t)
            res = {"rows": len(rows), "build_s": round(built, 1), "exact_ms_p50": round(float(np.median(exact_t)) * 1000, 2),
                   "ef": {}}
            for ef in (64, 128, 256, 512):
                segments.GRAPH_EF_SEARCH = ef
                found, ts = 0, []
                for v, ex in zip(q, exact):
                    t = time.perf_counter()
                    got, _ = graph.search(v, 10)
                    ts.append(time.perf_counter() - t)
                    found += len(set(ex.tolist()) & set(got.tolist()))
                res["ef"][ef] = {"recall@10": round(found / (10 * len(q)), 4), "ms_p50": round(float(np.median(ts)) * 1000, 2)}
                print(f"| {name} | {len(rows):,} | {ef} | {res['ef'][ef]['recall@10']:.4f} | {res['ef'][ef]['ms_p50']} ms "
                      f"| exact {res['exact_ms_p50']} ms | build {res['build_s']} s |", flush=True)
            faiss.omp_set_num_threads(2)
            out["sets"][name] = res
            del graph
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
