"""The follow-up resolver: which phrases of the conversation so far belong in a question that leans on it.

A small model trained on CANARD (`python -m qa.resolver_training`; docs/conversations.md, "The trained
resolver") reads

    [CLS] question [SEP] headline [SEP] earlier question [SEP] its answer [SEP] ... [SEP]

(the most recent exchanges that fit, the headline always) and gives every word piece of the history two
readings: the probability that its word belongs in the question ("they" -> "Zappa and the Mothers of
Invention", "what happened next" -> "the disbandment"), and whether it begins, continues or is outside a phrase
(noun chunks and entities, as spaCy's small English pipeline marks them in the training data; spaCy itself
costs more per question than the budget, so the model learned where phrases are). The resolver keeps the
phrases whose words score above the threshold chosen on CANARD dev's tuning part, not single words: a phrase is
what a person puts into a question.

Served on onnxruntime and `tokenizers` only (never PyTorch), one forward pass per follow-up.

Not wired into `Engine.ask` yet: measured on the team's conversation sets it answers no more follow-ups than
the rules and adds fewer of the right words to `interpreted_as` (docs/conversations.md); the training command
uses it to choose its decision threshold with the exported model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .lexical import STOPWORDS, content_words, words
from .model_files import checked_config, load_tokenizer, open_session

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "models" / "resolver"
SUPPORTED_VERSION = 1
QUESTION_PIECES = 40  # a question longer than this is cut (it rarely leans on anything)
HEADLINE_PIECES = 32
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_BIO = ("O", "B", "I")


@dataclass(frozen=True)
class Segment:
    kind: str  # "headline", "question" or "answer"
    text: str
    turn: int  # 0 for the headline; 1 for the oldest exchange shown, and so on


@dataclass(frozen=True)
class Phrase:
    text: str  # as written in the conversation
    kind: str  # the segment it comes from: "headline", "question" or "answer"
    turn: int
    score: float  # mean probability of its content words belonging in the question
    words: tuple[str, ...]  # its content words, folded (what it adds to the question)


def segments(headline: str | None, exchanges: Sequence[tuple[str, str | None]]) -> list[Segment]:
    """The history the resolver reads, oldest first: the headline, then each earlier question and its answer (a
    refusal has no answer segment)."""
    out = [Segment("headline", " ".join(headline.split()), 0)] if headline and headline.strip() else []
    for i, (q, a) in enumerate(exchanges, start=1):
        out.append(Segment("question", " ".join(q.split()), i))
        if a and a.strip():
            out.append(Segment("answer", " ".join(a.split()), i))
    return out


@dataclass(frozen=True)
class Encoding:
    ids: list[int]
    type_ids: list[int]
    # for each position: (segment index, start, end) of the piece's characters in that segment's text; -1 for
    # the question's pieces and the special tokens
    where: list[tuple[int, int, int]]
    segments: tuple[Segment, ...]  # every segment given (some may be cut away)


def encode(tokenizer, question: str, history: Sequence[Segment], max_length: int) -> Encoding:
    """Word pieces of `[CLS] question [SEP] headline [SEP] q [SEP] a [SEP] ...`: the headline and as many of the
    most recent segments as fit in `max_length`, in conversation order (the oldest one that fits only in part is
    cut at its end). Training and serving share this function."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    encs = tokenizer.encode_batch([question, *(s.text for s in history)], add_special_tokens=False)
    q = encs[0].ids[:QUESTION_PIECES]
    room = max_length - len(q) - 2
    chosen: list[tuple[int, int]] = []  # (segment index, pieces kept)
    order = list(range(len(history)))
    head = [i for i in order if history[i].kind == "headline"]
    for i in head:
        n = min(len(encs[i + 1].ids), HEADLINE_PIECES, room - 1)
        if n > 0:
            chosen.append((i, n))
            room -= n + 1
    for i in reversed([i for i in order if history[i].kind != "headline"]):
        if room <= 1:
            break
        n = min(len(encs[i + 1].ids), room - 1)
        if n > 0:
            chosen.append((i, n))
            room -= n + 1
    chosen.sort()
    ids = [cls_id, *q, sep_id]
    type_ids = [0] * len(ids)
    where = [(-1, 0, 0)] * len(ids)
    for i, n in chosen:
        e = encs[i + 1]
        ids += e.ids[:n] + [sep_id]
        type_ids += [1] * (n + 1)
        where += [(i, a, b) for a, b in e.offsets[:n]] + [(-1, 0, 0)]
    return Encoding(ids, type_ids, where, tuple(history))


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def piece_words(enc: Encoding) -> list[tuple[int, int] | None]:
    """For each position: (segment index, word index in that segment) of the word its piece belongs to, or None
    (question, special tokens, punctuation)."""
    spans = {}
    out: list[tuple[int, int] | None] = []
    for seg, a, _b in enc.where:
        if seg < 0:
            out.append(None)
            continue
        if seg not in spans:
            spans[seg] = word_spans(enc.segments[seg].text)
        ws = spans[seg]
        hit = next((w for w, (s, e) in enumerate(ws) if s <= a < e), None)
        out.append(None if hit is None else (seg, hit))
    return out


def word_form(word: str) -> str:
    """A word of the text as `content_words` writes it ("Zappa's" -> zappa)."""
    found = words(word)
    return found[0] if found else ""


def decode_phrases(enc: Encoding, keep: np.ndarray, bio: np.ndarray | None) -> list[Phrase]:
    """Phrases of the history with their scores: runs of words the BIO head marks as a phrase (B starts one, I
    continues it; with `bio` None, runs of consecutive content words), each scored by the mean keep-probability of
    its content words (a word's probability is its first piece's)."""
    words = piece_words(enc)
    seen: dict[tuple[int, int], tuple[float, int]] = {}  # word -> (keep prob, tag) of its first piece
    for t, w in enumerate(words):
        if w is not None and w not in seen:
            seen[w] = (float(keep[t]), int(np.argmax(bio[t])) if bio is not None else -1)
    phrases: list[Phrase] = []
    by_segment: dict[int, list[tuple[int, float, int]]] = {}
    for (seg, wi), (p, tag) in seen.items():
        by_segment.setdefault(seg, []).append((wi, p, tag))
    for seg, items in by_segment.items():
        segment = enc.segments[seg]
        spans = word_spans(segment.text)
        items.sort()
        runs: list[list[tuple[int, float]]] = []
        prev = -2
        for wi, p, tag in items:
            word = word_form(segment.text[slice(*spans[wi])])
            if bio is not None:
                if tag == 0:  # O
                    prev = -2
                    continue
                if tag == 1 or wi != prev + 1 or not runs:  # B, or a gap
                    runs.append([])
            else:
                if word in STOPWORDS:
                    prev = -2
                    continue
                if wi != prev + 1 or not runs:
                    runs.append([])
            runs[-1].append((wi, p))
            prev = wi
        for run in runs:
            first, last = run[0][0], run[-1][0]
            text = segment.text[spans[first][0] : spans[last][1]]
            content = [(word_form(segment.text[slice(*spans[wi])]), p) for wi, p in run]
            content = [(w, p) for w, p in content if w not in STOPWORDS]
            if not content:
                continue
            score = float(np.mean([p for _, p in content]))
            phrases.append(Phrase(text, segment.kind, segment.turn, score, tuple(dict.fromkeys(w for w, _ in content))))
    return phrases


@dataclass(frozen=True)
class Selection:
    """What the resolver found for one question."""

    phrases: tuple[Phrase, ...]  # chosen, best first

    @property
    def words(self) -> set[str]:
        return {w for p in self.phrases for w in p.words}


def select(phrases: Sequence[Phrase], question: str, threshold: float, max_phrases: int = 3,
           headline_last: bool = False) -> Selection:
    """The phrases above `threshold`, best first, each adding a word the question and the phrases before it lack;
    with `headline_last`, the headline's phrases only when nothing nearer qualifies."""
    have = set(content_words(question))
    ranked = sorted((p for p in phrases if p.score >= threshold), key=lambda p: -p.score)
    if headline_last and any(p.kind != "headline" for p in ranked):
        ranked = [p for p in ranked if p.kind != "headline"]
    chosen: list[Phrase] = []
    for p in ranked:
        new = [w for w in p.words if w not in have]
        if not new:
            continue
        chosen.append(p)
        have |= set(p.words)
        if len(chosen) >= max_phrases:
            break
    return Selection(tuple(chosen))


def _fix() -> str:
    return "run `python -m qa.resolver_training --output models/resolver --train-rows 8000 --epochs 1` (the weights are not in git)"


class Resolver:
    """Load once (`load`), then `find` per follow-up. Deterministic for a given input."""

    def __init__(self, folder: Path, config: dict, threads: int | None = None) -> None:
        self.folder = folder
        self.config = config
        self.max_length = int(config["max_length"])
        self.threshold = float(config.get("threshold", 0.5))
        self.max_phrases = int(config.get("max_phrases", 3))
        self.headline_last = bool(config.get("headline_last", False))
        self.phrases_from = config.get("phrases", "bio")
        self._threads = threads

    @classmethod
    def load(cls, folder: str | Path | None = None, *, threads: int | None = None) -> Resolver:
        """The model in `folder` (default: <project root>/models/resolver). ConfigError naming the file and the fix
        when the folder is missing, incomplete, corrupt or of another version."""
        folder = Path(folder) if folder is not None else DEFAULT_FOLDER
        config = checked_config(folder, "follow-up resolver", SUPPORTED_VERSION, _fix())
        model = cls(folder, config, threads)
        model.session  # noqa: B018 - load now, so a broken file fails here and not on the first question
        model.tokenizer  # noqa: B018
        return model

    @cached_property
    def tokenizer(self):
        tok = load_tokenizer(self.folder, _fix())
        tok.no_padding()
        tok.no_truncation()
        return tok

    @cached_property
    def session(self):
        return open_session(self.folder, self._threads, _fix())

    def read(self, question: str, history: Sequence[Segment]) -> tuple[Encoding, np.ndarray, np.ndarray]:
        """The encoding and, per position, the keep probability and the O/B/I scores."""
        enc = encode(self.tokenizer, question, history, self.max_length)
        ids = np.array([enc.ids], np.int64)
        keep, bio = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                            "token_type_ids": np.array([enc.type_ids], np.int64)})
        return enc, 1.0 / (1.0 + np.exp(-keep[0].astype(np.float64))), bio[0]

    def phrases(self, question: str, headline: str | None, exchanges: Sequence[tuple[str, str | None]]) -> list[Phrase]:
        """Every phrase of the history with its score."""
        history = segments(headline, exchanges)
        if not history:
            return []
        enc, keep, bio = self.read(question, history)
        return decode_phrases(enc, keep, bio if self.phrases_from == "bio" else None)

    def find(self, question: str, headline: str | None, exchanges: Sequence[tuple[str, str | None]]) -> Selection:
        """The phrases of the conversation that belong in `question`, best first (none for a question that
        stands alone)."""
        return select(self.phrases(question, headline, exchanges), question, self.threshold, self.max_phrases,
                      self.headline_last)
