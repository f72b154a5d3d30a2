"""Sentence segmentation with exact character offsets.

A boundary is sentence punctuation (. ! ? …), optionally followed by closing quotes or brackets, then
white space, then something that can start a sentence (a capital, a digit, an opening quote). A period
after a known abbreviation is a boundary only when the next word is one that typically starts a sentence.
"""

from __future__ import annotations

import re

from .types import Span

# Abbreviations that come before a name or number ("Gov. Abbott", "No. 5"): never a boundary.
_TITLES = frozenset(
    "mr mrs ms mx dr prof gov sen rep gen lt col sgt capt cpl maj adm cmdr supt det insp rev hon pres atty "
    "fr sr jr st mt ft vol vols fig figs vs v ald cmsr comm messrs".split()
)
_BEFORE_NUMBER = frozenset({"no", "nos"})  # "No. 5": an abbreviation only before a number; "said no." ends
# Other abbreviations: a boundary only before a word that typically starts a sentence.
_ABBREVIATIONS = frozenset(
    "inc corp co ltd llc bros dept univ assn est approx etc ave blvd rd hwy jan feb mar apr jun jul aug sep "
    "sept oct nov dec mon tue tues wed thu thur thurs fri sat sun ala ariz ark calif colo conn del fla ga ill "
    "ind kan ky la md mass mich minn miss mo mont neb nev okla ore pa tenn tex va vt wash wis wyo".split()
)
_STARTERS = frozenset(
    "the a an he she it they we i you this that these those there his her its their our my but and so yet "
    "however in on at after before when while if as for from to with by one two some many most all no "
    "officials authorities police".split()
)
_CLOSERS = "\"'”’»)]}"
_OPENERS = "\"'“‘«([{"
# Linear time on any input: a candidate starts only where a run of sentence punctuation starts (the look-behind),
# so a run of dots followed by a non-space is scanned once, not once per dot (an earlier `(?:\.{3}|[.!?])+` took
# exponential time on 40 dots before a letter).
_CANDIDATE = re.compile(r"(?<![.!?…])[.!?…]+[" + re.escape(_CLOSERS) + r"]*(?=\s)")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.")
_LONGEST_ABBREVIATION = 32  # letters and dots looked at before a period ("U.S.", "Calif.", "approx.")
_NEXT_WORD = re.compile(r"\s+([" + re.escape(_OPENERS) + r"]*)(\S*)")


def _word_before(text: str, end: int) -> str | None:
    """The run of ASCII letters and dots that ends at `end` and starts with a letter, or None. Scanned backwards
    and at most _LONGEST_ABBREVIATION characters, so each candidate costs O(1) whatever the text before it."""
    start = end
    while start > 0 and end - start < _LONGEST_ABBREVIATION and text[start - 1] in _WORD_CHARS:
        start -= 1
    while start < end and text[start] == ".":
        start += 1
    return text[start:end] or None


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    nxt = _NEXT_WORD.match(text, match.end())
    if nxt is None or not nxt.group(2):
        return False
    opener, word = nxt.group(1), nxt.group(2)
    first = word[0]
    if not (first.isupper() or first.isdigit() or opener):
        return False  # "...?" she asked / "etc. and" / "5 p.m. on Monday"
    if match.group(0)[0] != ".":
        return True  # ! ? … are not abbreviation marks
    token = _word_before(text, match.start())
    if token is None:
        return True  # "5,000." or a closing bracket before the period
    bare = token.rstrip(".").lower()
    if len(token) == 1 and token.isupper():
        return False  # an initial: "John F. Kennedy"
    if bare in _TITLES:
        return False
    if bare in _BEFORE_NUMBER:
        return not first.isdigit()
    starter = re.sub(r"\W+$", "", word).lower()
    if "." in token or bare in _ABBREVIATIONS:  # U.S., a.m., D.C., Inc.
        return starter in _STARTERS
    return True


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Split `text` into sentences; spans are shifted by `offset` and exclude surrounding white space."""
    spans: list[Span] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if _is_boundary(text, match):
            spans.append(Span(start, match.end()))
            start = match.end()
    spans.append(Span(start, len(text)))
    out = []
    for span in spans:
        piece = text[span.start : span.end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if piece.strip():
            out.append(Span(offset + span.start + lead, offset + span.end - trail))
    return out
