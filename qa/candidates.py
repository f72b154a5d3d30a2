"""The sentences the reader reads: the best few of each of the best few passages.

Retrieval ranks passages well (hit@3 0.96-0.98 on the seed and SQuAD sets) but its choice of the answer sentence
inside them, and of the passage among the top three, is where most wrong answers on unseen news came from (18 of
98 answerable questions quoted the wrong sentence). So the reader chooses among the top sentences of the top
passages instead of judging the one sentence retrieval picked. Training (qa/training.py) draws its hard negatives
from the same function, so the reader is trained on what it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .retrieval import Hit

PASSAGES = 3  # passages whose sentences are read
FIRST_PASSAGE_SENTENCES = 2  # the top passage holds the answer most often: read two of its sentences
OTHER_PASSAGE_SENTENCES = 1


@dataclass(frozen=True)
class Candidate:
    """One sentence the reader may choose: of hit `rank` (0 = the top passage), sentence `sentence` of its chunk."""

    rank: int  # the passage's place among the hits, 0-based
    row: int  # the passage's row in the index
    sentence: int  # index into the chunk's sentences
    score: float  # retrieval's per-sentence score (late interaction and cosine)
    order: int  # the sentence's place by that score within its passage, 0-based


def candidate_sentences(hits: Sequence[Hit], *, passages: int = PASSAGES, first: int = FIRST_PASSAGE_SENTENCES,
                        others: int = OTHER_PASSAGE_SENTENCES) -> list[Candidate]:
    """The sentences to read, passage by passage (best passage first), each passage's best by retrieval first."""
    out: list[Candidate] = []
    for rank, hit in enumerate(list(hits)[:passages]):
        scores = hit.sentence_scores
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        for place, i in enumerate(order[: first if rank == 0 else others]):
            out.append(Candidate(rank, hit.row, i, float(scores[i]), place))
    return out
