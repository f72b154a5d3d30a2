"""The decide stage: refuse with a reason, or quote a sentence with one calibrated confidence and a status.

In order:
1. Rules that refuse and say why, in words staff can check: no passage semantically close (best cosine below
   `abstain_below`, a value that means the same for every question), a word the article holds only in a
   related-story headline, a name or an office no passage mentions, a kind of fact (number, time, age, money,
   name, length, country) that no candidate sentence gives.
2. Every candidate sentence the reader read is scored by the confidence model (qa/confidence.py); the best is
   quoted, and its calibrated confidence sets the status: `answered` (at least the model's `answered` threshold),
   `uncertain` ("The article may not answer this. The closest it comes: ..."), or `abstained`.
3. An `answered` reply to a question that asks for a fact gets a short answer only when it is that fact
   (qa/short_answer.py).
Without a reader or a confidence model (QA_READER=off) step 2 quotes retrieval's best sentence of the top
passage and the status is `answered` or `abstained` by the rules alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .clauses import missing_fact
from .confidence import ConfidenceModel, features, question_terms
from .conversation import without_context
from .grounding import PASSAGE_TYPES, expected_type, has_type, headline_only_words, unmatched_names, unmatched_offices
from .pipeline import Resolved, Retrieved
from .reading import SentenceReading
from .store import StoredIndex
from .types import Span

Status = Literal["answered", "uncertain", "abstained"]

_TYPE_WORDS = {"number": "number", "time": "time or date", "age": "age", "money": "amount of money", "name": "name",
               "duration": "length or duration", "country": "country or nationality"}


@dataclass(frozen=True)
class Decision:
    status: Status
    reading: SentenceReading | None  # the sentence quoted (answered, uncertain); for an abstention, the closest
    confidence: float | None  # P(the quoted sentence answers the question); None without a confidence model
    reason: str | None = None  # why not answered, in plain words (abstained, uncertain)
    details: str | None = None  # the scores and thresholds behind it
    span: Span | None = None  # the short answer inside the quoted sentence (answered only)

    @property
    def abstained(self) -> bool:
        return self.status == "abstained"


def _as_written(word: str, question: str) -> str:
    """A (folded) word as the question writes it: "Lightfoot", not "lightfoot"."""
    m = re.search(rf"\b{re.escape(word)}\b", question, re.IGNORECASE)
    return m.group(0) if m else word


@dataclass(frozen=True)
class Refusal:
    """A rule's refusal: which rule, the reason in plain words and the details behind it."""

    rule: str  # "empty", "far", "headline-only", "never-mentioned", "no-type"
    reason: str
    details: str


def refusal_by_rule(resolved: Resolved, retrieved: Retrieved, index: StoredIndex, abstain_below: float,
                    fact: str | None = None, not_said: str | None = None) -> Refusal | None:
    """The refusal when a rule refuses the question before any sentence is weighed, else None. `fact` and
    `not_said`: the question's refusal clause and text, when the caller has them already."""
    if not_said is None:
        fact = refusal_clause(resolved, index)
        not_said = refusal_text(resolved, index, fact)
    hits = retrieved.hits
    several = len(index.articles) > 1
    if not hits:
        return Refusal("empty", "There are no passages to answer from.", "the index is empty")
    best_semantic = max(max(h.dense, h.sentence) for h in hits)
    # a reference found in the article ("the district" -> "10th District") makes the question about it, however far
    # a short "Which district?" is from every passage for the encoder (0.21, under the threshold)
    floor = -1.0 if resolved.referent else abstain_below
    if best_semantic < floor:
        reason = not_said if fact or resolved.dangling else \
            f"Nothing in the {'articles' if several else 'article'} is close to this question."
        return Refusal("far", reason, f"best similarity {best_semantic:.2f}, under the threshold {floor:.2f}")
    names = resolved.corrected
    vocabulary = index.lexical.vocabulary
    the = _the(index)
    aside = headline_only_words(names, vocabulary, index.aside_vocabulary)
    if aside:
        named = " and ".join(repr(_as_written(w, names)) for w in aside[:3])
        return Refusal("headline-only",
                       f"{the} {'mention' if several else 'mentions'} {named} only in a related-story headline, "
                       "not in the story.",
                       f"{named}: in no passage of story text, only in lines set aside as headlines or promos")
    missing = unmatched_names(names, vocabulary)
    in_names = {w.lower() for name in missing for w in name.split()}
    missing += [w for w in unmatched_offices(names, vocabulary) if w not in in_names]
    if missing:
        named = " or ".join(repr(m) for m in missing)
        return Refusal("never-mentioned", f"{the} never {'mention' if several else 'mentions'} {named}.",
                       f"{named}: in no passage, even allowing for typos")
    return None


def _the(index: StoredIndex) -> str:
    return "The articles" if len(index.articles) > 1 else "The article"


def _says(index: StoredIndex) -> str:
    return f"{_the(index)} {'do' if len(index.articles) > 1 else 'does'} not say"


def refusal_clause(resolved: Resolved, index: StoredIndex) -> str | None:
    """What the question asks, as a clause for a refusal ("how old the girl was"), with the article's acronyms."""
    fact = missing_fact(without_context(resolved.asked))  # a follow-up's refusal names what it asks, not the earlier text
    if fact:
        fact = re.sub(r"[A-Za-z]+", lambda m: index.acronyms.get(m.group(0), m.group(0)), fact)  # "copa" -> "COPA"
    return fact


def refusal_text(resolved: Resolved, index: StoredIndex, fact: str | None) -> str:
    """"The article does not say how old the girl was.", or what a follow-up with nothing to lean on gets."""
    return resolved.dangling or (f"{_says(index)} {fact}." if fact else f"{_says(index)}.")


def eligible_readings(asked: str, readings: Sequence[SentenceReading], index: StoredIndex,
                      kind: str | None) -> list[SentenceReading]:
    """The candidates that can answer: all of them, or those holding the kind of fact asked for (for a country, those
    whose passage names one: the country is often named a sentence before the answer)."""
    if kind is None:
        return list(readings)
    if kind in PASSAGE_TYPES:
        return [r for r in readings if has_type(index.chunks[r.candidate.row].text, kind, asked)]
    return [r for r in readings if has_type(r.text, kind, asked)]


def feature_rows(asked: str, eligible: Sequence[SentenceReading], readings: Sequence[SentenceReading],
                 retrieved: Retrieved, index: StoredIndex, typed: bool) -> np.ndarray:
    """The confidence model's features of each eligible candidate, one row each (qa/confidence.py)."""
    q = question_terms(asked, index.lexical.vocabulary, len(index.chunks), typed)
    from .nlp import parse_many
    from .short_answer import asked_labels

    if asked_labels(asked) is not None:  # the entity features will parse the candidates: one batch
        parse_many([r.text for r in eligible])
    articles = [index.chunks[r.candidate.row].article_id for r in eligible]
    held = _held_by_articles(index, q.stems, articles)
    return np.vstack([features(q, r, readings, retrieved.hits[r.candidate.rank], index.chunks[r.candidate.row].text,
                               held[a]) for r, a in zip(eligible, articles)])


def decide(resolved: Resolved, retrieved: Retrieved, readings: Sequence[SentenceReading], index: StoredIndex, *,
           abstain_below: float, model: ConfidenceModel | None = None) -> Decision:
    """The decision for one question (see the module doc)."""
    from .short_answer import short_answer

    asked = resolved.asked
    fact = refusal_clause(resolved, index)
    not_said = refusal_text(resolved, index, fact)
    closest = readings[0] if readings else None
    rule = refusal_by_rule(resolved, retrieved, index, abstain_below, fact, not_said)
    if rule is not None:
        return Decision("abstained", closest, None, rule.reason, rule.details)

    kind = expected_type(asked)
    eligible = eligible_readings(asked, readings, index, kind)
    scored = model is not None and all(r.logit is not None for r in eligible)
    if not scored:
        eligible = [r for r in eligible if r.candidate.rank == 0]  # retrieval alone: the top passage's best sentence
    if not eligible:
        where = "closest passages give" if scored else "closest passage gives"
        return Decision("abstained", closest, None, not_said, f"the {where} no {_TYPE_WORDS[kind]}")

    if not scored:
        chosen = max(eligible, key=lambda r: r.candidate.score)
        confidence, status, details = None, "answered", None
    else:
        assert model is not None
        logits = model.score(feature_rows(asked, eligible, readings, retrieved, index, kind is not None))
        best = int(logits.argmax())
        chosen = eligible[best]
        confidence = model.confidence(float(logits[best]))
        status = model.status(confidence)
        needed = model.answered if status == "uncertain" else model.uncertain
        details = f"confidence {confidence:.2f}" + ("" if status == "answered" else f", under the {needed:.2f} needed to "
                                                    f"{'answer' if status == 'uncertain' else 'quote the closest sentence'}")
    if status == "abstained":
        return Decision("abstained", chosen, confidence, not_said, details)
    if status == "uncertain":
        return Decision("uncertain", chosen, confidence, _may_not(index, fact), details)
    unsettled = _unsettled_event(asked, retrieved, index) if status == "answered" else None
    if unsettled:  # "Was the officer fired?" over passages that never speak of firing: the closest text, not an answer
        return Decision("uncertain", chosen, confidence, _may_not(index, fact), unsettled)
    span = short_answer(asked, chosen, index, known=resolved.known_answer)
    return Decision("answered", chosen, confidence, None, details, span)


def _may_not(index: StoredIndex, fact: str | None) -> str:
    return f"{_the(index)} may not say {fact}." if fact else f"{_the(index)} may not answer this."


YES_NO_EVENTS = True  # the yes/no event check (qa/yes_no.py); a switch for measuring it (docs/confidence.md)


def _unsettled_event(asked: str, retrieved: Retrieved, index: StoredIndex) -> str | None:
    """For a yes/no question whose passages read never speak of its event (nor of a synonym or antonym): why the
    reply is only uncertain; else None."""
    if not YES_NO_EVENTS:
        return None
    from .candidates import PASSAGES
    from .yes_no import predicates, settles

    texts = [index.chunks[h.row].text for h in retrieved.hits[:PASSAGES]]
    if settles(asked, texts) is not False:
        return None
    words = " or ".join(repr(w) for w in predicates(asked))
    return f"the passages read never speak of {words}, nor of a word WordNet gives as its synonym or antonym"


def _held_by_articles(index: StoredIndex, stems: Sequence[str], article_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """For each article, those of `stems` (BM25 stems) that one of its passages holds, read from its segment's
    postings: a binary search per stem and article (an article's rows are consecutive), so the cost does not grow
    with the archive, and nothing is kept per article."""
    from .lexical import STEM, key

    keys = {s: key(STEM, s) for s in dict.fromkeys(stems)}
    held: dict[str, frozenset[str]] = {}
    for article_id in dict.fromkeys(article_ids):
        found = index.articles.where(article_id)
        if found is None:
            held[article_id] = frozenset()
            continue
        segment = index.segments[found[0]]
        first, count = segment.ranges[article_id]
        held[article_id] = frozenset(s for s, k in keys.items() if segment.postings.any_in(k, first, first + count))
    return held
