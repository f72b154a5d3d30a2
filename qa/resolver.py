"""The follow-up resolver: which words of the conversation so far belong in a question that leans on it.

Every content word of the history (the article's title when it names a subject, the earlier questions, the
answers given) is a candidate. A small tree model trained on CANARD (`python -m qa.resolver_training`;
docs/conversations.md, "The trained resolver") scores each from what spaCy's small English pipeline says of it
and of the question: where it was said and how recently, its entity type, part of speech and role, and whether
the question has a pronoun, a demonstrative, a name of its own. The words above the threshold (chosen on CANARD
dev's tuning part for a conversation whose title names its subject, on the team's tuning conversations for one
without) are grouped back into the phrases they were said in ("Zappa and the Mothers of Invention"), the best
three kept.

A title is read only when it names a subject (at most NAME_TITLE_WORDS words): a Wikipedia title is a name
(438 of CANARD dev's 442 have at most 5 words); a news headline is a sentence about the story (none of
news-dev's 15 has fewer than 6), and the subject of a follow-up is rarely the headline's words (measured: with
the headlines read, added-word F1 on the news conversations' tuning part fell from 0.42 to 0.16 in a prototype of
these features, offline, with the gold evidence quotes as the answers).

Served on onnxruntime (the trees as an ONNX TreeEnsemble), one run per follow-up; spaCy's parses are cached by
text (qa/nlp.py), so an earlier turn is parsed once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .lexical import STOPWORDS, content_words, words
from .model_files import checked_config, open_session

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "models" / "resolver"
SUPPORTED_VERSION = 2
NAME_TITLE_WORDS = 5  # a title of at most this many words names the subject (see the module doc)
MAX_EXCHANGES = 6  # the most recent exchanges read; older ones rarely hold what a follow-up leans on
FAR = 20  # the distance given to "not said in any earlier question" (or answer)

_WH = frozenset({"who", "whom", "whose", "what", "which", "when", "where", "why", "how", "else", "much", "many",
                 "long", "also", "did", "does", "do"})
_PERSON = frozenset({"he", "she", "him", "her", "his", "hers", "himself", "herself"})
_THING = frozenset({"it", "its", "itself"})
_PLURAL = frozenset({"they", "them", "their", "theirs", "themselves"})
_DEMONSTRATIVE = frozenset({"that", "this", "those", "these"})
_FRAGMENT_START = ("and ", "also ", "so ", "or ", "but ", "what about ", "how about ")
_NAME_JOINERS = frozenset({"of", "the", "and", "de", "von", "van", "da", "del", "la", "le", "du", "in", "on", "for"})
ENTITY_TYPES = ("PERSON", "ORG", "GPE", "NORP", "DATE", "CARDINAL", "WORK_OF_ART", "EVENT", "LOC", "FAC", "PRODUCT",
                "LAW")
POS_TAGS = ("PROPN", "NOUN", "VERB", "ADJ", "NUM", "ADV")
DEPENDENCIES = ("nsubj", "nsubjpass", "dobj", "pobj", "ROOT", "compound", "amod", "conj", "attr", "poss")
SOURCES = ("title", "question", "answer")

# the model's inputs, in order (config.json records them; a model trained on other features is refused)
FEATURES = (
    "in_title", "question_distance", "answer_distance", "count", "sources", "in_last_question", "in_last_answer",
    "position", "length", "capitalised", "in_subject_chunk", "chunk_head", "source",
    *(f"entity_{e}" for e in ENTITY_TYPES), "entity_other",
    *(f"pos_{p}" for p in POS_TAGS), *(f"dep_{d}" for d in DEPENDENCIES), "head_is_root", "is_root",
    "q_person_pronoun", "q_thing_pronoun", "q_plural_pronoun", "q_demonstrative", "q_content_words", "q_tokens",
    "q_has_entity", "q_has_proper_noun", "q_fragment", "turn", "exchanges", "title_words", "title_is_name",
    "has_title",
)


def names_subject(title: str | None) -> bool:
    """Whether a title names the article's subject ("Frank Zappa") rather than telling the story (a headline)."""
    return bool(title and title.strip()) and len(title.split()) <= NAME_TITLE_WORDS


@dataclass(frozen=True)
class Occurrence:
    """Where a candidate word was said: the spaCy token, in which source, how many exchanges back."""

    token: object  # spacy.tokens.Token
    source: str  # "title", "question" or "answer"
    distance: int  # 1 for the last exchange; 0 for the title


@dataclass(frozen=True)
class Candidates:
    """The words of the history a question could take, with one feature row each (FEATURES' order)."""

    words: tuple[str, ...]
    features: np.ndarray  # float32, (len(words), len(FEATURES))
    occurrences: tuple[Occurrence, ...]  # the nearest occurrence of each word
    sources: tuple[Occurrence, ...] = ()  # each text read (its first token), nearest first: where phrases are read


@dataclass(frozen=True)
class Phrase:
    text: str  # as said in the conversation ("Zappa and the Mothers of Invention")
    source: str
    distance: int
    score: float  # the highest probability among its words
    words: tuple[str, ...]  # the content words it adds to the question
    entity: str  # spaCy's entity type of its words ("PERSON"), or ""


def _docs(texts: Sequence[str]) -> list:
    from .nlp import parse_many

    return parse_many(list(texts))


def _token_words(doc) -> list[tuple[str, object]]:
    """(content word, token) for every content word of a parsed text."""
    out = []
    for tok in doc:
        for w in words(tok.text):
            if w not in STOPWORDS and w not in _WH and w.isalnum() and len(w) > 1:
                out.append((w, tok))
    return out


def _question_features(question: str, doc, title: str | None, exchanges: int) -> list[float]:
    tokens = [t.lower_ for t in doc]
    title_words = title.split() if title else []
    low = question.lower().lstrip()
    return [
        any(t in _PERSON for t in tokens), any(t in _THING for t in tokens), any(t in _PLURAL for t in tokens),
        any(t in _DEMONSTRATIVE for t in tokens), len(content_words(question)), len(tokens), bool(doc.ents),
        any(t.pos_ == "PROPN" for t in doc), low.startswith(_FRAGMENT_START), exchanges + 1, exchanges,
        len(title_words),
        bool(title_words) and all(w[:1].isupper() or w.lower() in _NAME_JOINERS for w in title_words),
        title is not None,
    ]


def candidates(question: str, title: str | None, exchanges: Sequence[tuple[str, str | None]]) -> Candidates:
    """Every content word of the title (when it names the subject) and of the last MAX_EXCHANGES (question,
    answer) exchanges, oldest first, that the question lacks, with its features. An answer of None is a refusal."""
    title = title.strip() if names_subject(title) else None
    sources: list[tuple[str, int, str]] = [("title", 0, title)] if title else []
    recent = list(exchanges)[-MAX_EXCHANGES:]
    for i, (q, a) in enumerate(recent):
        distance = len(recent) - i
        sources.append(("question", distance, q))
        if a and a.strip():
            sources.append(("answer", distance, a))
    docs = _docs([question, *(s[2] for s in sources)])
    qdoc, sdocs = docs[0], docs[1:]
    have = set(content_words(question))
    info: dict[str, dict] = {}
    for (source, distance, _text), doc in zip(sources, sdocs):
        length = max(len(doc), 1)
        chunk_of = {t.i: nc for nc in doc.noun_chunks for t in nc}
        for w, tok in _token_words(doc):
            if w in have:
                continue
            e = info.setdefault(w, {"title": 0, "q": FAR, "a": FAR, "count": 0, "sources": set(), "best": None,
                                    "key": None})
            e["count"] += 1
            e["sources"].add((source, distance))
            if source == "title":
                e["title"] += 1
            elif source == "question":
                e["q"] = min(e["q"], distance)
            else:
                e["a"] = min(e["a"], distance)
            # the nearest occurrence (fewest exchanges back, a question before its answer) describes the word;
            # the title's only when the word was said nowhere else
            key = (distance, source != "question") if source != "title" else (10**6, 0)
            if e["key"] is None or key < e["key"]:
                e["key"] = key
                e["best"] = (tok, source, distance, tok.i / length, chunk_of.get(tok.i))
    qf = _question_features(question, qdoc, title, len(recent))
    names, rows, where = [], [], []
    for w, e in info.items():
        tok, source, distance, position, chunk = e["best"]
        ent = tok.ent_type_ or ""
        row = [e["title"], min(e["q"], FAR), min(e["a"], FAR), e["count"], len(e["sources"]), e["q"] == 1,
               e["a"] == 1, position, len(w), tok.text[:1].isupper() and tok.i > 0,
               chunk is not None and chunk.root.dep_ in ("nsubj", "nsubjpass"),
               chunk is not None and chunk.root.i == tok.i, SOURCES.index(source)]
        row += [ent == x for x in ENTITY_TYPES] + [bool(ent) and ent not in ENTITY_TYPES]
        row += [tok.pos_ == x for x in POS_TAGS] + [tok.dep_ == x for x in DEPENDENCIES]
        row += [tok.head.dep_ == "ROOT", tok.i == tok.sent.root.i]
        names.append(w)
        rows.append(row + qf)
        where.append(Occurrence(tok, source, distance))
    features = np.array(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))
    read = sorted((Occurrence(doc[0], source, distance) for (source, distance, _t), doc in zip(sources, sdocs) if len(doc)),
                  key=lambda o: (o.distance if o.source != "title" else 10**6, o.source != "question"))
    return Candidates(tuple(names), features, tuple(where), tuple(read))


def phrases_of(cands: Candidates, chosen: dict[str, float]) -> list[Phrase]:
    """The chosen words (word -> probability) grouped into the phrases they were said in: runs of chosen words in
    a text, joined across "of", "the", "and" and the like ("Mothers of Invention"). Phrases are taken greedily:
    the one adding the most chosen words not yet taken, then the likelier, then the nearer ("Lew Wallace" from
    the title rather than "Wallace" from the answer and "Lew" from the title); best phrase first."""
    found: list[Phrase] = []
    for src in cands.sources:
        doc = src.token.doc
        marked = [t.i for t in doc if any(w in chosen for w in words(t.text))]
        runs: list[list[int]] = []
        for i in marked:
            if runs and i - runs[-1][-1] <= 3 and all(doc[j].lower_ in _NAME_JOINERS or doc[j].text in "-'’"
                                                      for j in range(runs[-1][-1] + 1, i)):
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            span = doc[run[0] : run[-1] + 1]
            ws = tuple(dict.fromkeys(w for t in span for w in words(t.text) if w in chosen))
            ents = {t.ent_type_ for t in span if t.ent_type_}
            found.append(Phrase(span.text, src.source, src.distance, max(chosen[w] for w in ws), ws,
                                ents.pop() if len(ents) == 1 else ""))
    out: list[Phrase] = []
    have: set[str] = set()
    while True:
        best = max(((len(set(p.words) - have), p.score, -i) for i, p in enumerate(found) if set(p.words) - have),
                   default=None)
        if best is None:
            break
        p = found[-best[2]]
        out.append(p)
        have |= set(p.words)
    out.sort(key=lambda p: -p.score)
    return out


def _fix() -> str:
    return "run `python -m qa.resolver_training` (writes models/resolver), or restore models/resolver/ from git"


class Resolver:
    """Load once (`load`), then `find` per follow-up. Deterministic for a given input."""

    def __init__(self, folder: Path, config: dict, threads: int | None = None) -> None:
        self.folder = folder
        self.config = config
        self.threshold = float(config["threshold"])  # for a conversation whose title names the subject
        self.threshold_without_title = float(config["threshold_without_title"])
        self.max_phrases = int(config["max_phrases"])
        self._threads = threads

    @classmethod
    def load(cls, folder: str | Path | None = None, *, threads: int | None = None) -> Resolver:
        """The model in `folder` (default: <project root>/models/resolver). ConfigError naming the file and the fix
        when the folder is missing, incomplete, corrupt, of another version or for other features."""
        folder = Path(folder) if folder is not None else DEFAULT_FOLDER
        config = checked_config(folder, "follow-up resolver", SUPPORTED_VERSION, _fix(),
                                needs=("threshold", "threshold_without_title", "max_phrases", "features"),
                                files=("model.onnx",))
        if list(config["features"]) != list(FEATURES):
            from .errors import ConfigError

            raise ConfigError(f"{folder}/config.json lists other features than this code computes; {_fix()}.")
        model = cls(folder, config, threads)
        model.session  # noqa: B018 - load now, so a broken file fails here and not on the first question
        return model

    @cached_property
    def session(self):
        return open_session(self.folder, self._threads or 1, _fix())

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The probability that each candidate word belongs in the question."""
        if not len(features):
            return np.zeros(0, dtype=np.float64)
        (out,) = self.session.run(None, {"features": features.astype(np.float32)})
        return out.reshape(-1).astype(np.float64)

    def find(self, question: str, title: str | None, exchanges: Sequence[tuple[str, str | None]]) -> list[Phrase]:
        """The phrases of the conversation that belong in `question`, best first (none for a question that
        stands alone)."""
        from .conversation import needs_context

        if not exchanges and not names_subject(title):
            return []
        # without a title that names the subject, a question that names its own topic is left alone (the rules'
        # test, qa/conversation.py): on the team's conversations this leaves 0.9-1.0 of the questions a person left
        # alone untouched (0.2 without) at an added-word F1 of 0.356 against 0.364 held out (offline, the gold evidence
        # quotes as the answers); with a name title
        # (CANARD dev's tuning part) it would cost F1 0.50 against 0.57: "what happened in 1975" leans on Zappa
        if not names_subject(title) and not needs_context(question):
            return []
        cands = candidates(question, title, exchanges)
        p = self.scores(cands.features)
        threshold = self.threshold if names_subject(title) else self.threshold_without_title
        chosen = {w: float(s) for w, s in zip(cands.words, p) if s >= threshold}
        return phrases_of(cands, chosen)[: self.max_phrases] if chosen else []
