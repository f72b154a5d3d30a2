"""Hybrid retrieval: dense and BM25 propose, late interaction (MaxSim) reranks.

The retriever reads the index through the store's snapshot (qa/store.py `Snapshot`): the first stage's searches
(`dense_search`, `lexical_search`, with an article scope), then the vectors of the candidates only
(`vectors_of`, `sentence_vectors_of`, `tokens_of`); it never reads the whole archive.

For each candidate passage (the union of each retriever's top `candidates`):
- dense: cosine of question and passage vectors;
- sentence: best cosine of the question with one of the passage's sentences;
- lexical: BM25 divided by the best BM25 of this question (1.0 for the best lexical match);
- maxsim: mean, over the question's content word pieces, of the best cosine with one of the passage's
  content word pieces (ColBERT-style late interaction on the model's contextual piece vectors).
first = w * max(dense, sentence) + (1 - w) * lexical ranks the candidates; the best `rerank` (10) of them
are ordered by a * maxsim + (1 - a) * first. Method and weights were chosen by measurement (README, "How the
settings were chosen"); the other methods stay for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from . import quantize
from .lexical import tokenize
from .store import Snapshot, _top

FusionMethod = Literal["hybrid", "convex", "rrf", "dense", "bm25"]
DUPLICATE_COSINE = 0.97  # passages this close are the same text (syndicated copies, repeated quotes)
RRF_K = 60


@dataclass(frozen=True)
class Query:
    text: str  # after typo correction
    vector: np.ndarray  # (dim,) unit
    tokens: np.ndarray  # (content pieces, dim) unit rows


@dataclass(frozen=True)
class Candidates:
    """Feature arrays over candidate passage rows (the tuning harness recombines them)."""

    rows: np.ndarray
    dense: np.ndarray
    sentence: np.ndarray
    lexical: np.ndarray
    sentence_scores: list[np.ndarray]


@dataclass(frozen=True)
class Hit:
    row: int  # passage row in the index
    score: float
    dense: float  # passage cosine
    sentence: float  # best sentence cosine
    lexical: float  # BM25 / best BM25
    maxsim: float
    sentence_scores: tuple[float, ...]  # per sentence: a * sentence MaxSim + (1 - a) * sentence cosine


class LateInteraction:
    """MaxSim of one question against several passages, from one small similarity matrix per passage.

    `passage[i]` is the mean, over the question's content pieces, of their best cosine with a content piece
    of passage rows[i] (NaN when either side has none); `sentences(i)` is the same per sentence.
    """

    def __init__(self, index: Snapshot, query: Query, rows: np.ndarray) -> None:
        self.index = index
        self.rows = [int(r) for r in rows]
        # the candidates' pieces only, decoded from the store's compressed rows; the question's pieces are rotated
        # into the codes' space once (qa/quantize.py: the dot products are the same)
        self.pieces = index.tokens_of(self.rows) if len(query.tokens) else [(None, None)] * len(self.rows)
        q = quantize.rotate(query.tokens) if len(query.tokens) else query.tokens
        self.sims: list[np.ndarray | None] = [
            q @ tokens.T if tokens is not None and len(tokens) else None for tokens, _owner in self.pieces
        ]  # per passage: (question pieces, passage pieces)
        self.passage = np.array([np.nan if s is None else float(s.max(axis=1).mean()) for s in self.sims])

    def sentences(self, i: int) -> np.ndarray:
        r = self.rows[i]
        out = np.full(len(self.index.chunks[r].sentences), np.nan)
        sims = self.sims[i]
        if sims is None:
            return out
        owner = self.pieces[i][1]
        # a passage's pieces come in reading order, so each sentence's pieces are one run of columns
        present, firsts = np.unique(owner, return_index=True)
        out[present] = np.maximum.reduceat(sims, firsts, axis=1).mean(axis=0)
        return out


def maxsim(index: Snapshot, query: Query, row: int) -> float:
    """MaxSim of the question with one passage (see LateInteraction)."""
    return float(LateInteraction(index, query, np.array([row])).passage[0])


class Retriever:
    """`search(query, k)` over one snapshot of a store; `method` other than "hybrid" is for comparisons."""

    def __init__(self, index: Snapshot, *, dense_weight: float = 0.6, maxsim_weight: float = 0.7,
                 candidates: int = 20, rerank: int = 10, method: FusionMethod = "hybrid") -> None:
        self.index = index
        self.dense_weight = dense_weight
        self.maxsim_weight = maxsim_weight
        self.candidates = candidates
        self.rerank = rerank
        self.method = method

    def candidates_for(self, query: Query, rows: np.ndarray | None = None, extra: Sequence[int] = ()) -> Candidates:
        """Each retriever's best passages, among `rows` when given (a question about some articles only), and the
        `extra` rows."""
        index = self.index
        n = len(index.chunks)
        q = np.asarray(query.vector, dtype=np.float32).reshape(-1)
        c = min(self.candidates, n if rows is None else len(rows))
        tokens = tokenize(query.text)
        d_rows, _ = index.dense_search(q, c, rows)
        l_rows, l_scores = index.lexical_search(tokens, c, rows)
        best_bm25 = float(l_scores[0]) if len(l_scores) else 0.0
        rows = np.unique(np.concatenate([d_rows, l_rows, np.asarray(list(extra), dtype=np.int64)]).astype(np.int64))
        dense = index.vectors_of(rows) @ q
        lexical = index.lexical_scores(tokens, rows) / best_bm25 if best_bm25 > 0 else np.zeros(len(rows), np.float32)
        blocks = index.sentence_vectors_of(rows)
        flat = np.concatenate(blocks) @ q  # every sentence of every candidate, one product
        bounds = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64)
        sentence_scores = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        sentence = np.maximum.reduceat(flat, bounds[:-1]).astype(np.float32)
        return Candidates(rows, dense, sentence, lexical, sentence_scores)

    def first_stage(self, cands: Candidates) -> np.ndarray:
        semantic = np.maximum(cands.dense, cands.sentence)
        if self.method in ("hybrid", "convex"):
            return self.dense_weight * semantic + (1 - self.dense_weight) * cands.lexical
        if self.method == "dense":
            return cands.dense
        if self.method == "bm25":
            return cands.lexical + 1e-6 * cands.dense
        # plain reciprocal rank fusion of the two rankings
        out = np.zeros(len(cands.rows))
        for scores in (cands.dense, cands.lexical):
            ranks = np.empty(len(scores))
            ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
            out += 1 / (RRF_K + 1 + ranks)
        return out

    def search(self, query: Query, k: int, rows: np.ndarray | None = None,
               boost: Mapping[int, float] | None = None) -> list[Hit]:
        """The k best passages for a question, best first, near-duplicates collapsed; among `rows` when given.
        `boost` adds to the scores of some rows (a follow-up question: the passage of the answer it follows)."""
        index = self.index
        if not index.chunks or rows is not None and not len(rows):
            return []
        boost = dict(boost or {})
        cands = self.candidates_for(query, rows, [r for r in boost if rows is None or r in set(rows.tolist())])
        first = self.first_stage(cands)
        if boost:
            first = first + np.array([boost.get(int(r), 0.0) for r in cands.rows])
        order = np.argsort(-first, kind="stable")
        late = np.full(len(cands.rows), np.nan)
        score = first.astype(np.float64).copy()
        top = order[: max(self.rerank, k)]
        interaction = LateInteraction(index, query, cands.rows[top])
        where = {int(i): j for j, i in enumerate(top)}  # candidate -> its place in `interaction`
        a = self.maxsim_weight
        if self.method == "hybrid":
            late[top] = interaction.passage
            score -= 10.0  # the passages not reranked go below every reranked one
            score[top] = np.where(np.isnan(late[top]), first[top], a * late[top] + (1 - a) * first[top])
            if boost:  # the rerank replaced most of the first-stage score: the boost counts in full again
                score[top] += a * np.array([boost.get(int(r), 0.0) for r in cands.rows[top]])
            order = np.argsort(-score, kind="stable")
        hits: list[Hit] = []
        kept_vectors: list[np.ndarray] = []
        seen_text: set[str] = set()
        vectors = index.vectors_of(cands.rows)
        for i in order:
            r = int(cands.rows[i])
            text = " ".join(index.chunks[r].text.lower().split())
            vec = vectors[i]
            if text in seen_text or any(float(v @ vec) >= DUPLICATE_COSINE for v in kept_vectors):
                continue  # a near-duplicate of a better passage
            seen_text.add(text)
            kept_vectors.append(vec)
            cos = cands.sentence_scores[i]
            sent_late = interaction.sentences(where[int(i)]) if int(i) in where else np.full(len(cos), np.nan)
            per_sentence = np.where(np.isnan(sent_late), cos, a * sent_late + (1 - a) * cos)
            hits.append(Hit(r, float(score[i]), float(cands.dense[i]), float(cands.sentence[i]), float(cands.lexical[i]),
                            float(late[i]), tuple(float(x) for x in per_sentence)))
            if len(hits) == k:
                break
        return hits
