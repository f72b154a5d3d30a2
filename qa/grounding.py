"""Is the question about something the article actually states? Two general checks.

- Names: a capitalised word of the question (not its first word) that no passage contains, even after
  typo correction, is something the articles never mention ("New York", "Lightfoot").
- Answer type: some questions ask for a kind of fact ("how many" -> a number, "when" -> a time,
  "how old" -> an age, "how much ... cost" -> an amount of money, "which country" -> a country, region or
  nationality, from qa/assets/countries.txt). The answer sentence must hold one;
  when no top sentence does, the article does not give that fact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

from .lexical import STOPWORDS, words

AnswerType = Literal["number", "time", "age", "money", "name", "duration", "country"]
# kinds the passage must hold, not the answer sentence: the country is often named a sentence before the answer
# ("The Rhine is the longest river in Germany. It is here that the Rhine encounters ..."); on SQuAD, picking only
# sentences naming one made the reader refuse 3 answerable questions it had answered right
PASSAGE_TYPES: frozenset[AnswerType] = frozenset({"country"})

_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands "
    "million millions billion dozen dozens several few many no none half single both couple"
)
_NUMBER = re.compile(r"\d|\b(" + "|".join(_NUMBER_WORDS.split()) + r")\b", re.IGNORECASE)
_MONTHS = "january february march april may june july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec"
_CLOCK = r"\b\d{1,2}(?::\d{2})?\s*(?:a\.m\.|p\.m\.|am\b|pm\b|o'clock\b)"
_TIME = re.compile(
    _CLOCK + r"|\b(?:\d{4}|'?\d0s|\d{4}s|\d{1,2}(?:st|nd|rd|th)|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    r"|today|tonight|yesterday|tomorrow|morning|afternoon|evening|night|week|weekend|month|year|years|decade|century"
    r"|spring|summer|fall|autumn|winter|earlier|later|recently|since|until|ago|dawn|noon|midnight|"
    + "|".join(_MONTHS.split()) + r")\b",
    re.IGNORECASE,
)
_AGE = re.compile(
    r"\b(?:\d{1,3}|" + "|".join(_NUMBER_WORDS.split()[:29]) + r")[- ](?:year|years|month|months|week|weeks|day|days)[- ]old\b"
    r"|\bage(?:d| of)? \d{1,3}\b|\bages? (?:of )?\d|\b\d0s\b|\bteen|\bminor\b|\binfant|\bborn\b"
    r"|(?-i:\b[A-Z][\w'’-]+, \d{1,3},)",  # "Kersten, 45, said": the news style for an age
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"[$€£¥]\s?\d|\b\d[\d,.]*\s*(dollars|cents|euros|pounds|million|billion)\b|\bbudget\b|\bfree\b|\bno (charge|cost|fee)\b",
    re.IGNORECASE,
)

_UNITS_OF_TIME = re.compile(r"\b(?:seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?|decades?|centur(?:y|ies)"
                            r"|lifetime|overnight)\b", re.IGNORECASE)  # "a division's outcome is known in seconds"
_CALENDAR = frozenset("monday tuesday wednesday thursday friday saturday sunday".split() + _MONTHS.split())
_ORDINAL = re.compile(r"\b\d+(?:st|nd|rd|th)\b", re.IGNORECASE)
# an ordinal that starts a name ("the 19th District", "5th Avenue", "14th Amendment") is no date; a century is
_ORDINAL_NAME = re.compile(r"\b\d+(?:st|nd|rd|th)\s+(?=[A-Z])(?!Centur)")
_TYPE_PATTERNS: dict[AnswerType, re.Pattern[str]] = {"number": _NUMBER, "time": _TIME, "age": _AGE, "money": _MONEY}


def expected_type(question: str) -> AnswerType | None:
    q = " ".join(question.lower().split())
    if re.search(r"\b(what|which) (is|was|are|were) (the|their|his|her|its) names?\b|\bthe names? of\b|['’]s names?\b"
                 r"|\b(first|last|full|sur) ?names?\b", q):
        return "name"
    if re.search(r"\b(what|which) (country|countries|nation|nations|nationality|nationalities)\b", q):
        return "country"
    if re.search(r"\bhow old\b|\b(what|which) age\b|\bage of\b|'s age\b|’s age\b", q):
        return "age"
    if re.search(r"\bhow much\b.*\b(cost|costs|spend|spent|pay|paid|money|worth|budget|fund|funding)\b|\bwhat did .* cost\b", q):
        return "money"
    # "how much effort / attention" asks for no figure; "how much ... cost" is handled above
    if re.search(r"\bhow many\b|\bwhat number of\b|\bhow much (more|less|higher|lower|bigger|larger|smaller|of)\b", q):
        return "number"
    # "when did / was / will ..." asks for a time; "when do treaties apply?" or "when violence is used, ..."
    # asks for a condition, so only past, future and "is/are ... (going to)" forms count, and "when does X
    # expect / plan / intend / hope / aim to ..." (a plan's date)
    if re.search(r"^(since |until )?when (did|was|were|will|is|are|has|had|have)\b"
                 r"|^when (does|do) .*\b(expect|expects|plan|plans|intend|intends|hope|hopes|aim|aims)\b"
                 r"|\b(what|which) (day|date|time|year|month|week|decade|century)\b|\bhow long ago\b", q):
        return "time"
    # "how long were the migrants there?", "how long is the river?": a length of time or of anything, so a number or
    # a time ("two weeks", "since July", "for years")
    if re.search(r"\bhow long\b", q):
        return "duration"
    return None


def has_type(text: str, kind: AnswerType, question: str = "") -> bool:
    """Whether `text` holds a fact of the kind asked; a name must be one the question does not already give."""
    if kind == "name":
        asked = set(words(question))
        # a speaker's name ("..., Kersten added.", "said Kersten") attributes the sentence; it names nobody asked about
        text = _ATTRIBUTION.sub(" ", text)
        person = bool(asked & _PERSON_NOUNS)  # "the name of the officer": a person's name, not "10th District"
        for m in _NAME.finditer(text):
            parts = [w for w in m.group(0).split() if w[0].isupper()]
            if person and any(w.lower() in _PLACE_WORDS for w in parts):
                continue  # "Civilian Office of Police Accountability" names an office, not the commander asked about
            if m.start() == len(text) - len(text.lstrip(" \"“‘(")):
                parts = parts[1:]  # the sentence's first word is capitalised anyway
            parts = [w for w in parts if w.lower().strip(",.") not in _CALENDAR]  # "On Tuesday" names nobody
            if any(not set(words(w)) <= asked and not (w.isupper() and len(w) <= 4) for w in parts):
                return True
        return False
    if kind == "country":
        return _names_a_country(text)
    if kind == "number":
        text = _ORDINAL.sub(" ", text)  # "the 19th District" counts nothing ("How many investigators ...?")
    elif kind in ("time", "duration"):
        text = _ORDINAL_NAME.sub(" ", text)  # nor is it a date ("When was that complaint made?")
    if kind == "duration":
        return bool(_NUMBER.search(text) or _TIME.search(text) or _UNITS_OF_TIME.search(text))
    return bool(_TYPE_PATTERNS[kind].search(text))


_NAME = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w’'-]*)*")

_COUNTRIES_FILE = Path(__file__).with_name("assets") / "countries.txt"
# a nationality is a country's stem and one of these: Venezuela-n, Mexic-an, Chin-ese, Brit-ish, Iraq-i
_NATIONALITY_ENDINGS = ("n", "an", "ian", "ean", "ese", "ish", "i", "ic")


@cache
def _countries() -> tuple[re.Pattern[str], frozenset[str], frozenset[str]]:
    """(a pattern of the country and region names, the listed nationality words, the stems nationalities are
    derived from), read once from qa/assets/countries.txt: names, a blank line, nationality words."""
    lines = [line.strip() for line in _COUNTRIES_FILE.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    blank = lines.index("")
    names, nationalities = [n for n in lines[:blank] if n], frozenset(n.lower() for n in lines[blank:] if n)
    pattern = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?!\w)")
    # every stem of a one-word name down to 3 letters shorter and at least 4 letters: "mexic" (Mexico), "brit" (Britain)
    stems = frozenset(n.lower()[:cut] for n in names if " " not in n and n.isalpha()
                      for cut in range(max(4, len(n) - 3), len(n) + 1))
    return pattern, nationalities, stems


def _names_a_country(text: str) -> bool:
    """Whether `text` names a country or region ("Venezuela", "the U.S.", "Latin America") or a nationality
    ("Venezuelan migrants", "the British", "Chinese")."""
    pattern, nationalities, stems = _countries()
    if pattern.search(text):
        return True
    for word in re.findall(r"\b[A-Z][a-z]{3,}\b", text):
        w = word.lower()
        if w in nationalities or any(w.endswith(e) and w[: -len(e)] in stems for e in _NATIONALITY_ENDINGS):
            return True
    return False
_SAYS = r"(?:said|says|added|adds|told|tells|explained|noted|wrote|stated)"
_PERSON_NOUNS = frozenset(
    "officer officers cop cops victim victims man woman person people suspect suspects source tipster chief administrator "
    "mayor official officials spokesperson spokesman spokeswoman reporter author writer girl boy child migrant migrants "
    "witness witnesses leader president governor minister judge lawyer attorney doctor teacher student owner driver "
    "commander sergeant lieutenant captain detective superintendent".split())
_PLACE_WORDS = frozenset(
    "district department office bureau police station street avenue county city state agency unit division "
    "council committee court university school hospital church company news department's".split())
_ATTRIBUTION = re.compile(rf"\b[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)?\s+{_SAYS}\b|\b{_SAYS}\s+[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)?")


def _known(word: str, known: set[str] | dict[str, int]) -> bool:
    """Every part of a (possibly hyphenated) word is in `known`, allowing for plural and possessive."""
    return all(w in known or w.rstrip("s") in known or w + "s" in known or w + "es" in known for w in words(word))


# office holders a question may be about ("What did the governor say?"): like a name, an article that never
# mentions the office cannot say what its holder did. Checked on SQuAD dev: of 13,616 answerable questions one
# names an office its article lacks ("an influential spokesman"), of 2,875 unanswerable (half A) ten do.
_OFFICES = frozenset(
    "mayor governor president senator judge lawyer attorney prosecutor spokesperson spokesman spokeswoman "
    "superintendent commissioner chancellor minister ambassador sheriff coroner alderman councilman councilwoman "
    "congressman congresswoman".split())


def unmatched_offices(question: str, known: set[str] | dict[str, int]) -> list[str]:
    """Office holders the question names ("the governor") that no passage mentions."""
    return [w for w in dict.fromkeys(words(question)) if w.rstrip("s") in _OFFICES and not _known(w, known)]


def unmatched_names(question: str, known: set[str] | dict[str, int]) -> list[str]:
    """Runs of capitalised words in the question (its first word aside) with a word no passage contains."""
    missing = []
    for m in _NAME.finditer(question):
        words = m.group(0).split()
        if m.start() == len(question) - len(question.lstrip(" \t\"'“‘(")):
            words = words[1:]  # the question's first word is capitalised anyway
        # short all-caps words are mostly common acronyms (TV, US, CEO), not names an article must carry
        names = [w for w in words if w[0].isupper() and not (w.isupper() and len(w) <= 3)]
        if any(not _known(w, known) for w in names):
            name = " ".join(w for w in words if w[0].isupper())
            name = re.sub(r"['’]s$", "", name)
            if name and name not in missing:
                missing.append(name)
    return missing


def unrecognised_words(question: str, vocabulary: set[str] | dict[str, int], is_known_word) -> tuple[list[str], list[str]]:
    """(the question's content words, those of them that are no word at all): neither in the articles, nor a
    whole word of the model's vocabulary. A question made only of the second kind ("asdfghjkl qwertyuiop") has
    nothing to look for; typo correction would otherwise map it onto some article word."""
    content = [w for w in words(question) if w.isalpha() and len(w) >= 3 and w not in STOPWORDS]
    unknown = [w for w in content if not _known(w, vocabulary) and not is_known_word(w)]
    return content, unknown


_FACTOID = re.compile(r"^\s*(who|whom|whose|when|where|which|what|how (many|much|old|long|far|big|large|tall))\b", re.IGNORECASE)


def span_fits(question: str, span: str) -> bool:
    """Whether a short answer found by the reader has the shape the question asks for: at most 6 words, a time
    for "when", a number for "how many/much", a capitalised name for "who/where" (the reader's spans are right
    about half the time on SQuAD; a span of the wrong kind is not shown)."""
    n = len(span.split())
    if not 0 < n <= 6:
        return False
    q = " ".join(question.lower().split())
    if re.match(r"(since |until )?when\b|(what|which) (day|date|time|year|month)\b", q):
        return has_type(span, "time")
    if re.match(r"how (many|much|old|long|far)\b", q):
        return has_type(span, "number") or has_type(span, "time")
    if re.match(r"(who|whom|whose|where)\b", q):
        return any(w[:1].isupper() for w in span.split())
    return True


def wants_short_answer(question: str) -> bool:
    """A question asking for a fact (who, when, where, which, what, how many/much/old/long...) gets a short
    answer inside the sentence; yes/no, why and how-questions keep the sentence alone."""
    return bool(_FACTOID.match(question))


def headline_only_words(question: str, story: set[str] | dict[str, int], aside: set[str]) -> list[str]:
    """Content words of the question that no passage of story text holds, but a line set aside does (a
    related-story headline, a promo): the question is about another story."""
    found = []
    for w in words(question):
        # four letters at least: short words ("get" of "CLICK HERE TO GET THE APP") are too common to carry a topic
        if w.isalpha() and len(w) > 3 and w not in STOPWORDS and not _known(w, story) and w in aside and w not in found:
            found.append(w)
    return found
