"""What a reference in a follow-up stands for, read from the article itself.

Two kinds, both used by qa/conversation.py:
- **Which pronoun fits a person**: "she" for Kersten in "... Kersten said. She also said ...". A follow-up's
  he/she/her is replaced by a person's name from the previous answer. Without this check "whats his name" after an
  answer quoting Andrea Kersten became "whats Kersten's name", and the refusal told staff "The article does not say
  what Kersten's name is". The first he/him/his or she/her/hers after a mention of the name, in the rest of that
  sentence or the next, votes; a name is given a pronoun only when the votes agree (two to one at least).
- **What "the district" or "that bureau" is**: an answer that says "... within the district." leaves it unnamed;
  news names it before ("the 10th District of Chicago") and then shortens it. The last mention named in full
  before the answer, in the same article, is the referent: "Which district?" is then searched with "10th District
  of Chicago". For "that bureau" the answer itself counts too ("... the other for the Bureau of Internal Affairs").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .lexical import STOPWORDS

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


def _named_mention(noun: str) -> re.Pattern[str]:
    """A mention of `noun` (any case) named in full: by capitalised words or an ordinal before it, with up to two
    lower-case words between ("10th District", "Ogden District police station", "Chicago police oversight agency"),
    or by capitalised words after "of" ("Bureau of Internal Affairs", "Civilian Office of Police Accountability");
    not "the district"."""
    head = r"(?:\d+(?:st|nd|rd|th)|[A-Z][\w’'.-]*)"
    word = rf"(?i:{re.escape(noun)})s?"
    of_names = r"\s+of\s+(?:the\s+)?[A-Z][\w’'.-]*(?:\s+(?:of\s+|and\s+)?[A-Z][\w’'.-]*)*"
    before = rf"{head}(?:\s+{head})*(?:\s+[a-z][\w-]*){{0,2}}\s+{word}(?:{of_names})?"
    after = rf"{word}{of_names}"
    return re.compile(rf"(?<![\w’'-])(?P<name>{before}|{after})\b")


def referent_lookup(chunks: Sequence, row_of: Callable[[str], int | None]) -> Callable[[str, str, bool], str | None]:
    """`lookup(noun, answer, through_answer)`: the last mention of `noun` named in full ("10th District") in the
    answer's article, before "the <noun>" of the answer sentence ("Which district?" after "... within the
    district."), or up to the end of the answer sentence when `through_answer` ("that bureau" after an answer naming
    the Bureau of Internal Affairs); None when there is none. `row_of(answer)` finds the answer's passage
    (`StoredIndex.passage_holding`)."""

    def lookup(noun: str, answer: str, through_answer: bool = False) -> str | None:
        wanted = " ".join(answer.split())
        row = row_of(answer)
        if row is None:
            return None
        current = " ".join(chunks[row].text.split())
        the = None if through_answer else re.search(rf"\bthe\s+{re.escape(noun)}\b", wanted)
        end = len(wanted) if through_answer else the.start() if the else 0
        before = current[: current.find(wanted) + end]
        first = row  # an article's passages are consecutive rows: walk back to its first, not over the archive
        while first > 0 and chunks[first - 1].article_id == chunks[row].article_id:
            first -= 1
        texts = [chunks[r].text for r in range(first, row)] + [before]
        found = None
        for m in _named_mention(noun).finditer("\n\n".join(texts)):
            words = m.group("name").split()
            while words and words[0].lower() in STOPWORDS:
                words = words[1:]  # "The 10th District" -> "10th District"; "In Chicago District" keeps its name
            if len(words) > 1:
                found = " ".join(words)
        return found

    return lookup
