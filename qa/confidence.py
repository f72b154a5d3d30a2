"""One calibrated confidence: the probability that a quoted sentence answers the question.

Reader, retrieval and answer-type evidence are combined by one model, fitted on data the team may tune on
(`python -m qa.fit_confidence`, see models/confidence/MODEL_CARD.md):

1. a candidate scorer, a logistic regression over the features below, one row per candidate sentence (label:
   the sentence states the answer); the decide stage quotes the candidate it scores highest;
2. a question-level calibration (Platt scaling of that best score, fitted out of fold), whose output is the
   `confidence` every answer carries: the probability that the quoted sentence answers the question;
3. two thresholds on it, chosen on the tuning data: `answered` from the one that keeps answered replies at least
   90 % right, `uncertain` down to the second, `abstained` below.

The model is a plain JSON file (feature names, standardisation, weights, calibration, thresholds, what it was
fitted on); no pickle.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answerability import is_yes_no
from .errors import ConfigError
from .lexical import STOPWORDS, stem_tokens, words
from .reading import SentenceReading
from .retrieval import Hit

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "models" / "confidence" / "model.json"
MODEL_VERSION = 1
_WH = frozenset("who whom whose what which when where why how".split())

FEATURES = (
    "reader",  # the reader's logit that the sentence states the answer
    "reader_margin",  # that logit minus the best other candidate's
    "passage_score",  # retrieval's fused score of the sentence's passage
    "semantic",  # the passage's best cosine (passage or sentence) with the question
    "lexical",  # the passage's BM25 over the best BM25 of the question
    "maxsim",  # the passage's late-interaction score
    "sentence_score",  # retrieval's score of the sentence itself
    "passage_rank_2",  # the sentence is in the second passage
    "passage_rank_3",  # ... in the third
    "sentence_order",  # the sentence's place by retrieval within its passage (0, 1, 2)
    "coverage",  # rarity-weighted share of the question's content words found in the sentence
    "coverage_passage",  # ... in its passage
    "missing_article",  # rarity-weighted share of the question's content words its article never uses
    "typed",  # the question asks for a kind of fact (number, time, ...), which the sentence holds
    "entity_found",  # the question asks for a kind of entity (spaCy: a number, date, person, place, organisation)
    # and the sentence holds one the question does not name
    "entity_missing",  # ... and the sentence holds none
    "yes_no",  # a yes/no question
    "yes_no_reader",  # yes_no × reader: the reader learnt yes/no from templates only
    "span_prob",  # how sure the reader is of its short answer
)


@dataclass(frozen=True)
class Question:
    """What the features need of the question, computed once per question."""

    stems: tuple[str, ...]  # content stems, in order, without repeats
    weights: tuple[float, ...]  # rarity (IDF) of each in the index
    yes_no: bool
    typed: bool
    text: str = ""  # the question (for the entity features)


def question_terms(asked: str, vocabulary: dict[str, int], passages: int, typed: bool) -> Question:
    """The question's content words (stemmed, no question words) with their rarity in the index."""
    seen: dict[str, float] = {}
    for w in words(asked):
        if w in STOPWORDS or w in _WH or not w.isalnum():
            continue
        stem = stem_tokens([w])
        if not stem or stem[0] in seen:
            continue
        df = vocabulary.get(w) or vocabulary.get(w.rstrip("s")) or 0
        seen[stem[0]] = math.log((passages + 1) / (df + 0.5))
    return Question(tuple(seen), tuple(seen.values()), is_yes_no(asked), typed, asked)


@lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    return frozenset(stem_tokens(words(text)))


def _share(q: Question, present: frozenset[str]) -> float:
    total = sum(q.weights)
    if not total:
        return 0.0
    return sum(w for s, w in zip(q.stems, q.weights) if s in present) / total


def features(q: Question, reading: SentenceReading, readings: Sequence[SentenceReading], hit: Hit, passage_text: str,
             article_holds: frozenset[str]) -> np.ndarray:
    """The feature row of one candidate (order: FEATURES); `article_holds`: the question's stems its article holds."""
    logit = reading.logit if reading.logit is not None else 0.0
    others = [r.logit for r in readings if r is not reading and r.logit is not None]
    margin = logit - max(others) if others else 0.0
    rank = reading.candidate.rank
    reader_yes_no = logit if q.yes_no else 0.0
    from .short_answer import holds_asked_kind

    entity = holds_asked_kind(q.text, reading.text) if q.text else None
    row = (
        logit, margin, hit.score, max(hit.dense, hit.sentence), hit.lexical,
        0.0 if math.isnan(hit.maxsim) else hit.maxsim, reading.candidate.score,
        float(rank == 1), float(rank >= 2), float(reading.candidate.order),
        _share(q, _stems(reading.text)), _share(q, _stems(passage_text)), 1.0 - _share(q, article_holds),
        float(q.typed), float(entity is True), float(entity is False), float(q.yes_no), reader_yes_no, reading.span_prob,
    )
    return np.asarray(row, np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


@dataclass(frozen=True)
class ConfidenceModel:
    """The fitted model: candidate scorer, question-level calibration and the two thresholds."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    platt: tuple[float, float]  # confidence = sigmoid(a * best candidate logit + b)
    answered: float  # confidence at or above which the reply is `answered`
    uncertain: float  # ... at or above which it is `uncertain` (below: `abstained`)
    info: dict  # what it was fitted on, its metrics (for the model card; not used at run time)

    def score(self, rows: np.ndarray) -> np.ndarray:
        """The candidate scorer's logit per row (the best one is quoted)."""
        return ((np.atleast_2d(rows) - self.mean) / self.scale) @ self.weights + self.bias

    def confidence(self, best_logit: float) -> float:
        a, b = self.platt
        return float(_sigmoid(a * best_logit + b))

    def status(self, confidence: float) -> str:
        return "answered" if confidence >= self.answered else "uncertain" if confidence >= self.uncertain else "abstained"

    def to_json(self) -> dict:
        return {"version": MODEL_VERSION, "features": list(FEATURES), "mean": self.mean.round(8).tolist(),
                "scale": self.scale.round(8).tolist(), "weights": self.weights.round(8).tolist(),
                "bias": round(self.bias, 8), "platt": [round(x, 8) for x in self.platt],
                "thresholds": {"answered": round(self.answered, 6), "uncertain": round(self.uncertain, 6)}, **self.info}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ConfidenceModel:
        """The model in `path` (default models/confidence/model.json); ConfigError naming the problem and the fix."""
        path = Path(path) if path is not None else DEFAULT_PATH
        fix = "run `python -m qa.fit_confidence` or restore models/confidence/ from git"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"The confidence model {path} cannot be read ({exc.strerror}); {fix}.") from None
        except ValueError as exc:
            raise ConfigError(f"The confidence model {path} is not valid JSON ({exc}); {fix}.") from None
        if not isinstance(data, dict) or data.get("version") != MODEL_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise ConfigError(f"The confidence model {path} has version {version!r}; "
                              f"this code reads version {MODEL_VERSION}; {fix}.")
        if data.get("features") != list(FEATURES):
            raise ConfigError(f"The confidence model {path} was fitted on other features ({data.get('features')}); {fix}.")
        try:
            n = len(FEATURES)
            mean, scale, weights = (np.asarray(data[k], np.float64) for k in ("mean", "scale", "weights"))
            if mean.shape != (n,) or scale.shape != (n,) or weights.shape != (n,) or not (scale > 0).all():
                raise ValueError("mean, scale and weights need one value per feature (scale > 0)")
            a, b = (float(x) for x in data["platt"])
            answered, uncertain = float(data["thresholds"]["answered"]), float(data["thresholds"]["uncertain"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"The confidence model {path} is incomplete or malformed ({exc}); {fix}.") from None
        if not 0.0 <= uncertain <= answered <= 1.0:
            raise ConfigError(f"The confidence model {path} has thresholds uncertain={uncertain}, answered={answered}; "
                              f"they must satisfy 0 <= uncertain <= answered <= 1; {fix}.")
        info = {k: v for k, v in data.items() if k not in ("version", "features", "mean", "scale", "weights", "bias",
                                                           "platt", "thresholds")}
        return cls(mean, scale, weights, float(data.get("bias", 0.0)), (a, b), answered, uncertain, info)


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, l2: float = 1.0,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, weights, bias) of an L2-regularised logistic regression on standardised features (Newton's
    method; the bias is not penalised)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.ones(len(x)) if weight is None else np.asarray(weight, np.float64)
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(100):
        p = _sigmoid(z @ beta)
        grad = z.T @ (w * (p - y)) + penalty * beta
        hess = (z * (w * np.maximum(p * (1 - p), 1e-9))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return mean, scale, beta[:-1], float(beta[-1])


def fit_platt(scores: np.ndarray, labels: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """P = sigmoid(a * score + b), fitted on the log loss."""
    _m, _s, w, b = fit_logistic(np.asarray(scores, np.float64)[:, None], np.asarray(labels, np.float64), weight, l2=0.0)
    # fit_logistic standardised the score: undo it so that a and b apply to the raw score
    a = float(w[0] / _s[0])
    return a, float(b - a * _m[0])
