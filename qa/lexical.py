"""The lexical side: word tokenizer with stemming, BM25 (bm25s), and typo correction of questions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Short English function words: they carry no topic, so they neither score nor count as missing.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    s t don ve ll re d m o y ain aren couldn didn doesn hadn hasn haven isn ma mightn mustn needn shan
    shouldn wasn weren won wouldn also any anyone anything say said says tell told article story""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: the Snowball English stemmer, in C

    return Stemmer.Stemmer("english")


LEXICAL_VERSION = 2  # bump when tokenization changes: indexes built before are rebuilt


def fold(text: str) -> str:
    """Lower case without accents: "Gospić" and "gospic" are one word."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Lower-cased, accent-folded words, curly apostrophes folded, possessive 's dropped."""
    out = []
    for w in _WORD.findall(fold(text)):
        w = w.replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        out.append(w)
    return out


def content_words(text: str) -> list[str]:
    """`words` that are not function words ("Zappa's band" -> zappa, band): what a follow-up's rewrite adds is
    counted in these (the resolver and `qa eval`'s added-word measure)."""
    return [w for w in words(text) if w not in STOPWORDS]


def stem_tokens(ws: Iterable[str]) -> list[str]:
    kept = [w for w in ws if w not in STOPWORDS]
    return _stemmer().stemWords(kept) if kept else []


def tokenize(text: str) -> list[str]:
    """BM25 tokens: words minus stopwords, stemmed."""
    return stem_tokens(words(text))


class LexicalIndex:
    """BM25 over the passages, plus the surface vocabulary used to correct typos in questions."""

    def __init__(self, bm25, vocabulary: dict[str, int]) -> None:
        self.bm25 = bm25
        self.vocabulary = vocabulary  # surface word -> passages containing it
        self._words = list(vocabulary)
        self._by_first: dict[str, list[str]] = {}
        for w in vocabulary:
            if w:
                self._by_first.setdefault(w[0], []).append(w)

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25()
        split = [words(t) for t in texts]  # once per passage: for BM25 and for the vocabulary
        bm25.index([stem_tokens(ws) or [""] for ws in split], show_progress=False)
        vocabulary: dict[str, int] = {}
        for ws in split:
            for w in set(ws):
                vocabulary[w] = vocabulary.get(w, 0) + 1
        return cls(bm25, vocabulary)

    def save(self, folder: Path) -> None:
        import json

        folder.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(folder), show_progress=False)
        (folder / "words.json").write_text(json.dumps(self.vocabulary, ensure_ascii=False, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import json

        import bm25s

        bm25 = bm25s.BM25.load(str(folder), mmap=False, load_corpus=False)
        vocabulary = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        return cls(bm25, vocabulary)

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage, in passage order."""
        if not tokens:
            return np.zeros(self.bm25.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.bm25.get_scores(list(tokens)), dtype=np.float32)

    def correct(self, question: str, is_known_word: Callable[[str], bool]) -> tuple[str, dict[str, str]]:
        """Replace words that are neither in the articles nor whole words of the model's vocabulary by the
        closest article word (one edit for words of 4-6 letters, two from 7; a swap of two letters is one
        edit). Returns the corrected question and the replacements."""
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        fixes: dict[str, str] = {}

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            stem, suffix = (word[:-2], word[-2:]) if word.lower().endswith(("'s", "’s")) else (word, "")
            low = fold(stem)
            if (
                len(low) < 4 or not low.isalpha() or low in STOPWORDS or low in self.vocabulary
                or low.rstrip("s") in self.vocabulary or is_known_word(low)
            ):
                return word
            limit = 1 if len(low) < 7 else 2
            pool = self._by_first.get(low[0], []) if limit == 1 else self._words
            found = process.extract(low, pool, scorer=OSA.distance, score_cutoff=limit, limit=8)
            if not found:
                return word
            best_d = min(d for _, d, _ in found)
            best = max((w for w, d, _ in found if d == best_d), key=lambda w: self.vocabulary[w])
            if stem[:1].isupper():
                best = best.capitalize() if not stem.isupper() else best.upper()
            fixes[word] = best + suffix
            return best + suffix

        corrected = _WORD.sub(fix, question)
        return corrected, fixes
