"""Questions about who someone is: answered where the article introduces them.

A news story introduces a person or an organisation by the full name and the role: "The chief administrator of
COPA, Andrea Kersten, said ...", "the Civilian Office of Police Accountability (COPA)". Later mentions use the
bare surname or acronym ("Kersten said the agency ..."), and those later passages are often closer to "Who is
Kersten?" for the retrievers, which match the name and little else. A question that asks who someone is, or what
their role is, favours the passages that name them in a long form: a capitalised word before the surname
("Andrea Kersten", "Economist Thomas Piketty"), or an acronym defined in parentheses.

Recognised shapes (the subject must be written as a name somewhere in the articles):
- "Who is / was Andrea Kersten?", "What is COPA?"
- "What is / was Kersten's role / title / job / position ...?", "What was the occupation of Joseph Priestley?"
- "What role / title / job / position does Kersten have / hold / play?"
- "What does / did Kersten do (for a living)?"

Measured (docs/conversations.md): on the seed article "Who is Kersten?", "What does Kersten do?" and "What is
Kersten's job?" went from the later quote to her introduction, and one more tuning follow-up ("whats her title
exactly") is answered; on SQuAD v2.0 half A, 471 questions have one of these shapes and none changed its
answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .lexical import STOPWORDS  # capitalised words before a name that are not part of it: "The", "But Kersten said"

_ROLE = r"(?:role|title|job|position|post|occupation|profession|rank|office)"
_TAIL = r"(?:\s+(?:exactly|again|now|then|here|there|in\s+(?:this|the)\s+(?:story|article|case)))?\s*[?.!]*\s*$"
_SUBJECT = r"(?P<subject>[\w][\w’'.\- ]{0,60}?)"
_SHAPES = [
    re.compile(rf"^\s*(?:so\s+|and\s+)?what(?:'s|’s|s)?\s+(?:is\s+|was\s+)?{_SUBJECT}(?:'s|’s|s')\s+{_ROLE}{_TAIL}", re.I),
    re.compile(rf"^\s*(?:so\s+|and\s+)?what(?:'s|’s|s|\s+is|\s+was)\s+the\s+{_ROLE}\s+of\s+{_SUBJECT}{_TAIL}", re.I),
    re.compile(rf"^\s*(?:so\s+|and\s+)?what\s+{_ROLE}\s+(?:does|did|do)\s+{_SUBJECT}\s+(?:have|hold|play|fill){_TAIL}", re.I),
    re.compile(rf"^\s*(?:so\s+|and\s+)?what\s+(?:does|did)\s+{_SUBJECT}\s+do(?:\s+for\s+(?:a\s+living|work))?{_TAIL}", re.I),
    re.compile(rf"^\s*(?:so\s+|and\s+)?(?:who|what)(?:'s|’s|s|\s+(?:is|was|are|were))\s+{_SUBJECT}{_TAIL}", re.I),
]
_LEADING = re.compile(r"^(?:the|a|an|mr\.?|mrs\.?|ms\.?|dr\.?)\s+", re.I)
# a subject starting with one of these is not a name ("her role", "did Kersten do after ...", "happening")
_NOT_A_NAME_START = {"he", "she", "it", "they", "him", "her", "his", "its", "their", "them", "this", "that", "these",
                     "those", "i", "you", "we", "my", "your", "our", "do", "does", "did", "is", "was", "are", "were",
                     "has", "have", "had", "will", "would", "can", "could", "should", "there", "going", "happening",
                     "happened"}

# favour for the passage that introduces the subject: about the margin by which a later mention ("Kersten said ...")
# outscores the introduction for "Who is Kersten?" on the seed article (0.06-0.12)
INTRODUCTION_BOOST = 0.15


def subject_of(question: str) -> str | None:
    """The name a question asks about when it asks who or what someone is, or their role; else None. The name is
    returned as written in the question ("Andrea Kersten", "andrea kersten"), without a leading article."""
    for shape in _SHAPES:
        m = shape.match(question)
        if m:
            subject = _LEADING.sub("", m.group("subject").strip(" ,"))
            if not subject or subject.split()[0].lower() in _NOT_A_NAME_START or len(subject.split()) > 6:
                continue
            if shape is _SHAPES[-1] and re.search(r"['’]s?\b", subject):
                continue  # "Who was Robert's son?" asks for someone else: not who Robert is
            return subject
    return None


_CONNECTORS = {"of", "the", "for", "and", "de", "von", "van", "del", "la", "le", "du", "da", "der"}
_LONG_BEFORE = re.compile(r"(?:^|[^\w’'])([A-Z][\w’'.-]*)\s+$")  # a capitalised word just before: "Andrea Kersten"
_IN_PARENTHESES = re.compile(r"[A-Z][\w’'.-]*\s*\($")  # "Police Accountability (COPA)"


def short_form(subject: str) -> str:
    """How a story refers back to the subject: the surname of a person's name ("Kersten" for "Andrea Kersten"),
    else the subject itself ("COPA")."""
    parts = subject.split()
    if 2 <= len(parts) <= 4 and not any(p.lower() in _CONNECTORS for p in parts) and parts[-1][:1].isalpha():
        return parts[-1]
    return subject


def _mentions(text: str, name: str) -> list[bool]:
    """The mentions of `name` (whole words, written capitalised) in `text`, in order: True for a long form (a
    capitalised word just before it, "Andrea Kersten", or an acronym defined in parentheses, "... Accountability
    (COPA)"), False for the bare form ("Kersten said")."""
    pattern = re.compile(r"(?<![\w])" + r"\s+".join(re.escape(p) for p in name.split()) + r"(?![\w])", re.I)
    out = []
    for m in pattern.finditer(text):
        if not all(w[:1].isupper() or w[:1].isdigit() for w in m.group(0).split() if w.lower() not in _CONNECTORS):
            continue  # the common word, not the name
        before = text[max(0, m.start() - 80) : m.start()]
        word = _LONG_BEFORE.search(before)
        out.append(bool(word and word.group(1).lower() not in STOPWORDS) or bool(_IN_PARENTHESES.search(before)))
    return out


def introduction_rows(chunks: Sequence, subject: str, rows: Sequence[int] | None = None) -> list[int]:
    """The rows of the passages that name `subject` in a long form ("Andrea Kersten", "Civilian Office of Police
    Accountability (COPA)", "Economist Thomas Piketty"), where a story says who someone is, and not only in the
    bare form it refers back with ("Kersten said ..."); among `rows` when given."""
    allowed = range(len(chunks)) if rows is None else sorted(set(int(r) for r in rows))
    if not any(_mentions(chunks[r].text, subject) for r in allowed):
        return []  # not a name the articles write ("invented by Savery", "the war plan")
    name = short_form(subject)
    return [r for r in allowed if any(_mentions(chunks[r].text, name))]


def introduction_boost(chunks: Sequence, question: str, rows: Sequence[int] | None = None, *,
                       containing: Callable[[str], Sequence[int]] | None = None) -> dict[int, float]:
    """Score boosts for the passages that introduce whom `question` asks about (empty for other questions).
    `containing(word)`, when given, lists the rows whose text holds the word (from the lexical index): only those
    are read, which keeps this to well under a millisecond on a corpus of a thousand passages."""
    subject = subject_of(question)
    if subject is None:
        return {}
    if containing is not None:
        held = set(int(r) for r in containing(short_form(subject)))
        rows = sorted(held if rows is None else held & set(int(r) for r in rows))
    return {r: INTRODUCTION_BOOST for r in introduction_rows(chunks, subject, rows)}


_ROLE_WORDS = r"[A-Za-z][\w'’.-]*"
# "The chief administrator of COPA, Andrea Kersten, said": the role, a comma, the name
_ROLE_BEFORE = re.compile(rf"(?:^|(?<=[,;:—(]\s)|(?<=[,;:—(]))\s*(?P<role>(?:[Tt]he|[Aa]n?|[Ii]ts|[Hh]is|[Hh]er|[Tt]heir)\s+"
                          rf"{_ROLE_WORDS}(?:\s+{_ROLE_WORDS}){{0,7}}?),\s+(?:[A-Z][\w'’.-]*\s+){{0,3}}$")
# "Andrea Kersten, the chief administrator of COPA, said": the name, a comma, the role, a comma
_ROLE_AFTER = re.compile(rf"^,\s+(?P<role>(?:the|an?)\s+{_ROLE_WORDS}(?:\s+{_ROLE_WORDS}){{0,7}}?)\s*[,;—)]")


def role_span(sentence: str, subject: str) -> tuple[int, int] | None:
    """Where `sentence` says who `subject` is, in the appositive of news style: "The chief administrator of COPA,
    Andrea Kersten, said ..." or "Andrea Kersten, the chief administrator of COPA, said ..." ([start, end) in the
    sentence); None when it does not say it that way, or does not write `subject` as a name."""
    if not _mentions(sentence, subject):
        return None  # "the Mongol elites wish Buyantu" is not a name, though "Buyantu" is
    name = short_form(subject)
    for m in re.finditer(rf"(?<![\w]){re.escape(name)}(?![\w])", sentence, re.IGNORECASE):
        before = _ROLE_BEFORE.search(sentence[: m.start()])
        if before:
            return before.start("role"), before.end("role")
        after = _ROLE_AFTER.match(sentence[m.end():])
        if after:
            return m.end() + after.start("role"), m.end() + after.end("role")
    return None
