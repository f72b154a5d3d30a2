"""The query path without PyTorch: the model exported once to ONNX (at build time, into the index folder)
and run with onnxruntime, tokenized with the `tokenizers` library.

Only models that sentence-transformers runs as Transformer -> mean Pooling (-> Normalize) are exported,
which covers all-MiniLM-L6-v2; for any other model the PyTorch path serves. Vectors match the PyTorch
path (cosine 1.000: the export is checked against vectors computed before tracing, since the traced model
object itself computes different vectors afterwards). meta.json records the sha256 of model.onnx and
tokenizer.json; an export whose files no longer match is never served.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .embedding import Encoded, TokenizerVocabulary, pad_batch, resolve_model_path
from .errors import ConfigError, IndexCorruptError

EXPORT_FOLDER = "onnx"
EXPORT_VERSION = 2  # 2: meta.json records the sha256 of model.onnx and tokenizer.json
EXPORT_FILES = ("model.onnx", "tokenizer.json")
_CHECK_TEXTS = ["Were any victims identified?", "A Chicago police oversight agency could not substantiate the claims."]


def _slug(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def export_dir(index_dir: Path, model: str) -> Path:
    return Path(index_dir) / EXPORT_FOLDER / _slug(model)


def _mean_pooling_model(path: str) -> bool:
    """True when the sentence-transformers model is Transformer -> mean Pooling (-> Normalize)."""
    p = Path(path)
    try:
        modules = json.loads((p / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((p / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    mean = pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens" and v is True]
    return types[:2] == ["Transformer", "Pooling"] and set(types[2:]) <= {"Normalize"} and bool(mean) and not others \
        and (p / "tokenizer.json").is_file()


_HASHED: dict[tuple, str] = {}  # (path, inode, size, mtime) -> sha256: a process hashes an unchanged file once


def file_sha256(path: Path) -> str:
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = _sha256(path)
    return _HASHED[key]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_export(index_dir: Path, model: str) -> Path | None:
    """The export folder for `model`, its files checked against the sha256 in its meta.json; None when there is
    no export of this model (or one of an older format, which `qa build` replaces). A damaged export (garbage
    meta.json, a file altered, truncated or missing) raises IndexCorruptError: it is never served."""
    folder = export_dir(index_dir, model)
    if not (folder / "meta.json").exists():
        return None
    fix = (f"`qa build` exports it again (or delete {folder}/ and run `qa build`); QA_BACKEND=torch answers with "
           "PyTorch meanwhile")
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{folder}/meta.json is unreadable ({exc}); {fix}.") from None
    if not isinstance(meta, dict) or meta.get("model") != model:
        raise IndexCorruptError(f"{folder}/meta.json is not the export of {model!r}; {fix}.")
    if meta.get("version") != EXPORT_VERSION:
        return None
    hashes = meta.get("sha256")
    for name in EXPORT_FILES:
        f = folder / name
        want = hashes.get(name) if isinstance(hashes, dict) else None
        if not f.is_file():
            raise IndexCorruptError(f"{f} is missing; {fix}.")
        if not isinstance(want, str) or file_sha256(f) != want:
            raise IndexCorruptError(f"{f} does not match the sha256 in its meta.json (altered, truncated or replaced); {fix}.")
    return folder


def export_model(model: str, index_dir: Path, *, log: Callable[[str], None] = lambda _m: None) -> Path | None:
    """Export `model` to ONNX under index_dir/onnx/ (needs torch and onnx; build time only). Returns the
    folder, or None when the model is not of a kind this backend runs."""
    try:
        existing = find_export(index_dir, model)
    except IndexCorruptError as exc:
        log(f"{exc} Exporting it again.")
        existing = None
    if existing is not None:
        return existing
    path = resolve_model_path(model)
    if not _mean_pooling_model(path):
        log(f"Not exporting {model!r} to ONNX (not a Transformer + mean pooling model); queries use PyTorch.")
        return None
    from .embedding import SentenceTransformerEmbedder

    import torch

    st = SentenceTransformerEmbedder(model)
    # the reference, before tracing: the traced model object afterwards gives other vectors (cosine 0.94-0.97),
    # which made every fresh build drop its export
    reference = st.encode(_CHECK_TEXTS).vectors
    bert = st.model[0].auto_model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    folder = export_dir(index_dir, model)
    for stale in folder.parent.glob(folder.name + ".tmp*") if folder.parent.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)  # left by an export that died (the caller holds the writer lock)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    enc = st.tokenizer(_CHECK_TEXTS, padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    log(f"Exporting {model!r} to ONNX in {folder}/ (once; queries then run without PyTorch)")
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape-dependent branches; the export is checked below
        torch.onnx.export(
            LastHiddenState(bert), tuple(enc[n] for n in names), str(tmp / "model.onnx"), input_names=names,
            output_names=["last_hidden_state"], opset_version=17, dynamo=False,
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]},
        )
    (tmp / "tokenizer.json").write_bytes((Path(path) / "tokenizer.json").read_bytes())
    meta = {"version": EXPORT_VERSION, "model": model, "dimension": st.dimension,
            "max_seq_length": int(st.model.max_seq_length), "bytes": (tmp / "model.onnx").stat().st_size,
            "sha256": {name: file_sha256(tmp / name) for name in EXPORT_FILES}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    check = OnnxEmbedder(model, tmp).encode(_CHECK_TEXTS).vectors
    agreement = float(np.min(np.sum(check * reference, axis=1)))
    if agreement < 0.9999:
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"The ONNX export of {model!r} disagrees with PyTorch (cosine {agreement:.4f}); queries use PyTorch.")
        return None
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    log(f"ONNX export checked against PyTorch (cosine {agreement:.5f}); queries run on onnxruntime")
    return folder


# word pieces a forward pass takes at most (rows x the longest row): the attention's memory grows with rows x
# length², and onnxruntime keeps its peak. A passage (100-256 pieces) goes alone: as fast on this CPU as batches of
# 8-32 and a tenth of the memory (an 880-word article: +15 MB held by the process that embedded it, +199 MB at 32);
# questions and sentences still go many at once.
BATCH_TOKENS = 256


class OnnxEmbedder(TokenizerVocabulary):
    """Same vectors as SentenceTransformerEmbedder, from onnxruntime; never imports torch."""

    backend = "onnx"

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = Path(folder)
        try:
            self.meta = json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.folder}/meta.json is unreadable ({exc}); rebuild the export with `qa build`.") from None

    @cached_property
    def session(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("QA_THREADS", "0")) or min(4, os.cpu_count() or 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a truncated or corrupt file
            raise ConfigError(
                f"{self.folder}/model.onnx cannot be loaded ({type(exc).__name__}: {exc}); delete {self.folder}/ and "
                "run `qa build` to export it again, or set QA_BACKEND=torch."
            ) from None

    @cached_property
    def tokenizer(self):
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises its own Exception type for a garbage file
            raise IndexCorruptError(f"{self.folder}/tokenizer.json cannot be read ({exc}); `qa build` exports it "
                                    "again, or set QA_BACKEND=torch.") from None
        tok.no_padding()  # the shipped file pads to a fixed length; we pad each batch to its longest text
        tok.enable_truncation(self.meta["max_seq_length"])
        return tok

    @property
    def dimension(self) -> int:
        return int(self.meta["dimension"])

    @property
    def max_tokens(self) -> int:
        return int(self.meta["max_seq_length"]) - 2

    @cached_property
    def _counter(self):
        """The same tokenizer without truncation: counting must see a text's full length."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(self.tokenizer.to_str())
        counter.no_truncation()
        return counter

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) - 2 for e in self._counter.encode_batch(list(texts), add_special_tokens=True)]

    def encode(self, texts: Sequence[str], *, batch: int = 32) -> Encoded:
        texts = list(texts)
        if not texts:
            return Encoded(np.zeros((0, self.dimension), np.float32), [], [])
        encodings = self.tokenizer.encode_batch(texts) if len(texts) > 1 else [self.tokenizer.encode(texts[0])]
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        offsets: list[np.ndarray] = [np.zeros((0, 2), np.int64)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths pad little
        b0 = 0
        while b0 < len(order):
            b1 = b0 + 1  # the batch grows while its padded size (rows x its longest text) stays within the budget
            while b1 < len(order) and b1 - b0 < batch and (b1 - b0 + 1) * len(encodings[order[b1]].ids) <= BATCH_TOKENS:
                b1 += 1
            idx = order[b0:b1]
            b0 = b1
            ids, types, mask = pad_batch([encodings[i] for i in idx])
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                h = hidden[row, :n]
                v = h.mean(axis=0)
                vectors[i] = v / max(float(np.linalg.norm(v)), 1e-12)
                tokens[i] = np.ascontiguousarray(h[1 : n - 1], dtype=np.float32)
                offsets[i] = np.asarray(encodings[i].offsets[1 : n - 1], dtype=np.int64).reshape(-1, 2)
        return Encoded(vectors, tokens, offsets)
