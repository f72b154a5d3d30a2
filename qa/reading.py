"""The read stage: the reader's verdict on each candidate sentence of the best passages (qa/candidates.py).

The reader (qa/answerability.py) reads `[CLS] question [SEP] sentence [SEP]` for every candidate in one batch and
gives, per sentence, the logit that it states the answer and the most likely short answer inside it. Without a
reader (QA_READER=off) the candidates are still listed, unread, and the decision falls back to retrieval alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .candidates import Candidate, candidate_sentences
from .retrieval import Hit
from .store import StoredIndex
from .types import Span


@dataclass(frozen=True)
class SentenceReading:
    """One candidate sentence and what the reader made of it (file offsets throughout)."""

    candidate: Candidate
    sentence: Span  # the sentence in its article's file
    text: str
    logit: float | None  # the reader's raw logit that the sentence states the answer (None: no reader)
    span: Span | None = None  # the reader's short answer inside the sentence
    span_prob: float = 0.0  # P(start) * P(end) of that span

    @property
    def hit(self) -> int:
        return self.candidate.rank


def read(question: str, hits: Sequence[Hit], index: StoredIndex, reader=None) -> tuple[SentenceReading, ...]:
    """Every candidate sentence of `hits`, read by `reader` (an AnswerabilityModel) when there is one."""
    candidates = candidate_sentences(hits)
    spans, texts = [], []
    for c in candidates:
        chunk = index.chunks[c.row]
        s = chunk.sentences[c.sentence]
        spans.append(s)
        texts.append(chunk.text[s.start - chunk.start : s.end - chunk.start])
    if reader is None or not texts:
        return tuple(SentenceReading(c, s, t, None) for c, s, t in zip(candidates, spans, texts))
    out = []
    for c, s, t, r in zip(candidates, spans, texts, reader.read_texts(question, texts)):
        span = None if r.span is None else Span(s.start + r.span[0], s.start + r.span[1])
        out.append(SentenceReading(c, s, t, r.logit, span, r.span_prob))
    return tuple(out)
