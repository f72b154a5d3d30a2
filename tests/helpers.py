"""Test helpers: a deterministic fake embedder and small utilities for hand-written corpora.

The fake embedder implements the `Embedder` protocol of qa/embedding.py without a model: a text's vector
is its hashed bag of content words (lower-cased, trailing plural "s" dropped), so two texts are close
exactly when they share words. Every word is one "token" whose vector is the one-hot of its hash bucket,
and whose offsets are the word's [start, end) in the text. It counts what it encodes, so tests can check
that opening a fresh index embeds nothing and that a refresh embeds only changed articles.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.embedding import Encoded

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Kept small and independent of qa.lexical so the fake does not change when the library does.
FAKE_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have he her his how i in is it its of on or she "
    "that the their they this to was we were what when where which who why will with you".split()
)


def fake_terms(text: str) -> list[tuple[str, int, int]]:
    """(term, start, end) of each word of `text`: lower case, possessive and plural 's' dropped."""
    out = []
    for m in WORD.finditer(text):
        w = m.group(0).lower().replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append((w, m.start(), m.end()))
    return out


class FakeEmbedder:
    """Hashed bag-of-words vectors; deterministic across runs and machines (md5, not hash())."""

    backend = "fake"

    def __init__(self, name: str = "fake-bow", dimension: int = 1024, max_tokens: int = 256,
                 known_words: Iterable[str] = ()) -> None:
        self.name = name
        self._dimension = dimension
        self._max_tokens = max_tokens
        self.known_words = {w.lower() for w in known_words}
        self.encode_calls = 0
        self.encoded: list[str] = []  # every text ever encoded, in order

    @property
    def encoded_count(self) -> int:
        return len(self.encoded)

    def reset_counts(self) -> None:
        self.encode_calls = 0
        self.encoded.clear()

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def bucket(self, term: str) -> int:
        return int.from_bytes(hashlib.md5(term.encode("utf-8")).digest()[:8], "little") % self._dimension

    def _one_hot(self, term: str) -> np.ndarray:
        v = np.zeros(self._dimension, np.float32)
        v[self.bucket(term)] = 1.0
        return v

    def vector(self, text: str) -> np.ndarray:
        """Unit bag-of-words vector of the content words; a text without any gets a fixed vector."""
        v = np.zeros(self._dimension, np.float32)
        for term, _s, _e in fake_terms(text):
            if term not in FAKE_STOPWORDS:
                v[self.bucket(term)] += 1.0
        n = float(np.linalg.norm(v))
        if n == 0.0:
            v[self._dimension - 1] = 1.0  # bucket collisions aside, orthogonal to content words
            return v
        return v / n

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Encoded:
        texts = list(texts)
        self.encode_calls += 1
        self.encoded.extend(texts)
        if not texts:
            return Encoded(np.zeros((0, self._dimension), np.float32), [], [])
        vectors = np.stack([self.vector(t) for t in texts]).astype(np.float32)
        tokens, offsets = [], []
        for t in texts:
            terms = fake_terms(t)[: self._max_tokens]  # truncation, as a real model would
            tokens.append(np.stack([self._one_hot(w) for w, _s, _e in terms]) if terms
                          else np.zeros((0, self._dimension), np.float32))
            offsets.append(np.array([[s, e] for _w, s, e in terms], dtype=np.int64).reshape(-1, 2))
        return Encoded(vectors, tokens, offsets)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def is_known_word(self, word: str) -> bool:
        return word.lower() in self.known_words


def write_articles(folder: Path, articles: dict[str, str]) -> Path:
    """Write {file name: text} under `folder` (created), byte for byte; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


# Five short hand-written articles with known answers, used by the store and retrieval tests.
# Every story paragraph is one sentence or two; the questions in the tests share words with exactly
# one paragraph unless the test says otherwise.
SMALL_CORPUS = {
    "bridge.txt": (
        "date 2024-03-02 The Harlow river bridge will close for repairs next month.\n"
        "\n"
        "Engineers found cracks in three steel girders during an inspection in February.\n"
        "\n"
        "The repairs will cost $4 million, paid by the state transport fund.\n"
        "\n"
        "Commuters can use the ferry at Mill Point while the bridge is closed.\n"
    ),
    "bakery.txt": (
        "date 2024-03-05 A bakery on Elm Street won the regional sourdough contest.\n"
        "\n"
        "Owner Marta Quist said her starter culture is forty years old.\n"
        "\n"
        "The bakery opens at 6 a.m. every day except Sunday.\n"
    ),
    "library.txt": (
        "# Library extends opening hours\n"
        "\n"
        "The central library will stay open until midnight during exam season.\n"
        "\n"
        "Students asked for quiet study rooms with more desks and power outlets.\n"
        "\n"
        "Librarian Otto Brandt said volunteers will staff the night shifts.\n"
    ),
    "orchard.txt": (
        "title: Frost damages apple orchard\n"
        "\n"
        "A late frost destroyed most apple blossoms at the Wren Valley orchard.\n"
        "\n"
        "Growers expect the harvest to fall by half this autumn.\n"
    ),
}


def seed_article_path() -> Path:
    return Path(__file__).resolve().parent.parent / "articles" / "000_1377f01862d9140a.txt"


# --- fixtures (imported by the test modules; kept out of conftest.py, which the app tests own) -------

@pytest.fixture
def qa_clean_env(monkeypatch):
    """No QA_* variable from the developer's shell reaches the test."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)


_SEED_ENGINE: dict[str, object] = {}


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory):
    """The real default model and the real seed article, indexed once per test session in a temporary
    folder (never /work/main/index). Cached here so modules that import the fixture share one build."""
    if "engine" not in _SEED_ENGINE:
        from qa import Engine, resolve_settings

        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("QA_")}
        try:
            index_dir = tmp_path_factory.mktemp("seed-index") / "index"
            settings = resolve_settings(index_dir=str(index_dir), articles=[str(seed_article_path())], backend="torch")
            _SEED_ENGINE["engine"] = Engine.open(settings, log=lambda _m: None)
        finally:
            os.environ.update(saved)
    return _SEED_ENGINE["engine"]


_QDRANT_ENGINE: dict[str, object] = {}


@pytest.fixture(scope="session", params=["files", "qdrant"])
def engine_on_each_store(request, seed_engine, tmp_path_factory):
    """The seed engine on the files store, then on a copy of its archive in Qdrant's embedded local mode
    (qa/qdrant_store.py, the real qdrant-client): a test taking this runs on both stores."""
    if request.param == "files":
        return seed_engine
    if "engine" not in _QDRANT_ENGINE:
        from dataclasses import replace

        from qa import Engine
        from qa.qdrant_store import QdrantStore, copy_index

        path = tmp_path_factory.mktemp("seed-qdrant") / "qdrant"
        store = QdrantStore.connect(path=path)
        settings = replace(seed_engine.settings, store="qdrant", qdrant_path=str(path))
        _QDRANT_ENGINE["engine"] = Engine(copy_index(seed_engine.index, store), seed_engine.embedder, settings, store=store)
    return _QDRANT_ENGINE["engine"]


def answering(engine):
    """The engine with both confidence thresholds at 0: every question the rules let through is `answered`. For
    tests of which sentence and which short answer the stages choose, whatever thresholds the confidence model was
    last fitted with (the statuses themselves are tested in test_decide.py and test_confidence_chat.py)."""
    import copy
    from dataclasses import replace

    out = copy.copy(engine)
    out.__dict__.pop("confidence_model", None)
    out.settings = replace(engine.settings, answered_above=0.0, uncertain_above=0.0)
    return out


@pytest.fixture(scope="session")
def seed_reader_engine(seed_engine):
    """The seed engine, answering (above)."""
    return answering(seed_engine)


def not_answered(reply: dict, says: str) -> bool:
    """The reply does not present an answer (refused, or uncertain with the closest sentence) and its reason is
    `says`, "The article does not say ..." (refused) or its uncertain form "The article may not say ..."."""
    if reply["status"] == "abstained":
        return reply["answer"] is None and reply["reason"] == says
    may_not = says.replace("does not say", "may not say", 1)
    return reply["status"] == "uncertain" and reply["answer"]["span"] is None and reply["reason"] == may_not


def history(*pairs: tuple[str, str]) -> list:
    """Chat turns from (question, reply) pairs, oldest first."""
    from qa.validation import Turn

    out = []
    for q, a in pairs:
        out += [Turn("user", q), Turn("assistant", a)]
    return out


def converse(engine, *questions: str) -> tuple[list, dict]:
    """Ask the questions in turn, each with the service's own earlier replies as history (as the chat does); the
    history so far and the last reply's JSON."""
    from qa.conversation import reply_text
    from qa.validation import check_history

    turns: list = []
    reply: dict = {}
    for q in questions:
        reply = engine.ask(q, history=check_history(turns)).to_json()
        turns += [{"role": "user", "content": q}, {"role": "assistant", "content": reply_text(reply)}]
    return turns, reply
