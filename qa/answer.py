"""Hits -> Answer: the answer sentence verbatim, numbered citations, abstention.

The answer is the best sentence of the top passages: its cosine with the question plus a share of
its passage's fused score (a sentence of the best passage wins ties). Abstention uses the best
semantic cosine (passage or sentence), which means the same across questions, unlike a fusion score.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .retrieval import Hit
from .store import StoredIndex
from .types import Answer, Citation, Passage, Span

ANSWER_FROM_TOP = 3  # passages whose sentences compete for the answer
PASSAGE_SHARE = 0.5  # weight of the passage's fused score in a sentence's score


def display_path(path: str) -> str:
    """Relative to the working folder when the file is under it, else absolute."""
    p = Path(path)
    try:
        return p.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(p)


def compose_answer(question: str, hits: Sequence[Hit], index: StoredIndex, *, abstain_below: float,
                   reason_if_abstained: str | None = None) -> Answer:
    best_semantic = max((max(h.dense, h.sentence) for h in hits), default=-1.0)
    abstained = not hits or best_semantic < abstain_below or reason_if_abstained is not None
    reason = None
    if abstained:
        reason = reason_if_abstained or (
            "No passage is close enough to the question "
            f"(best similarity {best_semantic:.2f}, below the threshold {abstain_below:.2f})."
            if hits else "The index has no passages."
        )
    passages: list[Passage] = []
    best: tuple[float, int, Span] | None = None  # (score, rank, sentence span)
    for rank, h in enumerate(hits, start=1):
        chunk = index.chunks[h.row]
        info = index.articles[chunk.article_id]
        i = max(range(len(chunk.sentences)), key=lambda j: h.sentence_scores[j])
        span = chunk.sentences[i]
        if rank <= ANSWER_FROM_TOP:
            score = h.sentence_scores[i] + PASSAGE_SHARE * h.score
            if best is None or score > best[0]:
                best = (score, rank, span)
        citation = Citation(info.id, info.title, info.date, chunk.paragraph, chunk.start, chunk.end, display_path(info.path))
        passages.append(Passage(rank, h.score, max(h.dense, h.sentence), chunk.text, span, h.sentence_scores[i], citation, abstained))
    if abstained or best is None:
        return Answer(question, True, None, None, tuple(passages), reason)
    _, rank, span = best
    chunk_text = passages[rank - 1].text
    offset = passages[rank - 1].citation.start
    text = chunk_text[span.start - offset : span.end - offset]
    return Answer(question, False, text, rank, tuple(passages), None)
