"""The lexical side: word tokenizer with stemming, BM25 over postings, the articles' vocabulary, typo correction.

Each segment of the index keeps one `Postings`: sorted keys, and for each key the passages (rows of the segment)
holding it, with a count. Several kinds of key share it, each with its prefix:
- `s:` a BM25 token (a stemmed word, stopwords aside), with its term frequency;
- `w:` a surface word (lower case, accents folded: the vocabulary typo correction and the grounding checks use);
- `A:` / `a:` a word written in capitals only ("COPA") / otherwise ("Copa", "copa"): acronyms;
- `i:` a capitalised word that a capitalised word or "Name (" comes just before ("Andrea Kersten", "(COPA)"): where
  a story may introduce someone (qa/introductions.py checks each such passage).
`LexicalIndex` reads the postings of every live segment as one: BM25 with the statistics of the live passages
(bm25s' "lucene" variant, k1 1.5, b 0.75, as before), so a question costs the postings of its words, never a pass
over every passage. A removed article's passages stay in their segment until a merge and are masked out.
"""

from __future__ import annotations

import re
import unicodedata
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
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


# --- keys ------------------------------------------------------------------------------------------------

STEM, WORD, CAPS, LOWER, INTRO = "s:", "w:", "A:", "a:", "i:"
KEY_BYTES = 32  # longer keys are stored as a hash (a 200-letter "word" must not widen every key of the segment)
BM25_K1, BM25_B = 1.5, 0.75
_CAPS_WORD = re.compile(r"[A-Za-z][A-Za-z’'-]*")  # how acronyms are read (qa.store.StoredIndex.acronyms)
_NAME_RUN = re.compile(r"\w+")
_LONG_BEFORE = re.compile(r"(?:^|[^\w’'])([A-Z][\w’'.-]*)\s+$")  # as qa/introductions.py: "Andrea Kersten"
_IN_PARENTHESES = re.compile(r"[A-Z][\w’'.-]*\s*\($")  # "Police Accountability (COPA)"


def key(kind: str, term: str) -> bytes:
    """The stored key of a term of one kind: its UTF-8 bytes, or a hash when over KEY_BYTES."""
    raw = (kind + term).encode("utf-8")
    if len(raw) <= KEY_BYTES and b"\0" not in raw:
        return raw
    return (kind + "#" + hashlib.md5(raw).hexdigest())[:KEY_BYTES].encode()


def passage_keys(text: str) -> tuple[Counter, int]:
    """Every key of one passage with its count (term frequency for BM25 tokens, 1 for the others), and the
    passage's BM25 length (its tokens; 1 for a passage without any, as bm25s counts it)."""
    surface = words(text)
    stems = stem_tokens(surface)
    out: Counter = Counter(key(STEM, s) for s in stems)
    for w in set(surface):
        out[key(WORD, w)] = 1
    for w in _CAPS_WORD.findall(text):
        stem = re.sub(r"[’']s$", "", w)
        if len(stem) >= 2:
            out[key(CAPS if stem.isupper() else LOWER, stem.lower())] = 1
    for m in _NAME_RUN.finditer(text):
        first = m.group(0)[0]
        if not (first.isupper() or first.isdigit()):
            continue
        before = text[max(0, m.start() - 80) : m.start()]
        word = _LONG_BEFORE.search(before)
        if (word and word.group(1).lower() not in STOPWORDS) or _IN_PARENTHESES.search(before):
            out[key(INTRO, m.group(0).lower())] = 1
    return out, max(len(stems), 1)


# --- one segment's postings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postings:
    """Key -> passages of one segment: plain arrays, memory-mapped when read from disk."""

    keys: np.ndarray  # (K,) sorted bytes keys (dtype S32)
    offsets: np.ndarray  # (K + 1,) int64: the passages of keys[i] are docs[offsets[i]:offsets[i + 1]]
    docs: np.ndarray  # (P,) int32 rows of the segment, ascending for each key
    freqs: np.ndarray  # (P,) uint16 counts
    lengths: np.ndarray  # (passages,) int32 BM25 tokens per passage
    pools: dict = field(default_factory=dict, compare=False, repr=False)  # decoded words by first letter, on demand

    FILES = ("keys", "offsets", "docs", "freqs", "lengths")

    @classmethod
    def build(cls, texts: Sequence[str]) -> Postings:
        per_passage = [passage_keys(t) for t in texts]
        ids: dict[bytes, int] = {}
        key_of, doc_of, freq_of = [], [], []
        for d, (counts, _n) in enumerate(per_passage):
            for k, f in counts.items():
                key_of.append(ids.setdefault(k, len(ids)))
                doc_of.append(d)
                freq_of.append(min(f, 65535))
        lengths = np.array([n for _c, n in per_passage], dtype=np.int32)
        names = np.array(list(ids), dtype=f"S{KEY_BYTES}") if ids else np.zeros(0, f"S{KEY_BYTES}")
        return cls._assemble(names, np.array(key_of, np.int64), np.array(doc_of, np.int64), np.array(freq_of, np.int64),
                             lengths)

    @classmethod
    def _assemble(cls, names: np.ndarray, key_of: np.ndarray, doc_of: np.ndarray, freq_of: np.ndarray,
                  lengths: np.ndarray) -> Postings:
        """Postings from (key index into `names`, doc, freq) triples in any order."""
        used = np.bincount(key_of, minlength=len(names)) > 0 if len(key_of) else np.zeros(len(names), bool)
        if not used.all():  # keys of passages a merge dropped
            renumber = np.cumsum(used) - 1
            names, key_of = names[used], renumber[key_of]
        order = np.argsort(names, kind="stable")
        rank = np.empty(len(names), np.int64)
        rank[order] = np.arange(len(names))
        k = rank[key_of] if len(key_of) else key_of
        by = np.lexsort((doc_of, k))
        counts = np.bincount(k, minlength=len(names)) if len(k) else np.zeros(len(names), np.int64)
        return cls(keys=names[order], offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                   docs=doc_of[by].astype(np.int32), freqs=freq_of[by].astype(np.uint16), lengths=lengths.astype(np.int32))

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
        """One segment's postings from several: `parts` are (postings, kept rows of it, ascending), in the merged
        segment's row order (a part's kept rows come after the previous part's)."""
        names = np.unique(np.concatenate([p.keys for p, _ in parts])) if parts else np.zeros(0, f"S{KEY_BYTES}")
        keys_, docs_, freqs_, lengths_ = [], [], [], []
        base = 0
        for p, kept in parts:
            remap = np.full(len(p.lengths), -1, np.int64)
            remap[kept] = np.arange(len(kept)) + base
            key_index = np.repeat(np.searchsorted(names, p.keys), np.diff(p.offsets))
            new_doc = remap[p.docs]
            alive = new_doc >= 0
            keys_.append(key_index[alive])
            docs_.append(new_doc[alive])
            freqs_.append(p.freqs[alive].astype(np.int64))
            lengths_.append(np.asarray(p.lengths)[kept])
            base += len(kept)
        cat = lambda xs, dtype: np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)  # noqa: E731
        # names are already sorted and unique: _assemble's sort keeps them in place
        return cls._assemble(names, cat(keys_, np.int64), cat(docs_, np.int64), cat(freqs_, np.int64),
                             cat(lengths_, np.int32))

    def span(self, k: bytes) -> tuple[int, int]:
        """[start, end) of key `k`'s passages in docs (empty when absent)."""
        i = int(np.searchsorted(self.keys, k))
        if i < len(self.keys) and self.keys[i] == k:
            return int(self.offsets[i]), int(self.offsets[i + 1])
        return 0, 0

    def any_in(self, k: bytes, first: int, end: int) -> bool:
        """Whether one of the rows [first, end) holds key `k`: a binary search in its passages, nothing copied."""
        s, e = self.span(k)
        i = s + int(np.searchsorted(self.docs[s:e], first))
        return i < e and int(self.docs[i]) < end

    def prefixed(self, prefix: bytes) -> np.ndarray:
        """The keys starting with `prefix` (a contiguous run of the sorted keys)."""
        lo = int(np.searchsorted(self.keys, prefix))
        hi = int(np.searchsorted(self.keys, prefix + b"\xff"))
        return self.keys[lo:hi]

    def save(self, folder: Path, prefix: str) -> list[str]:
        names = []
        for name in self.FILES:
            path = folder / f"{prefix}{name}.npy"
            np.save(path, np.asarray(getattr(self, name)), allow_pickle=False)
            names.append(path.name)
        return names

    @classmethod
    def load(cls, folder: Path, prefix: str) -> Postings:
        return cls(**{name: np.load(folder / f"{prefix}{name}.npy", mmap_mode="r", allow_pickle=False)
                      for name in cls.FILES})


@dataclass
class LexicalPart:
    """One segment's postings as a snapshot sees them: where its rows start, and which are live."""

    postings: Postings
    base: int  # the snapshot row of its first live passage
    live: np.ndarray | None = None  # bool per row of the segment; None: all live
    global_of: np.ndarray | None = None  # snapshot row of each live row (with deletions only)

    def __post_init__(self) -> None:
        n = len(self.postings.lengths)
        if self.live is not None and self.live.all():
            self.live = None
        if self.live is not None:
            self.global_of = np.cumsum(self.live) - 1 + self.base
            self.count = int(self.live.sum())
            self.total_length = int(np.asarray(self.postings.lengths)[self.live].sum())
        else:
            self.count = n
            self.total_length = int(np.asarray(self.postings.lengths).sum())

    def docs(self, k: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(live rows of the segment, their counts, their snapshot rows) holding key k."""
        s, e = self.postings.span(k)
        docs = np.asarray(self.postings.docs[s:e])
        freqs = np.asarray(self.postings.freqs[s:e])
        if self.live is None:
            return docs, freqs, docs.astype(np.int64) + self.base
        keep = self.live[docs]
        docs, freqs = docs[keep], freqs[keep]
        return docs, freqs, self.global_of[docs]

    def df(self, k: bytes) -> int:
        s, e = self.postings.span(k)
        if self.live is None or s == e:
            return e - s
        return int(self.live[np.asarray(self.postings.docs[s:e])].sum())


# --- the snapshot's lexical view -----------------------------------------------------------------------------


class Vocabulary(Mapping):
    """Surface word -> live passages holding it, over every segment (a read-only mapping)."""

    def __init__(self, lexical: LexicalIndex) -> None:
        self._lexical = lexical

    def __getitem__(self, word: str) -> int:
        n = self._lexical.count(key(WORD, word)) if isinstance(word, str) else 0
        if not n:
            raise KeyError(word)
        return n

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._lexical.count(key(WORD, word)) > 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._lexical.words())

    def __len__(self) -> int:
        return len(self._lexical.words())


class LexicalIndex:
    """BM25 over the live passages of several segments, the surface vocabulary used to correct typos in questions
    and check names, acronyms, and where names are introduced. Rows are the snapshot's passage rows."""

    def __init__(self, parts: Sequence[LexicalPart]) -> None:
        self.parts = list(parts)
        self.passages = sum(p.count for p in self.parts)
        total = sum(p.total_length for p in self.parts)
        self.average_length = total / self.passages if self.passages else 1.0
        self._counts: dict[bytes, int] = {}
        self.vocabulary = Vocabulary(self)

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """An index of these passages alone, in memory (tests, experiments)."""
        return cls([LexicalPart(Postings.build(texts), 0)])

    # lookups
    def count(self, k: bytes) -> int:
        """Live passages holding key k."""
        n = self._counts.get(k)
        if n is None:
            n = sum(p.df(k) for p in self.parts)
            if len(self._counts) > 20_000:
                self._counts.clear()
            self._counts[k] = n
        return n

    def rows(self, k: bytes) -> np.ndarray:
        """Snapshot rows of the live passages holding key k, ascending."""
        found = [p.docs(k)[2] for p in self.parts]
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def words(self) -> list[str]:
        """Every live surface word (hashed long words aside), sorted; made once per snapshot, on first use."""
        cached = self.__dict__.get("_words")
        if cached is None:
            seen = sorted({w for p in self.parts for w in _decoded(p.postings, WORD)})
            cached = self.__dict__["_words"] = [w for w in seen if self.count(key(WORD, w))]
        return cached

    def rows_with(self, tokens: Sequence[str]) -> np.ndarray:
        """Rows holding any of these BM25 tokens, ascending."""
        parts = [self.rows(key(STEM, t)) for t in dict.fromkeys(tokens)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def rows_with_words(self, surface: Sequence[str]) -> np.ndarray:
        """Rows holding every one of these surface words, ascending (rarest first: the intersection stays small)."""
        ws = [w for w in dict.fromkeys(surface) if w]
        if not ws:
            return np.zeros(0, np.int64)
        ws.sort(key=lambda w: self.count(key(WORD, w)))
        rows = self.rows(key(WORD, ws[0]))
        for w in ws[1:]:
            if not len(rows):
                break
            rows = np.intersect1d(rows, self.rows(key(WORD, w)), assume_unique=True)
        return rows

    # BM25
    def matches(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the live passages holding at least one token, rows ascending."""
        n = self.passages
        rows_, scores_ = [], []
        for t in tokens:  # a repeated token counts again, as in bm25s
            k = key(STEM, t)
            found = [p.docs(k) + (p,) for p in self.parts]
            df = sum(len(d) for d, _f, _g, _p in found)
            if not df:
                continue
            idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
            for docs, freqs, rows, part in found:
                if len(docs):
                    tf = freqs.astype(np.float64)
                    length = np.asarray(part.postings.lengths)[docs]
                    norm = BM25_K1 * ((1 - BM25_B) + BM25_B * length / self.average_length)
                    rows_.append(rows)
                    scores_.append(idf * tf / (norm + tf))
        if not rows_:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, inverse = np.unique(np.concatenate(rows_), return_inverse=True)
        return rows, np.bincount(inverse, weights=np.concatenate(scores_)).astype(np.float32)

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage, in row order (a dense array: for tests and tuning; questions use `top`)."""
        out = np.zeros(self.passages, dtype=np.float32)
        rows, scores = self.matches(list(tokens))
        out[rows] = scores
        return out

    def top(self, tokens: Sequence[str], k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the k best BM25 matches, best first (ties: lower row first), among `rows` when given;
        only passages holding a token."""
        found, scores = self.matches(list(tokens))
        if rows is not None and len(found):
            keep = np.isin(found, rows, assume_unique=False)
            found, scores = found[keep], scores[keep]
        if not len(found) or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if len(found) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            found, scores = found[part], scores[part]
        order = np.lexsort((found, -scores))
        return found[order], scores[order]

    # acronyms and introductions
    def acronym(self, low: str) -> str | None:
        """The capitals form of a word the passages write in capitals only ("copa" -> "COPA"), else None."""
        if self.count(key(CAPS, low)) and not self.count(key(LOWER, low)):
            return low.upper()
        return None

    def acronyms(self) -> dict[str, str]:
        found = {w for p in self.parts for w in _decoded(p.postings, CAPS)}
        return {w: form for w in sorted(found) if (form := self.acronym(w))}

    def introducing(self, name: str) -> np.ndarray:
        """Rows that may introduce `name` in a long form ("Andrea Kersten", "... (COPA)"): for a one-word name the
        passages where it follows a capitalised word or "Name (", else those holding all its words (a superset
        either way: qa/introductions.py checks each)."""
        runs = _NAME_RUN.findall(name)
        if len(runs) == 1 and runs[0] == name.strip():
            return self.rows(key(INTRO, name.strip().lower()))
        return self.rows_with_words(words(name))

    # typo correction
    def correct(self, question: str, is_known_word: Callable[[str], bool]) -> tuple[str, dict[str, str]]:
        """Replace words that are neither in the articles nor whole words of the model's vocabulary by the
        closest article word (one edit for words of 4-6 letters, two from 7; a swap of two letters is one
        edit). Returns the corrected question and the replacements."""
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        vocabulary = self.vocabulary
        fixes: dict[str, str] = {}

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            stem, suffix = (word[:-2], word[-2:]) if word.lower().endswith(("'s", "’s")) else (word, "")
            low = fold(stem)
            if (
                len(low) < 4 or not low.isalpha() or low in STOPWORDS or low in vocabulary
                or low.rstrip("s") in vocabulary or is_known_word(low)
            ):
                return word
            limit = 1 if len(low) < 7 else 2
            found = []
            for part in self.parts:
                pool = _pool(part.postings, low[0] if limit == 1 else "")
                found += [(d, w) for w, d, _ in process.extract(low, pool, scorer=OSA.distance, score_cutoff=limit, limit=8)
                          if w in vocabulary]
            if not found:
                return word
            best_d = min(d for d, _ in found)
            best = max(sorted({w for d, w in found if d == best_d}), key=lambda w: vocabulary[w])
            if stem[:1].isupper():
                best = best.capitalize() if not stem.isupper() else best.upper()
            fixes[word] = best + suffix
            return best + suffix

        corrected = _WORD.sub(fix, question)
        return corrected, fixes


def _decoded(postings: Postings, kind: str) -> list[str]:
    """The terms of one kind in a segment's keys, decoded (hashed long terms left out)."""
    n = len(kind)
    return [k.decode("utf-8", "replace")[n:] for k in postings.prefixed(kind.encode())
            if not k[n:].startswith(b"#")]


def _pool(postings: Postings, first: str) -> list[str]:
    """A segment's words starting with `first` ("" for all), decoded once per segment and letter."""
    pool = postings.pools.get(first)
    if pool is None:
        pool = postings.pools[first] = _decoded_prefix(postings, WORD, first)
    return pool


def _decoded_prefix(postings: Postings, kind: str, first: str) -> list[str]:
    n = len(kind)
    return [k.decode("utf-8", "replace")[n:] for k in postings.prefixed((kind + first).encode())
            if not k[n:].startswith(b"#")]
