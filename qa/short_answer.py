"""The short answer in bold inside a quoted sentence: shown only when it is the fact the question asks for.

- A follow-up's referent found in the article ("Which district?" -> "10th District of Chicago") is the answer where
  the sentence holds it; "Who is Kersten?" gets the role the story gives her in a news appositive.
- Otherwise the question must ask for a kind of fact spaCy's entities can type (a number, a date or time, a person,
  a place, an organisation; `asked_labels`), and the bold span is an entity of that kind in the sentence that
  belongs to what is asked: of several, the one whose clause shares most words with the question, a number said of
  the noun a "how many" question counts first ("How many migrants were living at police stations?": 650, said of
  police stations, not the 5,000 of the shelters). A tie
  that the reader's own span does not settle, or an entity the question itself names, gives no bold span: the
  sentence is quoted plain.
"""

from __future__ import annotations

import re

from .introductions import role_span, subject_of
from .reading import SentenceReading
from .store import StoredIndex
from .types import Span

NUMBER = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})
TIME = frozenset({"DATE", "TIME"})
PERSON = frozenset({"PERSON"})
ORGANISATION = frozenset({"ORG"})
PLACE = frozenset({"GPE", "LOC", "FAC"})

# what a "which/what <noun>" question asks for, by the noun's lemma
_NOUN_KINDS: dict[str, frozenset[str]] = {}
for _kind, _nouns in (
    (NUMBER, "number count total amount percentage percent share figure tally sum score margin toll population size"),
    (TIME, "year date day month time week decade century season hour"),
    (frozenset({"GPE"}), "country nation city state town village province county capital"),  # a named polity
    (PLACE, "region place location area continent site"),
    (ORGANISATION, "agency organization organisation company group party department committee court office bureau union "
                   "network newspaper firm administration government body council ministry institution team university "
                   "school station channel publication outlet"),
    (PERSON, "person man woman official senator lawmaker congressman congresswoman representative leader president "
             "spokesman spokeswoman spokesperson minister governor mayor judge lawyer attorney officer chief director "
             "chairman chairwoman secretary member reporter author victim suspect candidate commander"),
):
    for _noun in _nouns.split():
        _NOUN_KINDS[_noun] = _kind
_WH = frozenset("who whom whose what which when where why how".split())
_SPEECH = frozenset("say tell announce state add write comment respond reply claim argue explain warn".split())


def asked_labels(question: str) -> frozenset[str] | None:
    """The entity labels a short answer to `question` may have; None when the question asks for no typed fact
    (why, how, yes/no, "what did X say", "what happened")."""
    from .nlp import parse

    q = " ".join(question.lower().split())
    if re.match(r"^(how many|how much|what percentage|what share)\b", q):
        return NUMBER
    if re.match(r"^(how old|what age|at what age)\b", q):
        return frozenset({"DATE", "CARDINAL"})
    if re.match(r"^how long\b", q):
        return TIME | frozenset({"QUANTITY", "CARDINAL"})
    if re.match(r"^(since when|until when|when)\b", q):
        return TIME
    if re.match(r"^where\b", q):
        return PLACE | ORGANISATION
    if re.search(r"\bnames?\b", q) and re.match(r"^(what|which)\b", q):
        return PERSON | ORGANISATION
    doc = parse(question)
    if re.match(r"^(who|whom|whose)\b", q):
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        if root is not None and root.lemma_ == "be" and any(t.dep_ in ("nsubj", "attr") and t.pos_ == "PROPN"
                                                           for t in root.children):
            return None  # "Who is Kersten?": a role, not an entity (the appositive rule above handles it)
        return PERSON | ORGANISATION | frozenset({"NORP"})
    if re.match(r"^(what|which)\b", q):
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        if root is not None and root.lemma_ in _SPEECH:
            return None  # "What did the mayor say?": the sentence is the answer
        for t in doc[1:]:  # the noun the question word asks about: "which agency", "what was the vote count"
            if t.pos_ in ("NOUN", "PROPN"):
                if t.dep_ == "compound":
                    continue
                return _NOUN_KINDS.get(t.lemma_.lower())
    return None


_CLAUSE_ARCS = frozenset({"advcl", "ccomp", "relcl", "parataxis", "csubj", "acl"})


def _clause(token) -> set[int]:
    """The token indices of the clause holding `token`: from its nearest verb up the tree, without the clauses
    embedded in it (another number's "while 5,000 were living at shelters" is not 650's clause)."""
    v = token
    while v.pos_ not in ("VERB", "AUX") and v.head.i != v.i:
        v = v.head
    out, todo = set(), [v]
    while todo:
        t = todo.pop()
        out.add(t.i)
        for c in t.children:
            if c.dep_ in _CLAUSE_ARCS or c.dep_ == "conj" and c.pos_ in ("VERB", "AUX"):
                continue
            todo.append(c)
    return out


def _content_lemmas(doc) -> set[str]:
    return {t.lemma_.lower() for t in doc if t.pos_ in ("NOUN", "PROPN", "VERB", "ADJ", "NUM")
            and not t.is_stop and t.lower_ not in _WH}


def _entity_spans(doc, labels: frozenset[str]) -> list[tuple[int, int, object]]:
    """(start char, end char, entity) of the entities of the wanted labels; a number extended over "-2" in "7-2"."""
    out = []
    for e in doc.ents:
        if e.label_ not in labels:
            continue
        end = e.end
        while end + 1 < len(doc) and doc[end].text in ("-", "–", "to") and doc[end + 1].like_num and e.label_ in NUMBER:
            end += 2
        out.append((e.start_char, doc[end - 1].idx + len(doc[end - 1].text), e))
    return out


def holds_asked_kind(question: str, sentence: str) -> bool | None:
    """Whether the sentence holds an entity of the kind the question asks for that the question does not name
    itself (None when the question asks for no typed fact): a confidence feature ("How many banks were hit?"
    against a sentence with no number in it)."""
    from .nlp import parse

    labels = asked_labels(question)
    if labels is None:
        return None
    qdoc = parse(question)
    asked_words = {t.lower_ for t in qdoc} | {t.lemma_.lower() for t in qdoc}
    for _start, _end, ent in _entity_spans(parse(sentence), labels):
        words = [t for t in ent if not t.is_stop and t.is_alpha]
        if not words or not all(t.lower_ in asked_words or t.lemma_.lower() in asked_words for t in words):
            return True
    return False


def typed_span(question: str, sentence: str, reader_span: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """[start, end) in `sentence` of the fact asked for (see the module doc), or None."""
    from .nlp import parse

    labels = asked_labels(question)
    if labels is None:
        return None
    qdoc, sdoc = parse(question), parse(sentence)
    asked_words = {t.lower_ for t in qdoc} | {t.lemma_.lower() for t in qdoc}
    wanted = _content_lemmas(qdoc)
    # the noun a "how many" question counts: a number said of it ("5,000 immigrants") is said of what is asked
    counted = {t.lemma_.lower() for t in qdoc if any(c.lower_ in ("many", "much") for c in t.children)}
    found = []
    for start, end, ent in _entity_spans(sdoc, labels):
        words = [t for t in ent if not t.is_stop and t.is_alpha]
        if words and all(t.lower_ in asked_words or t.lemma_.lower() in asked_words for t in words):
            continue  # the question names it itself: "the Senate" is not the answer to "When did the Senate vote?"
        clause = _clause(ent.root)
        shared = len({sdoc[i].lemma_.lower() for i in clause if not (ent.start <= i < ent.end)} & wanted)
        if ent.root.dep_ == "nummod" and ent.root.head.lemma_.lower() in counted:
            shared += 2
        from_reader = reader_span is not None and start < reader_span[1] and reader_span[0] < end
        found.append((shared, from_reader, start, end))
    if not found:
        return None
    found.sort(key=lambda f: (-f[0], -f[1]))
    best = found[0]
    if len(found) > 1 and (best[0], best[1]) == (found[1][0], found[1][1]):
        return None  # two equally good facts of the kind asked: no bold guess
    if best[0] == 0 and not best[1] and len(found) > 1:
        return None
    return best[2], best[3]


def short_answer(asked: str, reading: SentenceReading, index: StoredIndex, *, known: str | None = None) -> Span | None:
    """The short answer inside the quoted sentence (file offsets), or None when none is sure to be the fact asked."""
    s, sentence = reading.sentence, reading.text
    if known and known in sentence:
        at = sentence.index(known)
        return Span(s.start + at, s.start + at + len(known))
    subject = subject_of(asked)
    found = role_span(sentence, subject) if subject else None
    if found is None:
        hint = None if reading.span is None else (reading.span.start - s.start, reading.span.end - s.start)
        found = typed_span(asked, sentence, hint)
    return Span(s.start + found[0], s.start + found[1]) if found else None
