"""Hybrid retrieval: dense (FAISS) and BM25 over the same passages, fused, near-duplicates collapsed.

Scores, per candidate passage (the union of each retriever's top `candidates`):
- dense: cosine of question and passage vectors;
- sentence: the best cosine of the question with one of the passage's sentences;
- lexical: BM25 divided by the best BM25 of this question (1.0 for the best lexical match).
fused = w * max(dense, sentence) + (1 - w) * lexical. The fusion method and weight were chosen by
measurement (README, "How the settings were chosen"); `method="rrf"` keeps reciprocal rank fusion for
comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .lexical import tokenize
from .store import StoredIndex

FusionMethod = Literal["convex", "rrf", "dense", "bm25"]
DUPLICATE_COSINE = 0.97  # passages this close are the same text (syndicated copies, repeated quotes)
RRF_K = 60


@dataclass(frozen=True)
class Hit:
    row: int  # passage row in the index
    score: float
    dense: float  # passage cosine
    sentence: float  # best sentence cosine
    lexical: float  # BM25 / best BM25
    sentence_scores: tuple[float, ...]  # cosine of each sentence of the passage


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


class Retriever:
    def __init__(self, index: StoredIndex, *, dense_weight: float = 0.6, candidates: int = 50,
                 method: FusionMethod = "convex") -> None:
        self.index = index
        self.dense_weight = dense_weight
        self.candidates = candidates
        self.method = method

    def search(self, question: str, qvec: np.ndarray, k: int) -> list[Hit]:
        """The k best passages for a question (text for BM25, unit vector for dense), best first."""
        index = self.index
        n = len(index.chunks)
        if n == 0:
            return []
        q = np.asarray(qvec, dtype=np.float32).reshape(1, -1)
        c = min(self.candidates, n)
        d_scores, d_rows = index.faiss_index.search(q, c)
        d_rows = d_rows[0][d_rows[0] >= 0]
        bm25 = index.lexical.scores(tokenize(question))
        l_rows = _top(bm25, c) if bm25.max() > 0 else np.zeros(0, dtype=np.int64)
        rows = np.unique(np.concatenate([d_rows, l_rows]).astype(np.int64))
        dense = index.passage_vectors[rows] @ q[0]
        best_bm25 = float(bm25.max())
        lexical = bm25[rows] / best_bm25 if best_bm25 > 0 else np.zeros(len(rows), np.float32)
        sent_all = []
        sentence = np.empty(len(rows), np.float32)
        for i, r in enumerate(rows):
            s = index.sentence_vectors[index.sentence_first[r] : index.sentence_first[r + 1]] @ q[0]
            sent_all.append(s)
            sentence[i] = s.max()
        semantic = np.maximum(dense, sentence)
        if self.method == "convex":
            fused = self.dense_weight * semantic + (1 - self.dense_weight) * lexical
        elif self.method == "dense":
            fused = dense
        elif self.method == "bm25":
            fused = lexical + 1e-6 * dense
        else:  # plain reciprocal rank fusion of the two lists
            d_rank = {int(r): i for i, r in enumerate(d_rows)}
            l_rank = {int(r): i for i, r in enumerate(l_rows)}
            fused = np.array([
                (1 / (RRF_K + 1 + d_rank[int(r)]) if int(r) in d_rank else 0.0)
                + (1 / (RRF_K + 1 + l_rank[int(r)]) if int(r) in l_rank else 0.0) for r in rows
            ])
        order = np.argsort(-fused, kind="stable")
        hits: list[Hit] = []
        kept_vectors: list[np.ndarray] = []
        seen_text: set[str] = set()
        for i in order:
            r = int(rows[i])
            text = " ".join(index.chunks[r].text.lower().split())
            vec = index.passage_vectors[r]
            if text in seen_text or any(float(v @ vec) >= DUPLICATE_COSINE for v in kept_vectors):
                continue  # a near-duplicate of a better passage
            seen_text.add(text)
            kept_vectors.append(vec)
            hits.append(Hit(r, float(fused[i]), float(dense[i]), float(sentence[i]), float(lexical[i]),
                            tuple(float(x) for x in sent_all[i])))
            if len(hits) == k:
                break
        return hits
