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
from pathlib import Path

import numpy as np

from .chunking import SPLITTER_VERSION, chunk_article
from .errors import IndexCorruptError, IndexMissingError
from .lexical import LexicalIndex
from .types import Article, ArticleInfo, Chunk, Span

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with `qa build` (or delete the folder and run `qa build ARTICLES...`)"


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
    lexical: LexicalIndex
    manifest: dict = field(default_factory=dict)
    _faiss: object = None
    sentence_owner: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.sentence_owner = np.repeat(np.arange(len(self.chunks)), [len(c.sentences) for c in self.chunks])
        self.sentence_first = np.concatenate([[0], np.cumsum([len(c.sentences) for c in self.chunks])]).astype(np.int64)

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
    reusable: dict[str, tuple[list[int], ArticleInfo]] = {}
    if previous is not None and previous.model == model and previous.chunking == chunking:
        rows: dict[str, list[int]] = {}
        for i, c in enumerate(previous.chunks):
            rows.setdefault(c.article_id, []).append(i)
        for a in previous.articles.values():
            reusable[a.sha256 + a.id] = (rows.get(a.id, []), a)

    chunks: list[Chunk] = []
    kept_rows: list[tuple[int, np.ndarray, np.ndarray]] = []  # (position in `chunks`, passage vector, sentence vectors)
    infos: dict[str, ArticleInfo] = {}
    to_embed: list[tuple[int, Chunk]] = []  # (position in `chunks`, chunk)
    for article in articles:
        infos[article.id] = ArticleInfo(article.id, article.path, article.title, article.date, article.sha256)
        kept = reusable.get(article.sha256 + article.id)
        if kept is not None:
            for row in kept[0]:
                chunks.append(previous.chunks[row])
                s0, s1 = previous.sentence_first[row], previous.sentence_first[row + 1]
                kept_rows.append((len(chunks) - 1, previous.passage_vectors[row], previous.sentence_vectors[s0:s1]))
            continue
        for c in chunk_article(
            article, max_tokens=chunking["max_tokens"], count_tokens=embedder.count_tokens,
            max_sentences=chunking["max_sentences"],
        ):
            chunks.append(c)
            to_embed.append((len(chunks) - 1, c))
    reused = len(chunks) - len(to_embed)
    if to_embed:
        log(f"Embedding {len(to_embed)} passages of {len(articles)} article(s)" + (f" ({reused} passages reused)" if reused else ""))
    vectors, sentence_vectors = embed_chunks([c for _, c in to_embed], embedder, progress=progress)
    dim = vectors.shape[1] if to_embed else (previous.dimension if kept_rows else embedder.dimension)
    passage_rows = np.zeros((len(chunks), dim), dtype=np.float32)
    sentence_rows: list[np.ndarray] = [np.zeros((0, dim), np.float32)] * len(chunks)
    for pos, pvec, svecs in kept_rows:
        passage_rows[pos] = pvec
        sentence_rows[pos] = svecs
    s_at = 0
    for j, (pos, c) in enumerate(to_embed):
        passage_rows[pos] = vectors[j]
        sentence_rows[pos] = sentence_vectors[s_at : s_at + len(c.sentences)]
        s_at += len(c.sentences)
    all_sentences = np.concatenate(sentence_rows) if chunks else np.zeros((0, dim), np.float32)
    lexical = LexicalIndex.build([c.text for c in chunks])
    return StoredIndex(
        model=model, dimension=dim, chunking=dict(chunking), sources=list(sources), articles=infos,
        chunks=chunks, passage_vectors=passage_rows, sentence_vectors=np.ascontiguousarray(all_sentences), lexical=lexical,
    )


def embed_chunks(chunks: Sequence[Chunk], embedder, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Passage vectors, and one vector per sentence. A one-sentence passage's sentence vector is its
    passage vector, so only sentences of longer passages are embedded again."""
    texts = [c.text for c in chunks]
    extra = [c.text[s.start - c.start : s.end - c.start] for c in chunks if len(c.sentences) > 1 for s in c.sentences]
    vectors = embedder.encode(texts + extra, progress=progress) if texts else np.zeros((0, 1), np.float32)
    passage = vectors[: len(texts)]
    extra_vectors = vectors[len(texts) :]
    parts, e = [], 0
    for i, c in enumerate(chunks):
        if len(c.sentences) > 1:
            parts.append(extra_vectors[e : e + len(c.sentences)])
            e += len(c.sentences)
        else:
            parts.append(passage[i : i + 1])
    sentences = np.concatenate(parts) if parts else np.zeros((0, passage.shape[1] if passage.ndim == 2 else 1), np.float32)
    return passage, sentences


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


def _chunk_row(c: Chunk) -> dict:
    return {"article": c.article_id, "paragraph": c.paragraph, "start": c.start, "end": c.end,
            "sentences": [[s.start, s.end] for s in c.sentences], "text": c.text}


def save_index(index: StoredIndex, folder: Path) -> dict:
    """Write the index atomically; returns the manifest."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve().parent
    passages_text = "".join(json.dumps(_chunk_row(c), ensure_ascii=False) + "\n" for c in index.chunks)
    gen = hashlib.sha256((index.model + json.dumps(index.chunking, sort_keys=True) + passages_text).encode()).hexdigest()[:12]
    gen = f"{gen}-{os.getpid()}-{time.time_ns() % 10**6}"
    names = {
        "passages": f"passages-{gen}.jsonl",
        "dense": f"dense-{gen}.faiss",
        "sentences": f"sentences-{gen}.npy",
        "lexical": f"lexical-{gen}",
    }
    (folder / names["passages"]).write_text(passages_text, encoding="utf-8")
    faiss.write_index(index.faiss_index, str(folder / names["dense"]))
    np.save(folder / names["sentences"], index.sentence_vectors, allow_pickle=False)
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
        if entry.name not in keep and (entry.name.split("-")[0] in {"passages", "dense", "sentences", "lexical"} or entry.name.startswith(f".{MANIFEST}")):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
    index.manifest = manifest
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"No index at {folder}/ ({MANIFEST} is missing); build one with `qa build ARTICLES...`.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["parts"], manifest["files"], manifest["model"]["name"]  # noqa: B018 - the keys must exist
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"{path} is not a valid index manifest ({exc}); {REBUILD_HINT}.") from None
    return manifest


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
        chunks = []
        with (folder / parts["passages"]).open(encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                chunks.append(Chunk(r["article"], r["paragraph"], r["start"], r["end"], r["text"],
                                    tuple(Span(s, e) for s, e in r["sentences"])))
        dense = faiss.read_index(str(folder / parts["dense"]))
        passage_vectors = dense.reconstruct_n(0, dense.ntotal) if dense.ntotal else np.zeros((0, dense.d), np.float32)
        sentence_vectors = np.load(folder / parts["sentences"], allow_pickle=False)
        lexical = LexicalIndex.load(folder / parts["lexical"])
        articles = {a["id"]: ArticleInfo(a["id"], _abs(a["path"], base), a["title"], a["date"], a["sha256"]) for a in manifest["articles"]}
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise IndexCorruptError(f"The index in {folder}/ cannot be read ({type(exc).__name__}: {exc}); {REBUILD_HINT}.") from None
    if dense.ntotal != len(chunks) or len(sentence_vectors) != sum(len(c.sentences) for c in chunks):
        raise IndexCorruptError(f"The index in {folder}/ is inconsistent (vector and passage counts differ); {REBUILD_HINT}.")
    index = StoredIndex(
        model=manifest["model"]["name"], dimension=int(manifest["model"]["dimension"]), chunking=manifest["chunking"],
        sources=[_abs(s, base) for s in manifest["sources"]], articles=articles, chunks=chunks,
        passage_vectors=np.ascontiguousarray(passage_vectors, dtype=np.float32), sentence_vectors=sentence_vectors,
        lexical=lexical, manifest=manifest, _faiss=dense,
    )
    return index
