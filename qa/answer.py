"""Hits -> Answer: the answer sentence verbatim, numbered citations, honest abstention.

The answer is the best sentence of the top passage, scored like passages are (late interaction and
cosine, per sentence). When the question asks for a kind of fact (a number, a time, an age, an amount of
money), only sentences that hold one can be the answer. (Moving passages that hold one ahead was measured
and dropped: no gain on the seed sets, -0.4 points hit@1 on SQuAD, and it lifted unrelated passages.)
The engine abstains, and says why, when
- no passage is semantically close (best cosine below `abstain_below`: a value that means the same for
  every question, unlike a fusion score), or
- the question names something no passage mentions, or
- it asks for a kind of fact that the top passage does not give.
It still lists the closest passages, marked `closest`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .clauses import missing_fact
from .conversation import without_context
from .grounding import (
    PASSAGE_TYPES,
    expected_type,
    has_type,
    headline_only_words,
    span_fits,
    unmatched_names,
    unmatched_offices,
    wants_short_answer,
)
from .introductions import role_span, subject_of
from .retrieval import Hit
from .store import StoredIndex
from .types import Answer, Citation, Passage, Span

_TYPE_WORDS = {"number": "number", "time": "time or date", "age": "age", "money": "amount of money", "name": "name",
               "duration": "length or duration", "country": "country or nationality"}


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


def _sentence_text(index: StoredIndex, hit: Hit, i: int) -> str:
    chunk = index.chunks[hit.row]
    s = chunk.sentences[i]
    return chunk.text[s.start - chunk.start : s.end - chunk.start]


def compose_answer(question: str, hits: Sequence[Hit], index: StoredIndex, *, k: int, abstain_below: float,
                   corrected: str | None = None, reader=None, answerability_below: float = 0.0,
                   unanswerable_because: str | None = None, known_answer: str | None = None) -> Answer:
    """`hits` best first; returns k passages.
    `corrected` is the question after typo correction, used to look names up. `unanswerable_because`, when given,
    replaces the generic refusals ("does not say ...", "nothing is close"): a follow-up with nothing to follow. The
    refusals that name what the article lacks (an unknown name, a headline-only word) keep their words.
    `known_answer`: a text found to answer the question ("10th District of Chicago" for a follow-up "Which
    district?"); where the answer sentence holds it, it is the short answer, in place of the reader's."""
    kind = expected_type(question)
    hits = list(hits)[:k]

    best_semantic = max((max(h.dense, h.sentence) for h in hits), default=-1.0)
    says = "The articles do not say" if len(index.articles) > 1 else "The article does not say"
    fact = missing_fact(without_context(question))  # a follow-up's refusal names what it asks, not the earlier text
    if fact:
        fact = re.sub(r"[A-Za-z]+", lambda m: index.acronyms.get(m.group(0), m.group(0)), fact)  # "copa" -> "COPA"
    not_said = unanswerable_because or (f"{says} {fact}." if fact else f"{says}.")
    reason = details = None
    if not hits:
        reason, details = "There are no passages to answer from.", "the index is empty"
    elif best_semantic < abstain_below:
        reason = not_said if fact or unanswerable_because else \
            f"Nothing in the {'articles' if len(index.articles) > 1 else 'article'} is close to this question."
        details = f"best similarity {best_semantic:.2f}, under the threshold {abstain_below:.2f}"
    else:
        missing = unmatched_names(corrected or question, index.lexical.vocabulary)
        in_names = {w.lower() for name in missing for w in name.split()}
        missing += [w for w in unmatched_offices(corrected or question, index.lexical.vocabulary) if w not in in_names]
        aside = headline_only_words(corrected or question, index.lexical.vocabulary, index.aside_vocabulary)
        the = "The articles" if len(index.articles) > 1 else "The article"
        if aside:
            named = " and ".join(repr(_as_written(w, corrected or question)) for w in aside[:3])
            reason = f"{the} {'mention' if the.endswith('s') else 'mentions'} {named} only in a related-story headline, not in the story."
            details = f"{named}: in no passage of story text, only in lines set aside as headlines or promos"
        elif missing:
            named = " or ".join(repr(m) for m in missing)
            reason = f"{'The articles never mention' if len(index.articles) > 1 else 'The article never mentions'} {named}."
            details = f"{named}: in no passage, even allowing for typos"

    answer_sentence: int | None = None  # index of the answer sentence in the top passage
    if hits:
        top = hits[0]
        eligible = [i for i in range(len(top.sentence_scores))
                    if kind is None or has_type(_sentence_text(index, top, i), kind, question)]
        if eligible and kind in PASSAGE_TYPES:
            eligible = list(range(len(top.sentence_scores)))  # the passage holds one: any sentence may answer
        if eligible:
            answer_sentence = max(eligible, key=lambda i: top.sentence_scores[i])
        elif reason is None:
            reason = not_said
            details = f"the closest passage gives no {_TYPE_WORDS[kind]}"
    span = None
    # the reader runs for questions that ask for a fact (who, when, where, which, how many...): they get a short
    # answer; its abstention, at the threshold in use, changes little else, and it costs ~4 ms a question
    if reader is not None and reason is None and answer_sentence is not None and wants_short_answer(question):
        reading = _read(reader, question, index, hits[0], answer_sentence)
        if reading.answer_prob < answerability_below:
            reason = not_said
            details = (f"the reader's answer score for the best sentence is {reading.answer_prob:.2f}, under the "
                       f"threshold {answerability_below:.2f}")
        elif reading.span is not None:
            chunk = index.chunks[hits[0].row]
            text = chunk.text[reading.span[0] : reading.span[1]]
            if span_fits(question, text):
                span = Span(chunk.start + reading.span[0], chunk.start + reading.span[1])
    if reason is None and answer_sentence is not None:
        s = index.chunks[hits[0].row].sentences[answer_sentence]
        sentence = _sentence_text(index, hits[0], answer_sentence)
        if known_answer and known_answer in sentence:
            at = sentence.index(known_answer)
            found = (at, at + len(known_answer))
        else:  # "Who is Kersten?": the role the story gives her, not the reader's "COPA"
            subject = subject_of(question)
            found = role_span(sentence, subject) if subject else None
        if found:
            span = Span(s.start + found[0], s.start + found[1])
    abstained = reason is not None

    passages = []
    for rank, h in enumerate(hits, start=1):
        chunk = index.chunks[h.row]
        info = index.articles[chunk.article_id]
        if rank == 1 and answer_sentence is not None:
            i = answer_sentence
        else:
            i = max(range(len(chunk.sentences)), key=lambda j: h.sentence_scores[j])
        citation = Citation(info.id, info.title, info.date, chunk.paragraph, chunk.start, chunk.end,
                            display_path(info.path, index.root), info.url, info.source)
        passages.append(Passage(rank, h.score, max(h.dense, h.sentence), chunk.text, chunk.sentences[i],
                                h.sentence_scores[i], citation, abstained))
    if abstained:
        return Answer(question, True, None, None, tuple(passages), reason, details=details)
    return Answer(question, False, _sentence_text(index, hits[0], answer_sentence), 1, tuple(passages), None, span=span)


def _as_written(word: str, question: str) -> str:
    """A (folded) word as the question writes it: "Lightfoot", not "lightfoot"."""
    import re

    m = re.search(rf"\b{re.escape(word)}\b", question, re.IGNORECASE)
    return m.group(0) if m else word


def _read(reader, question: str, index: StoredIndex, hit: Hit, i: int):
    """The reader's verdict on sentence i of the hit's passage (offsets relative to the passage)."""
    chunk = index.chunks[hit.row]
    s = chunk.sentences[i]
    return reader.read(question, chunk.text, [(s.start - chunk.start, s.end - chunk.start)])[0]
