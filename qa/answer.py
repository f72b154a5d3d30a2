"""The compose stage: a Decision (qa/decide.py) and the hits -> the Answer, with numbered citations.

The quoted sentence is verbatim from the article; every listed passage is cited by article, date, paragraph and the
exact [start, end) of its text in the file. A reply that is not `answered` lists its passages as the closest text
(`closest`), never as an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .decide import Decision
from .retrieval import Hit
from .store import StoredIndex
from .types import Answer, Citation, Passage


@lru_cache(maxsize=4096)
def display_path(path: str, root: Path | None) -> str:
    """Relative to the project root (the index folder's parent) when the file is under it, else absolute."""
    p = Path(path)
    if root is not None:
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(p)


def compose_answer(question: str, hits: Sequence[Hit], index: StoredIndex, decision: Decision, *, k: int) -> Answer:
    """The Answer to `question` from `hits` (best first; k are listed) as `decision` says."""
    hits = list(hits)[:k]
    chosen = decision.reading
    passages = []
    for rank, h in enumerate(hits, start=1):
        chunk = index.chunks[h.row]
        info = index.articles[chunk.article_id]
        if chosen is not None and chosen.candidate.row == h.row:
            i = chosen.candidate.sentence
        else:
            i = max(range(len(chunk.sentences)), key=lambda j: h.sentence_scores[j])
        citation = Citation(info.id, info.title, info.date, chunk.paragraph, chunk.start, chunk.end,
                            display_path(info.path, index.root), info.url, info.source)
        passages.append(Passage(rank, h.score, max(h.dense, h.sentence), chunk.text, chunk.sentences[i],
                                h.sentence_scores[i], citation, decision.status != "answered"))
    if decision.status == "abstained" or chosen is None or chosen.candidate.rank >= len(hits):
        return Answer(question, True, None, None, tuple(passages), decision.reason or "The article does not say.",
                      details=decision.details, status="abstained", confidence=decision.confidence)
    return Answer(question, False, chosen.text, chosen.candidate.rank + 1, tuple(passages), decision.reason,
                  span=decision.span, details=decision.details, status=decision.status, confidence=decision.confidence)
