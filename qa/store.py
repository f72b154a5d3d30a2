"""The index on disk: FAISS vectors, the passage table, the lexical index and manifest.json.

Atomic writes: every build writes its files under new names (suffixed by a generation id), then
replaces manifest.json in one `os.replace`; files the new manifest does not name are removed after.
A crash at any point leaves a manifest that names a complete set of files. The manifest records each
file's sha256, so a truncated or corrupt file is caught on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .chunking import chunk_article
from .embedding import content_mask
from .errors import IndexCorruptError, IndexMissingError
from .lexical import LexicalIndex
from .types import Article, ArticleInfo, Chunk, Span

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with `qa build` (or delete the folder and run `qa build ARTICLES...`)"


@dataclass(frozen=True)
class ChunkVectors:
    """What the model gives for one passage: its vector, one per sentence, and its content word pieces."""

    passage: np.ndarray  # (dim,)
    sentences: np.ndarray  # (sentences, dim)
    tokens: np.ndarray  # (content pieces, dim) float16, unit rows
    token_sentence: np.ndarray  # (content pieces,) index of the sentence each piece is in


@dataclass
class StoredIndex:
    """An index in memory: what `build_index` makes and `load_index` reads back."""

    model: str
    dimension: int
    chunking: dict
    sources: list[str]
    articles: dict[str, ArticleInfo]
    chunks: list[Chunk]
    passage_vectors: np.ndarray  # (passages, dim), unit rows
    sentence_vectors: np.ndarray  # (sentences, dim), one row per sentence of each chunk, in order
    token_vectors: np.ndarray  # (pieces, dim): content word pieces of each chunk, in order; float16 as on disk
    # until token_matrix (made when an index is loaded or first queried) replaces it with float32
    token_counts: np.ndarray  # (passages,) pieces per chunk
    token_sentence: np.ndarray  # (pieces,) int16: sentence of each piece within its chunk
    lexical: LexicalIndex
    manifest: dict = field(default_factory=dict)
    _faiss: object = None
    root: Path | None = None  # the project root (the index folder's parent): citation paths are relative to it

    def __post_init__(self) -> None:
        counts = [len(c.sentences) for c in self.chunks]
        self.sentence_first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.token_first = np.concatenate([[0], np.cumsum(self.token_counts)]).astype(np.int64)

    @cached_property
    def token_matrix(self) -> np.ndarray:
        """token_vectors as float32, made on first use: numpy multiplies float16 ~10x slower, and a build that
        answers no question (`qa build`) never needs it. The float32 copy then replaces the float16 one, so a
        serving process holds one copy (float16 is the file format; saving converts)."""
        matrix = np.ascontiguousarray(self.token_vectors, dtype=np.float32)
        self.token_vectors = matrix
        return matrix

    def vectors_of(self, row: int) -> ChunkVectors:
        s0, s1 = self.sentence_first[row], self.sentence_first[row + 1]
        t0, t1 = self.token_first[row], self.token_first[row + 1]
        return ChunkVectors(self.passage_vectors[row], self.sentence_vectors[s0:s1], self.token_vectors[t0:t1],
                            self.token_sentence[t0:t1])

    @property
    def faiss_index(self):
        if self._faiss is None:
            import faiss

            index = faiss.IndexFlatIP(self.dimension)  # exact inner product = cosine on unit vectors
            if len(self.passage_vectors):
                index.add(self.passage_vectors)
            self._faiss = index
        return self._faiss


def _rel(path: str, base: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(p.resolve())


def _abs(path: str, base: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (base / p).resolve())


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def embed_chunks(chunks: Sequence[Chunk], embedder, *, progress: bool = False, batch: int = 1024) -> list[ChunkVectors]:
    """One forward pass per passage. Sentence vectors are the mean of the sentence's word-piece vectors
    in the context of its passage; a one-sentence passage's sentence vector is its passage vector."""
    import sys

    from tqdm import tqdm

    out: list[ChunkVectors] = []
    bar = tqdm(total=len(chunks), desc="Embedding", unit="passage", disable=not (progress and sys.stderr.isatty()))
    for b0 in range(0, len(chunks), batch):
        part = chunks[b0 : b0 + batch]
        enc = embedder.encode([c.text for c in part])
        bar.update(len(part))
        for c, vec, tok, offs in zip(part, enc.vectors, enc.tokens, enc.offsets):
            starts = np.array([s.start - c.start for s in c.sentences])
            # each piece's sentence: the last one starting at or before it (pieces never straddle sentences)
            owner = np.clip(np.searchsorted(starts, offs[:, 0], side="right") - 1, 0, len(starts) - 1)
            if len(c.sentences) == 1:
                sentences = vec[None, :]
            else:
                ends = np.array([s.end - c.start for s in c.sentences])
                inside = (offs[:, 0] >= starts[owner]) & (offs[:, 1] <= ends[owner]) & (offs[:, 1] > offs[:, 0])
                counts = np.bincount(owner[inside], minlength=len(starts))
                sums = np.zeros((len(starts), tok.shape[1]), np.float64)
                if inside.any():  # pieces of one sentence are contiguous: one reduceat sums them all
                    firsts = np.searchsorted(owner[inside], np.flatnonzero(counts))
                    sums[counts > 0] = np.add.reduceat(tok[inside].astype(np.float64), firsts, axis=0)
                sentences = np.where((counts > 0)[:, None], _unit(sums / np.maximum(counts, 1)[:, None]), vec[None, :])
                sentences = sentences.astype(np.float32)
            keep = content_mask(c.text, offs)
            out.append(ChunkVectors(vec, sentences, _unit(tok[keep]).astype(np.float16), owner[keep].astype(np.int16)))
    bar.close()
    return out


def build_index(
    articles: Sequence[Article],
    *,
    embedder,
    model: str,
    chunking: dict,
    sources: Sequence[str],
    previous: StoredIndex | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda _m: None,
) -> StoredIndex:
    """Chunk and embed `articles`. Articles whose file is unchanged since `previous` (same sha256, same
    model and chunking) keep their passages and vectors: only changed articles are embedded."""
    old_rows: dict[tuple[str, str], list[int]] = {}
    if previous is not None and previous.model == model and previous.chunking == chunking:
        for i, c in enumerate(previous.chunks):
            info = previous.articles[c.article_id]
            old_rows.setdefault((info.id, info.sha256), []).append(i)
    chunks: list[Chunk] = []
    vectors: list[ChunkVectors | None] = []
    infos: dict[str, ArticleInfo] = {}
    for article in articles:
        infos[article.id] = ArticleInfo(article.id, article.path, article.title, article.date, article.sha256)
        kept = old_rows.get((article.id, article.sha256))
        if kept is not None:
            chunks.extend(previous.chunks[r] for r in kept)
            vectors.extend(previous.vectors_of(r) for r in kept)
            continue
        new = chunk_article(article, max_tokens=chunking["max_tokens"], count_tokens=embedder.count_tokens,
                            max_sentences=chunking["max_sentences"])
        chunks.extend(new)
        vectors.extend([None] * len(new))
    todo = [i for i, v in enumerate(vectors) if v is None]
    if todo:
        reused = len(chunks) - len(todo)
        how = {"torch": "PyTorch", "onnx": "onnxruntime"}.get(getattr(embedder, "backend", ""), "the embedder")
        if getattr(embedder, "precision", "float32") != "float32":
            how += f", {embedder.precision}"
        log(f"Embedding {len(todo)} passages with {how}" + (f" ({reused} reused from the previous index)" if reused else ""))
        for i, v in zip(todo, embed_chunks([chunks[i] for i in todo], embedder, progress=progress)):
            vectors[i] = v
    dim = len(vectors[0].passage) if vectors else embedder.dimension
    empty = np.zeros((0, dim), np.float32)
    return StoredIndex(
        model=model, dimension=dim, chunking=dict(chunking), sources=list(sources), articles=infos, chunks=chunks,
        passage_vectors=np.ascontiguousarray(np.stack([v.passage for v in vectors]) if vectors else empty, dtype=np.float32),
        sentence_vectors=np.ascontiguousarray(np.concatenate([v.sentences for v in vectors]) if vectors else empty, dtype=np.float32),
        token_vectors=np.concatenate([v.tokens for v in vectors]).astype(np.float16, copy=False) if vectors else empty.astype(np.float16),
        token_counts=np.array([len(v.tokens) for v in vectors], dtype=np.int64),
        token_sentence=np.concatenate([v.token_sentence for v in vectors]).astype(np.int16) if vectors else np.zeros(0, np.int16),
        lexical=LexicalIndex.build([c.text for c in chunks]),
    )


# --- on disk ---------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("article-qa", "faiss-cpu", "bm25s", "sentence-transformers", "numpy", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _chunk_row(c: Chunk, tokens: int) -> dict:
    return {"article": c.article_id, "paragraph": c.paragraph, "start": c.start, "end": c.end,
            "sentences": [[s.start, s.end] for s in c.sentences], "tokens": tokens, "text": c.text}


def save_index(index: StoredIndex, folder: Path) -> dict:
    """Write the index atomically; returns the manifest."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve().parent
    passages_text = "".join(json.dumps(_chunk_row(c, int(n)), ensure_ascii=False) + "\n" for c, n in zip(index.chunks, index.token_counts))
    gen = hashlib.sha256((index.model + json.dumps(index.chunking, sort_keys=True) + passages_text).encode()).hexdigest()[:12]
    gen = f"{gen}-{os.getpid()}-{time.time_ns() % 10**6}"
    names = {
        "passages": f"passages-{gen}.jsonl",
        "dense": f"dense-{gen}.faiss",
        "sentences": f"sentences-{gen}.npy",
        "tokens": f"tokens-{gen}.npy",
        "token_sentences": f"tokensentences-{gen}.npy",
        "lexical": f"lexical-{gen}",
    }
    (folder / names["passages"]).write_text(passages_text, encoding="utf-8")
    faiss.write_index(index.faiss_index, str(folder / names["dense"]))
    np.save(folder / names["sentences"], index.sentence_vectors, allow_pickle=False)
    np.save(folder / names["tokens"], index.token_vectors.astype(np.float16, copy=False), allow_pickle=False)
    np.save(folder / names["token_sentences"], index.token_sentence, allow_pickle=False)
    index.lexical.save(folder / names["lexical"])
    files: dict[str, dict] = {}
    for key, name in names.items():
        target = folder / name
        for f in sorted([target] if target.is_file() else target.rglob("*")):
            if f.is_file():
                with f.open("rb") as fh:
                    os.fsync(fh.fileno())
                files[f.relative_to(folder).as_posix()] = {"sha256": _sha256(f), "bytes": f.stat().st_size}
    manifest = {
        "format_version": FORMAT_VERSION,
        "generation": gen,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": index.model, "dimension": index.dimension},
        "chunking": index.chunking,
        "sources": [_rel(s, base) for s in index.sources],
        "counts": {"articles": len(index.articles), "passages": len(index.chunks), "sentences": int(len(index.sentence_vectors))},
        "articles": [
            {**asdict(a), "path": _rel(a.path, base)} for a in index.articles.values()
        ],
        "parts": names,
        "files": files,
        "versions": _versions(),
    }
    tmp = folder / f".{MANIFEST}.{gen}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MANIFEST)  # the commit point
    keep = set(names.values()) | {MANIFEST}
    for entry in folder.iterdir():
        if entry.name not in keep and (entry.name.split("-")[0] in {"passages", "dense", "sentences", "tokens", "tokensentences", "lexical"} or entry.name.startswith(f".{MANIFEST}")):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
    index.manifest = manifest
    index.root = base
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"No index at {folder}/ ({MANIFEST} is missing); build one with `qa build ARTICLES...`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        problem = _manifest_problem(manifest)
    except (OSError, ValueError) as exc:
        problem = str(exc)
    if problem:
        raise IndexCorruptError(f"{path} is not a valid index manifest ({problem}); {REBUILD_HINT}.")
    return manifest


_MANIFEST_SHAPE = {"format_version": int, "model": dict, "chunking": dict, "sources": list, "articles": list,
                   "counts": dict, "parts": dict, "files": dict}
_ARTICLE_KEYS = ("id", "path", "title", "date", "sha256")


def _manifest_problem(manifest: object) -> str | None:
    """What is missing or of the wrong type in a manifest, or None."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    for key, kind in _MANIFEST_SHAPE.items():
        if not isinstance(manifest.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    if not isinstance(manifest["model"].get("name"), str) or not isinstance(manifest["model"].get("dimension"), int):
        return "'model' needs 'name' and 'dimension'"
    for a in manifest["articles"]:
        if not isinstance(a, dict) or any(k not in a for k in _ARTICLE_KEYS):
            return f"an entry of 'articles' lacks one of {list(_ARTICLE_KEYS)}"
    missing = [k for k in ("passages", "dense", "sentences", "tokens", "token_sentences", "lexical") if k not in manifest["parts"]]
    if missing:
        return f"'parts' lacks {missing}"
    return None


def load_index(folder: Path, manifest: dict | None = None) -> StoredIndex:
    """Read an index back, checking every file against the manifest. Embeds nothing."""
    import faiss

    manifest = manifest or read_manifest(folder)
    base = folder.resolve().parent
    for name, meta in manifest["files"].items():
        f = folder / name
        if not f.is_file():
            raise IndexCorruptError(f"{f} is missing; {REBUILD_HINT}.")
        if f.stat().st_size != meta["bytes"] or _sha256(f) != meta["sha256"]:
            raise IndexCorruptError(f"{f} is truncated or corrupt (its size or sha256 differs from {MANIFEST}); {REBUILD_HINT}.")
    parts = manifest["parts"]
    try:
        chunks, token_counts = [], []
        with (folder / parts["passages"]).open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                token_counts.append(r["tokens"])
                chunks.append(Chunk(r["article"], r["paragraph"], r["start"], r["end"], r["text"],
                                    tuple(Span(s, e) for s, e in r["sentences"])))
        dense = faiss.read_index(str(folder / parts["dense"]))
        passage_vectors = dense.reconstruct_n(0, dense.ntotal) if dense.ntotal else np.zeros((0, dense.d), np.float32)
        sentence_vectors = np.load(folder / parts["sentences"], allow_pickle=False)
        token_vectors = np.load(folder / parts["tokens"], allow_pickle=False)
        token_sentence = np.load(folder / parts["token_sentences"], allow_pickle=False)
        lexical = LexicalIndex.load(folder / parts["lexical"])
        articles = {a["id"]: ArticleInfo(a["id"], _abs(a["path"], base), a["title"], a["date"], a["sha256"]) for a in manifest["articles"]}
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexCorruptError(f"The index in {folder}/ cannot be read ({type(exc).__name__}: {exc}); {REBUILD_HINT}.") from None
    if (dense.ntotal != len(chunks) or len(sentence_vectors) != sum(len(c.sentences) for c in chunks)
            or len(token_vectors) != sum(token_counts) or len(token_sentence) != len(token_vectors)):
        raise IndexCorruptError(f"The index in {folder}/ is inconsistent (vector and passage counts differ); {REBUILD_HINT}.")
    index = StoredIndex(
        model=manifest["model"]["name"], dimension=int(manifest["model"]["dimension"]), chunking=manifest["chunking"],
        sources=[_abs(s, base) for s in manifest["sources"]], articles=articles, chunks=chunks,
        passage_vectors=np.ascontiguousarray(passage_vectors, dtype=np.float32), sentence_vectors=sentence_vectors,
        token_vectors=token_vectors.astype(np.float16, copy=False), token_counts=np.asarray(token_counts, dtype=np.int64),
        token_sentence=token_sentence,
        lexical=lexical, manifest=manifest, _faiss=dense, root=base,
    )
    del token_vectors
    # float32 now, while little else is allocated: made on the first query instead, it overlapped the query
    # encoder's first allocations and raised a SQuAD process's peak RSS from 618 to 748 MB
    index.token_matrix  # noqa: B018 - the property converts and keeps one copy
    return index
