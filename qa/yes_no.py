"""Yes/no questions about events: does the article state the event asked about, or its negation?

"Was the officer fired?" asks whether something happened. An article that never speaks of firing anyone cannot
settle it, however close its sentences are to the officer. The check: the question's predicate (its main verb, or
for "is X in jail" / "did Y say Z happened" the word that carries the event: the complement of a copula or of a
verb of saying and thinking), or a word WordNet gives as its synonym or antonym ("back" ~ "endorse", "agree" ~
"disagree"), must be among the lemmas of the passages read. When it is not, the reply is at most `uncertain`.
Measured in docs/confidence.md ("Yes/no questions about events").
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .answerability import is_yes_no

ASSET = Path(__file__).with_name("assets") / "wordnet-related.tsv.gz"
# verbs that carry no event of their own: the event is in their complement ("did Wray say anyone would be FIRED")
LIGHT_VERBS = frozenset("be have do say tell think believe know expect want plan try hope seem appear intend mean "
                        "claim report suggest confirm deny accord".split())  # "according to their lawyer"


_CONTENT = frozenset({"VERB", "NOUN", "ADJ", "PROPN", "ADV"})


@lru_cache(maxsize=1)
def _related() -> dict[str, frozenset[str]]:
    """lemma -> its WordNet synonyms and antonyms (first four senses of each part of speech), from the asset
    (scripts/wordnet_asset.py writes it from WordNet 3.0)."""
    out: dict[str, set[str]] = {}
    with gzip.open(ASSET, "rt", encoding="utf-8") as fh:
        for line in fh:
            lemma, _, words = line.rstrip("\n").partition("\t")
            out.setdefault(lemma, set()).update(words.split())
    return {k: frozenset(v) for k, v in out.items()}


def related(lemma: str) -> frozenset[str]:
    """The lemma and the words WordNet relates to it (multi-word entries joined by "_")."""
    return _related().get(lemma, frozenset()) | {lemma}


def predicates(question: str) -> list[str]:
    """The lemmas that carry the event a yes/no question asks about: its verbs but the light ones ("say", "think",
    "be"); with none, its common nouns and adjectives outside the subject ("Is Manafort in JAIL?"). Empty when
    nothing is left to look for."""
    from .nlp import parse

    doc = parse(question)
    if any(t.dep_ == "prt" for t in doc):  # "come forward", "turn up": the event is the phrase, which WordNet's
        return []  # relatives of its verb do not give
    verbs = [t.lemma_.lower() for t in doc if t.pos_ == "VERB" and t.dep_ != "amod" and not t.is_stop
             and t.lemma_.lower() not in LIGHT_VERBS]  # "the ACCUSED officer" names the officer, it asks no event
    if verbs:
        return list(dict.fromkeys(verbs))
    # the subject with its modifiers ("the ALLEGED victim") is who is asked about, not the event
    subject = {w.i for t in doc if t.dep_ in ("nsubj", "nsubjpass") and t.head.dep_ == "ROOT"
               for w in (t, *(c for c in t.children if c.dep_ in ("amod", "compound")))}
    return list(dict.fromkeys(t.lemma_.lower() for t in doc if t.pos_ in ("NOUN", "ADJ") and not t.is_stop
                              and t.i not in subject))


def settles(question: str, texts: Iterable[str]) -> bool | None:
    """For a yes/no question: whether the texts speak of its event (or its negation); None for other questions
    and for questions with no event word to look for."""
    if not is_yes_no(question):
        return None
    wanted = predicates(question)
    if not wanted:
        return None
    from .nlp import parse

    lemmas: set[str] = set()
    for text in texts:
        # words that carry meaning: not "can" (a modal) for "can" (to fire), nor any other stop word
        lemmas.update(t.lemma_.lower() for t in parse(text) if not t.is_stop and t.pos_ in _CONTENT)
    return any(related(w) & lemmas for w in wanted)
