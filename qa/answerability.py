"""Does one of the candidate sentences state the answer? A small reader on onnxruntime (never PyTorch).

The engine's worst failure is a confident, unrelated sentence for a near-topic question the article does not
answer. This model reads the question with each candidate sentence of the top passage
(`[CLS] question [SEP] sentence [SEP]`, all-MiniLM-L6-v2 cut to a few layers, int8) and returns, per
sentence, a calibrated probability that it states the answer and the short answer span inside it. It is
trained by `python -m qa.training` (see that module and models/answerability/MODEL_CARD.md); the folder's
config.json carries the abstention threshold chosen on calibration articles never trained on.

Typical use: read the engine's top 1-2 sentences of its top passage; abstain when the best answer_prob is
below `model.threshold`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from .model_files import checked_config, load_tokenizer, open_session

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "models" / "answerability"
SUPPORTED_VERSION = 1
MAX_SPAN_PIECES = 30  # longest short answer, in word pieces
_YES_NO = re.compile(r"^\s*(is|was|are|were|did|does|do|has|have|had|can|could|will|would|should|may|might|must|am)\b",
                     re.IGNORECASE)


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no ("Was the officer fired?"): no short span is offered for it."""
    return bool(_YES_NO.match(question))


@dataclass(frozen=True)
class Reading:
    sentence: int  # index into the `sentences` given to `read`
    answer_prob: float  # calibrated P(this sentence states the answer to the question)
    span: tuple[int, int] | None  # [start, end) characters of the short answer in passage_text, or None
    span_prob: float  # P(start) * P(end) of that span under the model (0 when span is None)
    logit: float  # the raw answer logit, before calibration


def encode_pairs(tokenizer, questions: Sequence[str], sentences: Sequence[str], max_length: int) -> list:
    """`tokenizers` Encodings of (question, sentence) pairs, truncated (longest side first) to max_length
    pieces, unpadded. Training and inference share this function so they cut text the same way."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, strategy="longest_first")
    return tokenizer.encode_batch(list(zip(questions, sentences)))


def _fix() -> str:
    return "run `python -m qa.training --output models/answerability` (about an hour on 2 CPUs) or restore the folder from git"


class AnswerabilityModel:
    """Load once (`load`), then `read` per question. Outputs are deterministic for a given input."""

    def __init__(self, folder: Path, config: dict, threads: int | None = None) -> None:
        self.folder = folder
        self.config = config
        self.max_length = int(config["max_length"])
        self.platt = tuple(float(x) for x in config.get("platt", (1.0, 0.0)))
        self.threshold = float(config.get("threshold", 0.5))
        self.read_sentences = int(config.get("read_sentences", 2))
        self._threads = threads

    @classmethod
    def load(cls, folder: str | Path | None = None, *, threads: int | None = None) -> AnswerabilityModel:
        """The model in `folder` (default: <project root>/models/answerability). Raises ConfigError naming
        the file and the fix when the folder is missing, incomplete, corrupt or of another version."""
        folder = Path(folder) if folder is not None else DEFAULT_FOLDER
        config = checked_config(folder, "answerability model", SUPPORTED_VERSION, _fix())
        model = cls(folder, config, threads)
        model.session  # noqa: B018 - load now, so a broken file fails here and not on the first question
        model.tokenizer  # noqa: B018
        return model

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.folder, _fix())

    @cached_property
    def session(self):
        return open_session(self.folder, self._threads, _fix())

    def calibrate(self, logit: float) -> float:
        a, b = self.platt
        return float(1.0 / (1.0 + np.exp(-(a * logit + b))))

    def read(self, question: str, passage_text: str, sentences: Sequence[tuple[int, int]]) -> list[Reading]:
        """One Reading per given sentence ([start, end) offsets into passage_text), in the order given."""
        spans = [(int(a), int(b)) for a, b in sentences]
        for a, b in spans:
            if not 0 <= a < b <= len(passage_text):
                raise ValueError(f"Sentence span ({a}, {b}) is not inside the passage of {len(passage_text)} characters.")
        readings = self.read_texts(question, [passage_text[a:b] for a, b in spans])
        return [r if r.span is None else replace(r, span=(r.span[0] + a, r.span[1] + a))
                for r, (a, _b) in zip(readings, spans)]

    def read_texts(self, question: str, texts: Sequence[str]) -> list[Reading]:
        """One Reading per sentence text, in one batch; spans are offsets into each text."""
        if not texts:
            return []
        encs = encode_pairs(self.tokenizer, [question] * len(texts), list(texts), self.max_length)
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n], types[i, :n], mask[i, :n] = e.ids, e.type_ids, 1
        answer, start, end = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        yes_no = is_yes_no(question)
        out = []
        for i, (e, text) in enumerate(zip(encs, texts)):
            span, span_prob = (None, 0.0) if yes_no else self._best_span(e, start[i], end[i], text, 0)
            logit = float(answer[i])
            out.append(Reading(i, self.calibrate(logit), span, span_prob, logit))
        return out

    @staticmethod
    def _best_span(enc, start: np.ndarray, end: np.ndarray, text: str, offset: int) -> tuple[tuple[int, int] | None, float]:
        """The most likely [start, end) of at most MAX_SPAN_PIECES pieces of the sentence, widened to whole words."""
        allowed = [t for t, (tid, (a, b)) in enumerate(zip(enc.type_ids, enc.offsets)) if tid == 1 and b > a]
        if not allowed:
            return None, 0.0
        idx = np.array(allowed)
        s = start[idx].astype(np.float64)
        e = end[idx].astype(np.float64)
        ps = np.exp(s - s.max())
        ps /= ps.sum()
        pe = np.exp(e - e.max())
        pe /= pe.sum()
        joint = np.triu(np.outer(ps, pe)) - np.triu(np.outer(ps, pe), MAX_SPAN_PIECES)
        i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
        a = enc.offsets[idx[i]][0]
        b = enc.offsets[idx[j]][1]
        while a > 0 and text[a - 1].isalnum():
            a -= 1
        while b < len(text) and text[b].isalnum():
            b += 1
        return (offset + a, offset + b), float(joint[i, j])
