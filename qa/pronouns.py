"""Which pronoun an article uses for a person: "she" for Kersten in "... Kersten said. She also said ...".

A follow-up's he/she/her is replaced by a person's name from the previous answer (qa/conversation.py). Without
this check "whats his name" after an answer quoting Andrea Kersten became "whats Kersten's name", and the refusal
told staff "The article does not say what Kersten's name is". The article itself usually says which pronoun fits:
the first he/him/his or she/her/hers after a mention of the name, in the rest of that sentence or the next, votes.
A name is given a pronoun only when the votes agree (two to one at least); otherwise nothing is excluded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MALE = {"he", "him", "his", "himself"}
FEMALE = {"she", "her", "hers", "herself"}
_PRONOUN = re.compile(r"\b(he|him|his|himself|she|her|hers|herself)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?][\"”’']?(?:\s+|$)")


def gender_of_pronoun(word: str) -> str | None:
    """"m" for he/him/his, "f" for she/her/hers, None for any other word."""
    low = word.lower()
    return "m" if low in MALE else "f" if low in FEMALE else None


def _after(text: str, end: int) -> str:
    """The rest of the sentence that ends after `end`, and the sentence after it."""
    rest = text[end:]
    first = _SENTENCE_END.search(rest)
    if first is None:
        return rest
    second = _SENTENCE_END.search(rest, first.end())
    return rest[: second.end() if second else len(rest)]


def _votes(text: str, name: str, upto: int | None = None) -> dict[str, int]:
    """For each mention of `name`'s surname in `text` (before `upto` when given): the first he- or she-pronoun after
    it, in the same sentence or the next."""
    surname = name.split()[-1] if name.split() else name
    votes = {"m": 0, "f": 0}
    for m in re.finditer(rf"(?<![\w]){re.escape(surname)}(?![\w])", text[:upto]):
        p = _PRONOUN.search(_after(text, m.end()))
        if p:
            votes[gender_of_pronoun(p.group(1))] += 1
    return votes


def _verdict(votes: dict[str, int]) -> str | None:
    m, f = votes["m"], votes["f"]
    if m > 0 and m >= 2 * f:
        return "m"
    if f > 0 and f >= 2 * m:
        return "f"
    return None


def article_gender(texts: Sequence[str], name: str) -> str | None:
    """"m" or "f" when the texts (passages in reading order) refer back to `name` (a surname or full name, as
    written) with one kind of pronoun; None when they do not say or disagree."""
    return _verdict(_votes("\n\n".join(texts), name))


def gender_lookup(chunks: Sequence, containing: Callable[[str], Sequence[int]]) -> Callable[[str], str | None]:
    """`article_gender` over an index: only the passages that hold the surname (found by `containing`, the lexical
    index), each read together with the passage after it in the same article ("... Kersten said." and "She also
    said ..." are two passages)."""

    def lookup(name: str) -> str | None:
        surname = name.split()[-1] if name.split() else name
        total = {"m": 0, "f": 0}
        for r in sorted(set(int(x) for x in containing(surname))):
            texts = [chunks[r].text]
            if r + 1 < len(chunks) and chunks[r + 1].article_id == chunks[r].article_id:
                texts.append(chunks[r + 1].text)
            # only the mentions in passage r vote here (the next passage's own mentions vote in their turn)
            for kind, n in _votes("\n\n".join(texts), name, upto=len(chunks[r].text)).items():
                total[kind] += n
        return _verdict(total)

    return lookup
